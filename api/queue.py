"""The arq Redis connection, optional by design: publishing must answer 201 while Redis is down
(the outbox row is committed; the relay cron enqueues it later), so a failed connection is
retried in the background instead of failing start-up or a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import ArqRedis

from workers.enqueue import create_queue

log = logging.getLogger(__name__)
_CONNECT_TIMEOUT = 2.0
_RETRY_EVERY = 2.0


class Queue:
    def __init__(self, url: str) -> None:
        self.url = url
        self.redis: ArqRedis | None = None
        self._task: asyncio.Task[None] | None = None

    async def _try_connect(self) -> bool:
        try:
            self.redis = await asyncio.wait_for(create_queue(self.url), _CONNECT_TIMEOUT)
            return True
        except Exception as exc:  # any failure means "not now": the queue is optional
            log.warning("queue unreachable, retrying in the background: %s", exc)
            return False

    async def _reconnect_forever(self) -> None:
        while self.redis is None:
            await asyncio.sleep(_RETRY_EVERY)
            if await self._try_connect():
                log.info("queue connected")

    async def start(self) -> None:
        if not await self._try_connect():
            self._task = asyncio.create_task(self._reconnect_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    async def check(self, wait: float = 1.0) -> dict[str, Any]:
        """Health of the queue: {"ok": bool, ...}."""
        if self.redis is None:
            return {"ok": False, "error": "not connected"}
        try:
            await asyncio.wait_for(self.redis.ping(), wait)
        except Exception as exc:
            return {"ok": False, "error": str(exc) or type(exc).__name__}
        return {"ok": True}

    async def depth(self, wait: float = 0.5) -> int | None:
        """Jobs waiting in arq's default queue, None when unknown."""
        if self.redis is None:
            return None
        try:
            queued = self.redis.zcard(self.redis.default_queue_name)
            return int(await asyncio.wait_for(queued, wait))
        except Exception:
            return None
