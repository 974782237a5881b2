"""Audit events: every change to a brief, seller, rule set, token or alert writes one, in the
same transaction as the change."""

from __future__ import annotations

from typing import Any

import asyncpg


async def record(
    conn: asyncpg.Connection,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | str | None,
    data: dict[str, Any] | None = None,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO audit_events (actor_id, action, entity, entity_id, data)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            actor_id,
            action,
            entity,
            None if entity_id is None else str(entity_id),
            data or {},
        )
    )


async def list_events(
    conn: asyncpg.Connection,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, actor_id, action, entity, entity_id, data, created_at FROM audit_events"
        " WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_id = $2)"
        " AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        entity,
        entity_id,
        before_id,
        limit,
    )
    return [dict(r) for r in rows]
