"""The LISTEN connection that feeds the live index: one dedicated connection listening on
'seller_changed' (payload: seller id) and 'rules_changed', kept alive by a supervisor that
pings it and reconnects; after a reconnect the owner reloads everything, since notifications
were missed while it was down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger("live.listener")

CHANNELS = ("seller_changed", "rules_changed")

Notify = Callable[[Any, int, str, str], None]


class Listener:
    def __init__(self, dsn: str, on_notify: Notify, *, ping_seconds: float = 5.0) -> None:
        self.dsn = dsn
        self.on_notify = on_notify
        self.ping_seconds = ping_seconds
        self.connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self.stopping = False

    async def connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        for channel in CHANNELS:
            await conn.add_listener(channel, self.on_notify)
        self.connection = conn
        self._lost = lost

    async def close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def supervise(self, reload: Callable[[], Awaitable[None]]) -> None:
        """Keep the LISTEN connection alive; after a reconnect, `reload` everything."""
        backoff = 0.5
        while not self.stopping:
            conn = self.connection
            healthy = conn is not None and not conn.is_closed()
            if healthy:
                assert conn is not None
                try:
                    await asyncio.wait_for(self._lost.wait(), self.ping_seconds)
                    healthy = False
                except TimeoutError:
                    try:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self.ping_seconds)
                    except (asyncpg.PostgresError, OSError, TimeoutError):
                        healthy = False
                if healthy:
                    continue
            log.warning("index listener connection lost; reconnecting")
            await self.close()
            try:
                await self.connect()
                await reload()
                backoff = 0.5
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning("index listener reconnect failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
