"""The relay cron: whatever the queue lost is found in PostgreSQL and enqueued again.

- outbox rows not done past a grace period (Redis was down at publish time, or lost the job);
- due alerts nobody is sending: retries whose time has come, and alerts claimed by a worker
  that died (their lock expired).
"""

from __future__ import annotations

import logging
from typing import Any

from models import alerts as alerts_repo
from models import outbox as outbox_repo
from workers.context import Ctx
from workers.enqueue import enqueue_outbox

log = logging.getLogger("workers.relay")


async def relay_outbox(ctx: Ctx) -> dict[str, Any]:
    config = ctx["config"]
    pool = ctx["pool"]
    async with pool.acquire() as conn:
        rows = await outbox_repo.list_undone(conn, older_than_seconds=config.outbox_grace_seconds)
        due = await alerts_repo.has_due(conn)
    requeued = 0
    for row in rows:
        args = list(row["args"] or [])
        if await enqueue_outbox(ctx["redis"], pool, row["id"], row["job"], args):
            requeued += 1
    if requeued:
        log.info("relay re-enqueued %d outbox rows", requeued)
    if due:
        from workers.jobs import kick_delivery

        await kick_delivery(ctx, 1)
    return {"requeued": requeued, "delivery_kicked": due}
