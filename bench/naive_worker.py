"""The naive fan-out that bench/fanout.py measures beside ours: the production worker, except
that a matched brief enqueues one arq job per alert and nothing else delivers (no batched
delivery jobs, no relay kicks). Benchmark-only, so it lives here, not in workers/.

    python -m bench.naive_worker   (the settings are the worker's: MARKETPLACE_* variables)
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq import func

from config.logs import setup_logging
from config.settings import Settings
from models import alerts as alerts_repo
from workers import jobs
from workers import main as worker_main
from workers.context import Ctx
from workers.results import Outcomes, leases_of
from workers.settings import worker_settings

_match_brief = jobs.match_brief


async def match_brief(ctx: Ctx, *args: Any, **kwargs: Any) -> Any:
    """Our matching, then one queue job per instant alert (the naive fan-out)."""
    result = await _match_brief(ctx, *args, **kwargs)
    brief_id = result["brief_id"] if isinstance(result, dict) else None
    if brief_id is not None:
        async with ctx["pool"].acquire() as conn:
            rows = await alerts_repo.list_for_brief(conn, brief_id, limit=1_000_000)
        for row in rows:
            if row["channel"] != "digest" and row["status"] == "pending":
                await ctx["redis"].enqueue_job("deliver_alert", row["id"])
    return result


async def deliver_alert(ctx: Ctx, alert_id: int) -> bool:
    """One alert per job."""
    async with ctx["pool"].acquire() as conn:
        batch = await alerts_repo.claim_ids(
            conn, [alert_id], lock_seconds=ctx["config"].lock_seconds
        )
    if not batch:
        return False
    leases_of(ctx).hold(a["id"] for a in batch)  # renewed by the worker's heartbeat
    outcomes = Outcomes(ctx)
    await jobs.send_batch(ctx, batch, outcomes, budgeted=False)
    await outcomes.flush()
    return outcomes.counts["sent"] == 1


async def _no_kick(ctx: Ctx, how_many: int = 1, *, defer: float | None = None) -> None:
    """Only the per-alert jobs deliver: the batched delivery jobs are never started."""


def naive_settings(settings: Settings, config: Any = None) -> dict[str, Any]:
    kwargs = worker_settings(settings, config)
    functions = [f for f in kwargs["functions"] if f.name != "match_brief"]
    kwargs["functions"] = [
        func(match_brief, name="match_brief", max_tries=1),  # type: ignore[arg-type]
        func(deliver_alert, max_tries=1),  # type: ignore[arg-type]
        *functions,
    ]
    return kwargs


def main() -> None:
    setup_logging()
    # This process is the benchmark's naive worker and nothing else: swapping the worker's
    # delivery kick and job table here changes no production process.
    jobs.kick_delivery = _no_kick  # type: ignore[assignment]
    worker_main.worker_settings = naive_settings  # type: ignore[assignment]
    asyncio.run(worker_main.run_worker(Settings.from_env()))


if __name__ == "__main__":
    main()
