"""Who someone is: the bootstrap admin token rotates (a new one revokes the old), short ones are
refused at start; a buyer's organisation is the account's, not what the request says."""

from __future__ import annotations

import aiohttp
import pytest

from config.settings import Settings
from models import accounts
from tests.api.conftest import ADMIN_TOKEN
from tests.hardening.conftest import Serve

NEW_ADMIN_TOKEN = "rotated-admin-token-" + "9" * 24


async def test_a_new_bootstrap_token_revokes_the_previous_one(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        url = world.url("/api/v1/audit-events")
        old = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        new = {"Authorization": f"Bearer {NEW_ADMIN_TOKEN}"}
        assert (await http.get(url, headers=old)).status == 200
        async with world.pool.acquire() as conn:  # restart with MARKETPLACE_ADMIN_TOKEN changed
            account = await accounts.ensure_bootstrap_admin(conn, NEW_ADMIN_TOKEN)
        assert account == world.admin_account_id  # the same admin, its audit trail continues
        assert (await http.get(url, headers=old)).status == 401
        r = await http.get(url, headers=new)
        assert r.status == 200
        actions = [e["action"] for e in (await r.json())["items"]]
        assert "token.bootstrap_rotated" in actions
        async with world.pool.acquire() as conn:  # restarts with the new one change nothing
            assert await accounts.ensure_bootstrap_admin(conn, NEW_ADMIN_TOKEN) == account
            # Going back to the old token does not bring it back: revoked stays revoked.
            await accounts.ensure_bootstrap_admin(conn, ADMIN_TOKEN)
        assert (await http.get(url, headers=old)).status == 401


async def test_a_short_bootstrap_token_is_refused_at_start(serve: Serve) -> None:
    with pytest.raises(SystemExit, match=r"MARKETPLACE_ADMIN_TOKEN: .*at least 32 characters"):
        Settings.from_env({"MARKETPLACE_ADMIN_TOKEN": "admin-token-too-short"})
    assert Settings.from_env({"MARKETPLACE_ADMIN_TOKEN": "a" * 32}).admin_token == "a" * 32
    async with serve() as world, world.pool.acquire() as conn:
        with pytest.raises(ValueError, match="at least 32 characters"):
            await accounts.ensure_bootstrap_admin(conn, "x" * 31)


async def test_a_buyer_cannot_publish_under_another_organisation(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        buyer, admin = world.headers("buyer"), world.headers("admin")
        own = "Department for Work and Pensions"  # the buyer's account (seeded)
        r = await http.post(world.url("/api/v1/briefs"),
                            json={"title": "Spoof", "organisation": "Home Office"}, headers=buyer)
        assert r.status == 403
        assert [d["field"] for d in (await r.json())["error"]["details"]] == ["organisation"]
        r = await http.post(world.url("/api/v1/briefs"), json={"title": "Mine"}, headers=buyer)
        assert r.status == 201 and (await r.json())["organisation"] == own
        brief = (await r.json())["id"]
        r = await http.patch(world.url(f"/api/v1/briefs/{brief}"),
                             json={"organisation": "Home Office"}, headers=buyer)
        assert r.status == 403
        r = await http.patch(world.url(f"/api/v1/briefs/{brief}"),
                             json={"organisation": own}, headers=buyer)
        assert r.status == 200
        r = await http.post(world.url("/api/v1/briefs/preview"),
                            json={"title": "x", "organisation": "Home Office"}, headers=buyer)
        assert r.status == 403  # the same-buyer boost follows the organisation
        # An admin may record a brief for any organisation.
        r = await http.post(world.url("/api/v1/briefs"),
                            json={"title": "For them", "organisation": "Home Office"},
                            headers=admin)
        assert r.status == 201 and (await r.json())["organisation"] == "Home Office"
        async with world.pool.acquire() as conn:
            stored = await conn.fetchval("SELECT organisation FROM briefs WHERE id = $1", brief)
        assert stored == own
