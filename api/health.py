"""Health: /health (database and queue, with details), /health/live (the process answers) and
/health/ready (it can serve: database reachable, live index loaded)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api.keys import LIVE, POOL, QUEUE
from api.routing import Ctx, Operation, json_response

_DB_TIMEOUT = 2.0


class HealthOut(BaseModel):
    status: str
    checks: dict[str, Any]


async def _database(app: web.Application) -> dict[str, Any]:
    async def probe() -> None:
        async with app[POOL].acquire(timeout=_DB_TIMEOUT) as conn:
            await conn.fetchval("SELECT 1")

    try:
        await asyncio.wait_for(probe(), _DB_TIMEOUT)
    except Exception as exc:
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    return {"ok": True}


def _index(app: web.Application) -> dict[str, Any]:
    live = app.get(LIVE)
    if live is None:
        return {"ok": False, "error": "not started"}
    if not getattr(live, "ready", True):
        return {"ok": False, "error": "the matcher index is loading"}
    # The process id tells which of several API processes (--processes K) answered.
    return {"ok": True, "sellers": len(live), "rules_version": live.rules_version,
            "source": getattr(live, "source", ""), "pid": os.getpid()}


def _answer(checks: dict[str, dict[str, Any]]) -> web.Response:
    ok = all(c["ok"] for c in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         200 if ok else 503)


async def health(ctx: Ctx) -> web.StreamResponse:
    database, queue = await asyncio.gather(_database(ctx.app), ctx.app[QUEUE].check())
    return _answer({"database": database, "queue": queue, "index": _index(ctx.app)})


async def live(ctx: Ctx) -> web.StreamResponse:
    return json_response({"status": "ok", "checks": {}})


async def ready(ctx: Ctx) -> web.StreamResponse:
    # The queue is left out on purpose: without it the API still serves and publishes (the
    # outbox relay catches up), so taking the instance out of rotation would only hurt.
    return _answer({"database": await _database(ctx.app), "index": _index(ctx.app)})


ROUTES = [
    Operation(
        "GET", "/health", health, "Check the database and the queue", "operations",
        roles=None, db=False, response=HealthOut, errors=(503,),
    ),
    Operation(
        "GET", "/health/live", live, "Check that the process answers", "operations",
        roles=None, db=False, response=HealthOut,
    ),
    Operation(
        "GET", "/health/ready", ready, "Check that the process can serve", "operations",
        roles=None, db=False, response=HealthOut, errors=(503,),
    ),
]
