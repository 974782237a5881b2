"""Hardening fixtures: the real app served on a real TCP port (aiohttp AppRunner + TCPSite) over
the shared `clean_db` PostgreSQL and Valkey, with seeded accounts of every role and briefs in
every state, so fuzzing and the permission matrix reach real rows, not only 404s."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web

from api.app import create_app
from api.limits import Limits
from models import accounts, briefs, matches
from models.db import create_pool
from tests.api.conftest import ADMIN_TOKEN, settings_for
from tests.api.factories import User, make_brief, make_seller, make_user
from tests.conftest import Servers

ROLES = ("anonymous", "admin", "buyer", "other_buyer", "seller", "other_seller")
NO_LIMITS = Limits(rate_requests=0)


@dataclass
class World:
    """What the seeded database holds, by role: tokens, and the ids every endpoint takes."""

    base_url: str
    app: web.Application
    pool: asyncpg.Pool
    users: dict[str, User]
    admin_account_id: int
    ids: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        if role == "admin":
            return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.users[role].headers

    @property
    def live_tokens(self) -> set[int]:
        """The ids of the tokens the roles authenticate with (revoking one logs a role out)."""
        return {v for k, v in self.ids.items() if k.startswith("live_token_")}

    def url(self, path: str) -> str:
        return self.base_url + path

    async def page_session(self, role: str) -> str:
        """A web page session id for a role (what the sign-in form sets as the cookie)."""
        from models import sessions

        async with self.pool.acquire() as conn:
            account = await accounts.authenticate(conn, self.users[role].token)
            assert account is not None and account.token_id is not None
            return await sessions.create(conn, account.id, account.token_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(pool: asyncpg.Pool) -> tuple[dict[str, User], dict[str, int]]:
    users = {
        "buyer": await make_user(pool, "buyer", organisation="Department for Work and Pensions"),
        "other_buyer": await make_user(pool, "buyer", organisation="Home Office"),
        "seller": await make_user(pool, "seller"),
        "other_seller": await make_user(pool, "seller"),
    }
    ids: dict[str, int] = {}
    buyer, other = users["buyer"], users["other_buyer"]
    ids["draft"] = await make_brief(pool, buyer, title="Buyer's draft <script>x</script>")
    ids["published"] = await make_brief(pool, buyer, title="Buyer's published brief")
    ids["other_draft"] = await make_brief(pool, other, title="Other buyer's draft")
    ids["other_published"] = await make_brief(pool, other, title="Other buyer's published")
    ids["seller"] = users["seller"].seller_id or 0
    ids["other_seller"] = users["other_seller"].seller_id or 0
    ids["spare_seller"] = await make_seller(pool)
    async with pool.acquire() as conn:
        for key in ("published", "other_published"):
            await briefs.publish(conn, ids[key])
        await matches.replace_shortlist(
            conn, ids["published"],
            [{"seller_id": ids["seller"], "score": 0.9, "rank": 1,
              "explanation": {"summary": "seeded"}}],
            0,
        )
        ids["alert"] = int(await conn.fetchval(
            "INSERT INTO alerts (brief_id, seller_id, channel, status, attempts, last_error)"
            " VALUES ($1, $2, 'webhook', 'failed', 8, 'HTTP 500') RETURNING id",
            ids["published"], ids["seller"],
        ))
        # Tokens that fuzzing and the matrix may revoke without logging anyone out.
        live = [int(r["id"]) for r in await conn.fetch("SELECT id FROM tokens")]
        ids.update({f"live_token_{i}": t for i, t in enumerate(live)})
        for role in ("buyer", "seller"):
            account = users[role].account_id
            ids[f"{role}_spare_token"] = (await accounts.create_token(conn, account))[0]
        ids["rules"] = int(await conn.fetchval(
            "INSERT INTO rule_sets (body, note, created_by) VALUES ('{}'::jsonb, 'seeded', NULL)"
            " RETURNING version"
        ))
    return users, ids


Serve = Callable[..., AbstractAsyncContextManager[World]]


@pytest.fixture
def serve(clean_db: Servers) -> Serve:
    """`async with serve(limits=..., **settings) as world:` a seeded app on a real port."""

    @asynccontextmanager
    async def factory(
        *, limits: Limits = NO_LIMITS, setup: Callable[[web.Application], None] | None = None,
        shutdown_timeout: float = 5.0, pages: bool = False, **overrides: object,
    ) -> AsyncIterator[World]:
        pool = await create_pool(clean_db.database_url, max_size=5)
        try:
            async with pool.acquire() as conn:
                admin_id = await accounts.ensure_bootstrap_admin(conn, ADMIN_TOKEN)
            users, ids = await seed(pool)
            app = create_app(settings_for(clean_db, **overrides), limits=limits, pages=pages)
            if setup is not None:
                setup(app)
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
            await runner.setup()
            port = free_port()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            try:
                yield World(f"http://127.0.0.1:{port}", app, pool, users, admin_id, ids)
            finally:
                await runner.cleanup()
        finally:
            await pool.close()

    return factory
