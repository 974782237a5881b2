"""Seller profiles. All seller SQL lives here."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import asyncpg

from models.names import name_key
from models.types import CaseStudy, Seller

_COLUMNS = (
    "id, name, summary, categories, skills, locations, day_rate, sme, active, case_studies,"
    " created_at, updated_at"
)


def _case_study(data: dict[str, Any]) -> CaseStudy:
    won_at = data.get("won_at")
    return CaseStudy(
        title=data.get("title", ""),
        summary=data.get("summary", ""),
        organisation=data.get("organisation", ""),
        category=data.get("category", ""),
        role=data.get("role", ""),
        location=data.get("location", ""),
        won_at=date.fromisoformat(won_at) if isinstance(won_at, str) and won_at else None,
        brief_id=data.get("brief_id"),
    )


def parse_case_study(data: dict[str, Any]) -> CaseStudy:
    """A stored (or sent) case study object -> CaseStudy."""
    return _case_study(data)


def case_study_json(cs: CaseStudy) -> dict[str, Any]:
    data = asdict(cs)
    data["won_at"] = cs.won_at.isoformat() if cs.won_at else None
    return data


def row_to_seller(row: asyncpg.Record | dict[str, Any]) -> Seller:
    return Seller(
        id=row["id"],
        name=row["name"],
        summary=row["summary"],
        categories=list(row["categories"]),
        skills=list(row["skills"]),
        locations=list(row["locations"]),
        day_rate=row["day_rate"],
        sme=row["sme"],
        active=row["active"],
        case_studies=[_case_study(c) for c in row["case_studies"] or []],
    )


def seller_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The API shape of a seller row."""
    data = dict(row)
    for key in ("created_at", "updated_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


async def create(conn: asyncpg.Connection, fields: dict[str, Any]) -> asyncpg.Record:
    """Insert a seller. Raises asyncpg.UniqueViolationError when the company already exists."""
    return await conn.fetchrow(
        "INSERT INTO sellers (name, name_key, summary, categories, skills, locations, day_rate,"
        " sme, active, case_studies) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        f" RETURNING {_COLUMNS}",
        fields["name"],
        name_key(fields["name"]),
        fields.get("summary", ""),
        fields.get("categories", []),
        fields.get("skills", []),
        fields.get("locations", []),
        fields.get("day_rate"),
        fields.get("sme", False),
        fields.get("active", True),
        fields.get("case_studies", []),
    )


_UPDATABLE = {
    "name", "summary", "categories", "skills", "locations", "day_rate", "sme", "active",
    "case_studies",
}


async def update(
    conn: asyncpg.Connection, seller_id: int, fields: dict[str, Any]
) -> asyncpg.Record | None:
    """Change the given fields (unknown keys are a programming error)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not fields:
        return await get(conn, seller_id)
    values = dict(fields)
    if "name" in values:
        values["name_key"] = name_key(values["name"])
    names = list(values)
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    return await conn.fetchrow(
        f"UPDATE sellers SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        seller_id,
        *[values[n] for n in names],
    )


async def get(
    conn: asyncpg.Connection, seller_id: int, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM sellers WHERE id = $1{lock}", seller_id)


async def list_page(
    conn: asyncpg.Connection, *, after_id: int = 0, limit: int = 50, query: str | None = None
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT {_COLUMNS} FROM sellers WHERE id > $1"
            " AND ($3::text IS NULL OR name ILIKE '%' || $3 || '%') ORDER BY id LIMIT $2",
            after_id,
            limit,
            query,
        )
    )


async def load_all(conn: asyncpg.Connection) -> list[Seller]:
    """Every seller, for building a matcher index."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sellers ORDER BY id")
    return [row_to_seller(r) for r in rows]


async def load_names(conn: asyncpg.Connection) -> dict[int, str]:
    """Every seller's name by id (what a live index shows beside its matches)."""
    rows = await conn.fetch("SELECT id, name FROM sellers")
    return {int(r[0]): r[1] for r in rows}


async def load_many(conn: asyncpg.Connection, ids: list[int]) -> list[Seller]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sellers WHERE id = ANY($1::bigint[])", ids)
    return [row_to_seller(r) for r in rows]


async def delete(conn: asyncpg.Connection, seller_id: int) -> bool:
    return (await conn.execute("DELETE FROM sellers WHERE id = $1", seller_id)) == "DELETE 1"
