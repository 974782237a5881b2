"""What every job finds in its arq ctx, created once per worker process.

ctx keys: settings, config, pool (asyncpg), live (LiveMatcher), http (one keep-alive webhook
client), mailer, links (signed links in alerts), sem (bounds requests in flight across all
jobs), budget (bounds alerts claimed but not finished), outcomes (batched result writer),
redis (arq's own pool), worker (the arq Worker, to know when it is shutting down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from config.settings import Settings, WorkerConfig
from models.db import create_pool
from workers.delivery import Mailer, make_http_client
from workers.links import links_for
from workers.results import ClaimBudget, Outcomes

Ctx = dict[str, Any]
log = logging.getLogger("workers")


def stopping(ctx: Ctx) -> bool:
    """True once the worker got SIGTERM: finish the batch in hand, claim no more."""
    worker = ctx.get("worker")
    return bool(ctx.get("stopping")) or (worker is not None and not worker.allow_pick_jobs)


async def open_resources(ctx: Ctx, settings: Settings, config: WorkerConfig) -> None:
    from live import LiveMatcher, default_snapshot_path

    assert settings.database_url, "the worker needs a database URL"
    pool = await create_pool(settings.database_url, min_size=2, max_size=10)
    live = LiveMatcher(
        pool,
        settings.database_url,
        refit_seconds=config.refit_seconds,
        refit_after_changes=config.refit_after_changes,
        snapshot_path=default_snapshot_path(settings.data_dir),
    )
    try:
        await live.start()
    except BaseException:
        await pool.close()
        raise
    outcomes = Outcomes(ctx)
    ctx.update(
        settings=settings,
        config=config,
        pool=pool,
        live=live,
        http=make_http_client(config, allow_private=settings.webhook_allow_private),
        mailer=Mailer(settings.smtp_url, timeout=config.smtp_timeout),
        links=links_for(settings),
        sem=asyncio.Semaphore(config.concurrency),
        budget=ClaimBudget(2 * config.concurrency),
        outcomes=outcomes,
    )
    ctx["outcomes_task"] = asyncio.create_task(outcomes.run(), name="delivery-outcomes")


async def close_resources(ctx: Ctx) -> None:
    task = ctx.pop("outcomes_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    outcomes = ctx.get("outcomes")
    if outcomes is not None:
        try:
            await outcomes.flush()
        except Exception:
            log.exception("could not record the last delivery results; they will be resent")
    if "http" in ctx:
        await ctx.pop("http").close()
    if "live" in ctx:
        await ctx.pop("live").stop()
    if "pool" in ctx:
        await ctx.pop("pool").close()
