"""Rate limits are shared by every API process (counted in Redis), fall back to each process's
memory when Redis is away, and a request with no credential stays a 401 while repeated wrong
credentials from the same address are throttled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from api.app import create_app
from api.limits import Limits
from tests.api.conftest import closed_port_url, settings_for
from tests.conftest import Servers
from tests.hardening.conftest import Serve, free_port


@asynccontextmanager
async def another_process(servers: Servers, limits: Limits, **overrides: object
                          ) -> AsyncIterator[str]:
    """A second API (its own app, as a second process has) on the same database and Redis."""
    runner = web.AppRunner(create_app(settings_for(servers, **overrides), limits=limits))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_rate_limit_is_shared_by_every_process(serve: Serve, clean_db: Servers) -> None:
    limits = Limits(rate_requests=6, rate_seconds=60)
    async with serve(limits=limits) as world, another_process(clean_db, limits) as other, \
            aiohttp.ClientSession() as http:
        h = world.headers("buyer")
        statuses = []
        for base in (world.base_url, other) * 3:  # alternate between the two processes
            statuses.append((await http.get(base + "/api/v1/me", headers=h)).status)
        assert statuses == [200] * 6
        assert (await http.get(other + "/api/v1/me", headers=h)).status == 429
        assert (await http.get(world.url("/api/v1/me"), headers=h)).status == 429


async def test_without_redis_each_process_still_limits(serve: Serve, clean_db: Servers) -> None:
    limits = Limits(rate_requests=3, rate_seconds=60)
    async with serve() as world, \
            another_process(clean_db, limits, redis_url=closed_port_url()) as alone, \
            aiohttp.ClientSession() as http:
        h = world.headers("buyer")
        statuses = [(await http.get(alone + "/api/v1/me", headers=h)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_a_missing_credential_stays_401_while_guesses_are_throttled(serve: Serve) -> None:
    async with serve(limits=Limits(rate_requests=100, rate_seconds=60)) as world, \
            aiohttp.ClientSession() as http:
        me = world.url("/api/v1/me")
        for _ in range(3):  # no credential: a 401 each time, and not counted as a guess
            assert (await http.get(me)).status == 401
        guesses = [(await http.get(me, headers={"Authorization": f"Bearer guess-{i}"})).status
                   for i in range(11)]
        assert guesses == [401] * 10 + [429]
        r = await http.get(me)
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "unauthorized"
        r = await http.get(me, headers={"Cookie": "mm_session=guessed-session"})
        assert r.status == 429  # a guessed session cookie is a credential too
