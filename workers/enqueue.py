"""After-commit enqueueing through the outbox (publishing: the brief, its audit event and the
outbox row commit together; the job is enqueued only after the commit).

The outbox row is written in the same transaction as the change; these helpers run after the
commit. A queue that is down never fails the request: the row stays un-enqueued and the relay
cron re-enqueues it once the queue is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import arq
import asyncpg
import orjson
from arq.connections import RedisSettings

from models import outbox

log = logging.getLogger("workers.enqueue")

ENQUEUE_TIMEOUT = 2.0  # seconds: publishing must stay fast when Redis hangs


def serialize_job(data: dict[str, Any]) -> bytes:
    """arq's job (and result) format: JSON, never arq's default pickle, so whoever can write to
    the queue can at most ask for one of our jobs with JSON arguments, not run code in the
    worker. Our jobs take ids and strings only."""
    return orjson.dumps(data, default=str)


def deserialize_job(raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a job must be a JSON object")
    return data


# The keyword arguments every arq pool and Worker of ours gets.
JOB_FORMAT: dict[str, Any] = {
    "job_serializer": serialize_job,
    "job_deserializer": deserialize_job,
}


def redis_settings(redis_url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(redis_url)
    # Fail fast and let the relay catch up rather than hold a request for many seconds.
    settings.conn_timeout = 2
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


async def create_queue(redis_url: str) -> arq.ArqRedis:
    return await arq.create_pool(redis_settings(redis_url), **JOB_FORMAT)


def job_id_for(outbox_id: int) -> str:
    return f"outbox:{outbox_id}"


async def enqueue_outbox(
    redis: arq.ArqRedis | None,
    pool: asyncpg.Pool,
    outbox_id: int,
    job: str,
    args: list[Any],
) -> bool:
    """Enqueue `job(outbox_id, *args)` (job id `outbox:<id>`, so arq drops duplicates) and mark
    the row enqueued. The job gets the outbox id first so it can mark the row done in its own
    transaction; e.g. the outbox row ('match_brief', [brief_id]) runs match_brief(outbox_id,
    brief_id). Returns False, after logging, when the queue is unavailable."""
    if redis is None:
        return False
    try:
        await asyncio.wait_for(
            redis.enqueue_job(job, outbox_id, *args, _job_id=job_id_for(outbox_id)), ENQUEUE_TIMEOUT
        )
    except Exception as exc:  # any queue failure: the relay re-enqueues later
        log.warning(
            "enqueue failed; the relay will retry: %s: %s",
            type(exc).__name__,
            exc,
            extra={"job": job},
        )
        return False
    # enqueue_job returns None when the job id is already queued: it is enqueued either way.
    try:
        async with pool.acquire() as conn:
            await outbox.mark_enqueued(conn, outbox_id)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not mark outbox %s enqueued: %s", outbox_id, exc)
    return True
