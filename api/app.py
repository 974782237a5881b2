"""The aiohttp application: `create_app(settings)`.

Cleanup contexts own the database pool, the arq Redis connection (optional: the API serves and
publishes without it) and the live matcher index. Every endpoint is an `Operation` declared in
its resource module; the same list builds the router and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from api import (
    alerts,
    audit,
    awards,
    briefs,
    categories,
    claims,
    health,
    invitations,
    metrics,
    open_data,
    openapi,
    opportunities,
    outcomes,
    performance,
    responses,
    rules,
    sellers,
    tokens,
)
from api.auth import bootstrap_admin
from api.headers import setup_security_headers
from api.keys import LIVE, METRICS, OPERATIONS, POOL, QUEUE, SETTINGS
from api.limits import Limits, rate_limit_middleware, setup_limits, timeout_middleware
from api.metrics import Metrics
from api.middleware import error_middleware, metrics_middleware, request_id_middleware
from api.routing import Operation, add_routes
from config.settings import Settings
from models.db import create_pool

log = logging.getLogger(__name__)
_INDEX_WAIT = 5.0  # seconds start-up waits for the matcher index before serving without it
SWITCH_INTERVAL = 0.0005  # seconds; see _live_index
MAX_BODY = 1024 * 1024  # 1 MiB: far above any honest brief or profile, small enough to be cheap


def operations() -> list[Operation]:
    return [
        *tokens.ROUTES,
        *sellers.ROUTES,
        *claims.ROUTES,
        *categories.ROUTES,
        *briefs.ROUTES,
        *opportunities.ROUTES,
        *responses.ROUTES,
        *invitations.ROUTES,
        *awards.ROUTES,
        *alerts.ROUTES,
        *rules.ROUTES,
        *outcomes.ROUTES,
        *audit.ROUTES,
        *health.ROUTES,
        *metrics.ROUTES,
        *openapi.ROUTES,
        *performance.ROUTES,
        *open_data.ROUTES,
    ]


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=10)
    app[POOL] = pool
    try:
        await bootstrap_admin(pool, settings.admin_token)
        yield
    finally:
        await pool.close()


async def _queue(app: web.Application) -> AsyncIterator[None]:
    from api.queue import Queue

    settings = app[SETTINGS]
    assert settings.redis_url is not None
    queue = Queue(settings.redis_url)
    await queue.start()
    app[QUEUE] = queue
    try:
        yield
    finally:
        await queue.close()


async def _live_index(app: web.Application) -> AsyncIterator[None]:
    from live import LiveMatcher, default_snapshot_path

    settings = app[SETTINGS]
    assert settings.database_url is not None
    live = LiveMatcher(
        app[POOL], settings.database_url, snapshot_path=default_snapshot_path(settings.data_dir)
    )
    # The index loads in the background (snapshot, or a fit in a thread). A quick load (from a
    # snapshot, a small database) completes before the server listens; a long fit does not
    # hold it: the server answers, /health/ready says 503 until the index is loaded, and
    # matching waits for it.
    # Matching runs in a thread and holds the GIL for milliseconds at a time. The stock
    # asyncio loop releases the GIL on every socket read or write and must wait for it again,
    # by default up to 5 ms (the switch interval), several times per request: there a shorter
    # interval keeps the loop answering while a preview is scored (process-wide; restored on
    # cleanup). uvloop (what `marketplace serve/up` run) holds the GIL through its I/O and
    # releases it only while it waits for events; there the default 5 ms slices serve more
    # new previews (513-517 against 482 req/s with two processes, the same p99).
    switch = sys.getswitchinterval()
    if not type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
    await live.start(wait=False)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(live.wait_ready(), _INDEX_WAIT)
    app[LIVE] = live
    try:
        yield
    finally:
        await live.stop()
        sys.setswitchinterval(switch)


def create_app(
    settings: Settings, *, pages: bool = False, limits: Limits | None = None
) -> web.Application:
    """The API; with `pages`, also the server-rendered web pages (api.web.setup_web).
    `limits` (rate limit, deadlines) default to the environment's (api.limits.Limits.from_env)."""
    if not settings.database_url or not settings.redis_url:
        raise ValueError("create_app needs settings with database_url and redis_url resolved")
    app = web.Application(
        # Outermost first: every answer, throttled or timed out included, gets a request id, is
        # counted, and is rendered as JSON by error_middleware.
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            error_middleware,
            rate_limit_middleware,
            timeout_middleware,
        ],
        client_max_size=MAX_BODY,
    )
    app[SETTINGS] = settings
    setup_security_headers(app)
    setup_limits(app, limits or Limits.from_env())
    app[METRICS] = Metrics()
    app[performance.CACHE] = {}
    ops = operations()
    app[OPERATIONS] = ops
    add_routes(app, ops)
    app.cleanup_ctx.extend([_database, _queue, _live_index])
    if pages:
        from api.web import setup_web

        setup_web(app)
    return app
