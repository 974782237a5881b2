"""Transactional outbox: a row written in the same transaction as the change that needs a job;
the job is enqueued only after commit, and the relay re-enqueues rows the queue lost."""

from __future__ import annotations

from typing import Any

import asyncpg


async def add(conn: asyncpg.Connection, job: str, args: list[Any]) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO outbox (job, args) VALUES ($1, $2) RETURNING id", job, args
        )
    )


async def mark_enqueued(conn: asyncpg.Connection, outbox_id: int) -> None:
    await conn.execute("UPDATE outbox SET enqueued_at = now() WHERE id = $1", outbox_id)


async def mark_done(conn: asyncpg.Connection, outbox_id: int) -> None:
    await conn.execute(
        "UPDATE outbox SET done_at = now() WHERE id = $1 AND done_at IS NULL", outbox_id
    )


async def list_undone(
    conn: asyncpg.Connection, *, older_than_seconds: float, limit: int = 500
) -> list[dict[str, Any]]:
    """Rows not done and not (re-)enqueued within the grace period: the queue lost them."""
    rows = await conn.fetch(
        "SELECT id, job, args, created_at, enqueued_at FROM outbox WHERE done_at IS NULL"
        " AND COALESCE(enqueued_at, created_at) < now() - make_interval(secs => $1)"
        " ORDER BY id LIMIT $2",
        older_than_seconds,
        limit,
    )
    return [dict(r) for r in rows]
