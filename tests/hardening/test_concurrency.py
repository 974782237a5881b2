"""Concurrent writes: two rules activations at once (one wins, the other gets 409, never a
500)."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest

from models import rules as rules_repo
from models.db import connect
from tests.conftest import Servers
from tests.hardening.conftest import Serve


async def _versions(conn: asyncpg.Connection, n: int) -> list[int]:
    return [await rules_repo.create_version(conn, {}, f"v{i}", None) for i in range(n)]


async def test_two_activations_at_once_one_wins_the_other_is_told(clean_db: Servers) -> None:
    first, second = await connect(clean_db.database_url), await connect(clean_db.database_url)
    try:
        old, v1, v2 = await _versions(first, 3)
        async with first.transaction():
            await rules_repo.activate(first, old)
        t1 = first.transaction()
        await t1.start()
        assert await rules_repo.activate(first, v1)

        async def other() -> None:
            async with second.transaction():
                await rules_repo.activate(second, v2)  # waits for the first one's row lock

        racing = asyncio.create_task(other())
        await asyncio.sleep(0.3)
        await t1.commit()
        with pytest.raises(rules_repo.ActivationConflict):
            await racing
        assert (await rules_repo.get_active(first) or [None])[0] == v1
    finally:
        await first.close()
        await second.close()


async def test_concurrent_activations_over_http_are_200_or_409(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = world.headers("admin")
        async with world.pool.acquire() as conn:
            versions = await _versions(conn, 12)
        statuses = []
        for a, b in zip(versions[::2], versions[1::2], strict=True):
            answers = await asyncio.gather(*(
                http.post(world.url(f"/api/v1/rules/{v}/activate"), json={"note": "race"},
                          headers=h)
                for v in (a, b)
            ))
            for r in answers:
                statuses.append(r.status)
                if r.status == 409:
                    assert (await r.json())["error"]["code"] == "conflict"
        assert set(statuses) <= {200, 409}, statuses
        assert 200 in statuses
