"""Seller claims: what a seller says about itself (a category, SME status, past work) waits
here until an admin approves or rejects it. Only approved claims reach the sellers row, which
is what matching reads. All claim SQL lives here."""

from __future__ import annotations

from typing import Any

import asyncpg

KINDS = ("category", "sme", "past_work")
_COLUMNS = (
    "id, seller_id, kind, value, status, created_by, created_at, decided_by, decided_at, note"
)


def claim_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    data = {k: row[k] for k in (
        "id", "seller_id", "kind", "value", "status", "created_by", "decided_by", "note")}
    for key in ("created_at", "decided_at"):
        data[key] = row[key].isoformat() if row[key] is not None else None
    name = row.get("seller_name")
    if name is not None:  # lists across sellers carry the name
        data["seller_name"] = name
    return data


async def create(
    conn: asyncpg.Connection,
    seller_id: int,
    kind: str,
    value: dict[str, Any],
    created_by: int | None,
) -> asyncpg.Record | None:
    """A pending claim; None when the same claim is already pending (a seller saving its
    profile twice asks once)."""
    return await conn.fetchrow(
        "INSERT INTO seller_claims (seller_id, kind, value, created_by)"
        " SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM seller_claims"
        "  WHERE seller_id = $1 AND kind = $2 AND value = $3 AND status = 'pending')"
        f" RETURNING {_COLUMNS}",
        seller_id,
        kind,
        value,
        created_by,
    )


async def list_for_seller(
    conn: asyncpg.Connection,
    seller_id: int,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[asyncpg.Record]:
    """Newest first."""
    return list(await conn.fetch(
        f"SELECT {_COLUMNS} FROM seller_claims WHERE seller_id = $1"
        " AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3 OFFSET $4",
        seller_id, status, limit, offset,
    ))


async def list_all(
    conn: asyncpg.Connection, *, status: str | None = "pending", limit: int = 50, offset: int = 0
) -> list[asyncpg.Record]:
    """Every seller's claims with the seller's name, oldest first (the admin's queue)."""
    cols = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
    return list(await conn.fetch(
        f"SELECT {cols}, s.name AS seller_name FROM seller_claims c"
        " JOIN sellers s ON s.id = c.seller_id"
        " WHERE ($1::text IS NULL OR c.status = $1) ORDER BY c.id LIMIT $2 OFFSET $3",
        status, limit, offset,
    ))


async def get(
    conn: asyncpg.Connection, claim_id: int, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM seller_claims WHERE id = $1{lock}", claim_id
    )


async def decide(
    conn: asyncpg.Connection, claim_id: int, status: str, decided_by: int | None, note: str
) -> asyncpg.Record | None:
    """Pending -> approved or rejected; None when the claim is not pending."""
    if status not in ("approved", "rejected"):
        raise ValueError(f"not a decision: {status}")
    return await conn.fetchrow(
        "UPDATE seller_claims SET status = $2, decided_by = $3, decided_at = now(), note = $4"
        f" WHERE id = $1 AND status = 'pending' RETURNING {_COLUMNS}",
        claim_id, status, decided_by, note,
    )
