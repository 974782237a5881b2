"""Invitations: a buyer invites sellers to apply for a published brief, once per seller and
brief. All invitations SQL lives here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg


async def add(
    conn: asyncpg.Connection, brief_id: int, seller_ids: Sequence[int], *, invited_by: int | None
) -> list[int]:
    """Invite the sellers; those invited before stay as they were. Returns the newly invited."""
    rows = await conn.fetch(
        "INSERT INTO invitations (brief_id, seller_id, invited_by)"
        " SELECT $1, u.id, $3 FROM unnest($2::bigint[]) AS u(id)"
        " ON CONFLICT (brief_id, seller_id) DO NOTHING RETURNING seller_id",
        brief_id,
        list(seller_ids),
        invited_by,
    )
    return sorted(int(r["seller_id"]) for r in rows)


async def list_for_brief(conn: asyncpg.Connection, brief_id: int) -> list[dict[str, Any]]:
    """Every invitation of a brief with the seller's name, its place on the shortlist (None
    when not on it), its answer and the state of the invitation alert (None: no alert, the
    seller has alerts off or nowhere to send them)."""
    rows = await conn.fetch(
        "SELECT i.seller_id, s.name AS seller_name, i.invited_by, i.created_at, m.rank,"
        " r.response, a.status AS alert_status, a.channel AS alert_channel"
        " FROM invitations i JOIN sellers s ON s.id = i.seller_id"
        " LEFT JOIN matches m ON m.brief_id = i.brief_id AND m.seller_id = i.seller_id"
        " LEFT JOIN responses r ON r.brief_id = i.brief_id AND r.seller_id = i.seller_id"
        " LEFT JOIN alerts a ON a.brief_id = i.brief_id AND a.seller_id = i.seller_id"
        "   AND a.kind = 'invited'"
        " WHERE i.brief_id = $1 ORDER BY i.created_at, i.seller_id",
        brief_id,
    )
    return [dict(r) for r in rows]


async def invited_ids(conn: asyncpg.Connection, brief_id: int) -> set[int]:
    rows = await conn.fetch("SELECT seller_id FROM invitations WHERE brief_id = $1", brief_id)
    return {int(r["seller_id"]) for r in rows}


async def is_invited(conn: asyncpg.Connection, brief_id: int, seller_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM invitations WHERE brief_id = $1 AND seller_id = $2)",
            brief_id,
            seller_id,
        )
    )


async def active_sellers(conn: asyncpg.Connection, seller_ids: Sequence[int]) -> set[int]:
    """The ids among `seller_ids` that name an active seller (the ones that can be invited)."""
    rows = await conn.fetch(
        "SELECT id FROM sellers WHERE id = ANY($1::bigint[]) AND active", list(seller_ids)
    )
    return {int(r["id"]) for r in rows}
