"""arq WorkerSettings built from our Settings: functions, cron jobs, start-up and shutdown.

`arq` can also run it directly: `worker_settings(Settings.from_env().with_urls(...))` is a dict
of Worker keyword arguments.
"""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings

from config.settings import Settings, WorkerConfig
from workers.context import Ctx, close_resources, open_resources
from workers.enqueue import JOB_FORMAT
from workers.jobs import deliver_alerts, match_brief, send_daily_digests
from workers.relay import relay_outbox


async def on_startup(ctx: Ctx) -> None:
    # run_worker opens the resources once and keeps them across arq restarts (Redis outages).
    if "pool" not in ctx:
        await open_resources(ctx, ctx["settings"], ctx["config"])


async def on_shutdown(ctx: Ctx) -> None:
    if not ctx.get("resources_external"):
        await close_resources(ctx)


def worker_settings(settings: Settings, config: WorkerConfig | None = None) -> dict[str, Any]:
    config = config or WorkerConfig.from_env()
    if not settings.redis_url or not settings.database_url:
        raise ValueError("the worker needs database_url and redis_url")
    step = max(1, min(60, config.relay_every_seconds))
    return {
        "functions": [
            # No arq retries for these: state is in PostgreSQL and the relay re-enqueues.
            func(match_brief, max_tries=1),  # type: ignore[arg-type]
            func(deliver_alerts, max_tries=1),  # type: ignore[arg-type]
            func(send_daily_digests, max_tries=1),  # type: ignore[arg-type]
        ],
        "cron_jobs": [
            cron(
                relay_outbox,  # type: ignore[arg-type]
                second=set(range(0, 60, step)),
                microsecond=0,
                run_at_startup=True,
                timeout=60,
            ),
            # Hourly; each seller gets at most one digest per digest_interval_seconds.
            cron(send_daily_digests, minute={0}, second={30}, timeout=3600),  # type: ignore[arg-type]
        ],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        **JOB_FORMAT,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "ctx": {"settings": settings, "config": config},
        # Results are never read, and a kept result would block re-enqueueing the same job id.
        "keep_result": 0,
        "max_jobs": config.max_jobs,
        "job_timeout": config.job_timeout,
        "poll_delay": 0.05,  # first alert within a second of publishing
        "job_completion_wait": config.shutdown_grace_seconds,
    }
