"""Briefs (opportunities). All brief SQL lives here."""

from __future__ import annotations

from typing import Any

import asyncpg

from models.types import Brief

_COLUMNS = (
    "id, external_id, buyer_account_id, organisation, title, summary, category, role, location,"
    " essential_skills, nice_to_have_skills, max_day_rate, budget, closes_at, status,"
    " published_at, winner_seller_id, awarded_at, created_at, updated_at"
)
_FIELDS = (
    "organisation", "title", "summary", "category", "role", "location", "essential_skills",
    "nice_to_have_skills", "max_day_rate", "budget", "closes_at",
)
_UPDATABLE = frozenset(_FIELDS)


def row_to_brief(row: asyncpg.Record | dict[str, Any]) -> Brief:
    return Brief(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        category=row["category"],
        role=row["role"],
        organisation=row["organisation"],
        location=row["location"],
        essential_skills=list(row["essential_skills"]),
        nice_to_have_skills=list(row["nice_to_have_skills"]),
        max_day_rate=row["max_day_rate"],
        budget=row["budget"],
        closes_at=row["closes_at"],
        published_at=row["published_at"],
        status=row["status"],
    )


def brief_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The API shape of a brief row (dates as ISO strings)."""
    data = dict(row)
    for key in ("closes_at", "published_at", "awarded_at", "created_at", "updated_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


async def create(
    conn: asyncpg.Connection, fields: dict[str, Any], *, buyer_account_id: int | None
) -> asyncpg.Record:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not a brief field: {sorted(unknown)}")
    return await conn.fetchrow(
        "INSERT INTO briefs (buyer_account_id, organisation, title, summary, category, role,"
        " location, essential_skills, nice_to_have_skills, max_day_rate, budget, closes_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {_COLUMNS}",
        buyer_account_id,
        fields.get("organisation", ""),
        fields.get("title", ""),
        fields.get("summary", ""),
        fields.get("category", ""),
        fields.get("role", ""),
        fields.get("location", ""),
        fields.get("essential_skills", []),
        fields.get("nice_to_have_skills", []),
        fields.get("max_day_rate"),
        fields.get("budget"),
        fields.get("closes_at"),
    )


async def get(
    conn: asyncpg.Connection, brief_id: int, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM briefs WHERE id = $1{lock}", brief_id)


async def update(
    conn: asyncpg.Connection, brief_id: int, fields: dict[str, Any]
) -> asyncpg.Record | None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not fields:
        return await get(conn, brief_id)
    names = list(fields)
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE briefs SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        brief_id,
        *[fields[n] for n in names],
    )


async def list_page(
    conn: asyncpg.Connection,
    *,
    buyer_account_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[asyncpg.Record]:
    """Newest first; `buyer_account_id` None means every buyer's briefs (admins)."""
    return list(
        await conn.fetch(
            f"SELECT {_COLUMNS} FROM briefs WHERE ($1::bigint IS NULL OR buyer_account_id = $1)"
            " AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3 OFFSET $4",
            buyer_account_id,
            status,
            limit,
            offset,
        )
    )


async def publish(conn: asyncpg.Connection, brief_id: int) -> asyncpg.Record | None:
    """Draft -> published. None when the brief is not a draft (or does not exist)."""
    return await conn.fetchrow(
        "UPDATE briefs SET status = 'published', published_at = now(), updated_at = now()"
        f" WHERE id = $1 AND status = 'draft' RETURNING {_COLUMNS}",
        brief_id,
    )


async def close(conn: asyncpg.Connection, brief_id: int) -> asyncpg.Record | None:
    """Published -> closed. None when the brief is not published."""
    return await conn.fetchrow(
        "UPDATE briefs SET status = 'closed', updated_at = now()"
        f" WHERE id = $1 AND status = 'published' RETURNING {_COLUMNS}",
        brief_id,
    )


async def award(
    conn: asyncpg.Connection, brief_id: int, winner_seller_id: int | None
) -> asyncpg.Record | None:
    """Published or closed -> awarded (to the winner) or unsuccessful (None: no award). None
    when the brief is in another state."""
    return await conn.fetchrow(
        "UPDATE briefs SET status = CASE WHEN $2::bigint IS NULL THEN 'unsuccessful'"
        " ELSE 'awarded' END, winner_seller_id = $2, awarded_at = now(), updated_at = now()"
        f" WHERE id = $1 AND status IN ('published', 'closed') RETURNING {_COLUMNS}",
        brief_id,
        winner_seller_id,
    )


async def recent_published(conn: asyncpg.Connection, limit: int = 50) -> list[Brief]:
    """The last `limit` published (or since closed/awarded) briefs, newest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM briefs WHERE published_at IS NOT NULL AND status <> 'draft'"
        " ORDER BY published_at DESC, id DESC LIMIT $1",
        limit,
    )
    return [row_to_brief(r) for r in rows]
