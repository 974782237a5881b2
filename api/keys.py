"""Typed application keys: what the cleanup contexts put on the app, and what handlers read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from config.settings import Settings

if TYPE_CHECKING:  # the worker package is imported when the app starts, not when this loads
    from api.metrics import Metrics
    from api.queue import Queue
    from api.routing import Operation
    from live import LiveMatcher

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
QUEUE: web.AppKey[Queue] = web.AppKey("queue")
LIVE: web.AppKey[LiveMatcher] = web.AppKey("live")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
OPERATIONS: web.AppKey[list[Operation]] = web.AppKey("operations")
