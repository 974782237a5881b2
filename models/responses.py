"""Seller responses to opportunities ("interested", "not for me" with a reason, "applied"):
the latest answer per brief and seller counts. All responses SQL lives here."""

from __future__ import annotations

from typing import Any

import asyncpg

RESPONSES = ("interested", "not_for_me", "applied")
REASONS = ("skills", "size", "location", "rate", "timing", "other")

_COLUMNS = "brief_id, seller_id, response, reason, created_at, updated_at"


async def upsert(
    conn: asyncpg.Connection, brief_id: int, seller_id: int, response: str, reason: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Record the seller's answer. Returns (the answer now, the one it replaced or None)."""
    before = await get(conn, brief_id, seller_id, for_update=True)
    row = await conn.fetchrow(
        "INSERT INTO responses (brief_id, seller_id, response, reason) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (brief_id, seller_id) DO UPDATE SET response = EXCLUDED.response,"
        " reason = EXCLUDED.reason, updated_at = now()"
        f" RETURNING {_COLUMNS}",
        brief_id,
        seller_id,
        response,
        reason,
    )
    return dict(row), before


async def get(
    conn: asyncpg.Connection, brief_id: int, seller_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM responses WHERE brief_id = $1 AND seller_id = $2{lock}",
        brief_id,
        seller_id,
    )
    return dict(row) if row else None
