"""SQL of the Digital Marketplace importer: briefs keyed by external_id, sellers by name_key.

Each function is one statement; the importer decides what changed and wraps every source row
in its own transaction (a savepoint when the caller already holds one).
"""

from __future__ import annotations

from typing import Any

import asyncpg

# Columns of `briefs` the importer owns; anything else (e.g. buyer_account_id) it leaves alone.
BRIEF_FIELDS = (
    "title", "organisation", "category", "role", "location", "status", "published_at",
    "closes_at", "budget", "winner_seller_id",
)
SELLER_FIELDS = ("name", "categories", "locations", "sme", "case_studies")

_BRIEF_COLUMNS = "id, external_id, " + ", ".join(BRIEF_FIELDS) + ", updated_at"
_SELLER_COLUMNS = "id, name, name_key, " + ", ".join(SELLER_FIELDS) + ", updated_at"


async def brief_by_external_id(conn: asyncpg.Connection, external_id: str) -> asyncpg.Record | None:
    # FOR UPDATE: two imports of the same file at once serialise on the row instead of racing.
    return await conn.fetchrow(
        f"SELECT {_BRIEF_COLUMNS} FROM briefs WHERE external_id = $1 FOR UPDATE", external_id
    )


async def insert_brief(
    conn: asyncpg.Connection, external_id: str, fields: dict[str, Any]
) -> asyncpg.Record | None:
    """Insert an imported brief; None when another import created it first."""
    names = [n for n in BRIEF_FIELDS if n in fields]
    placeholders = ", ".join(f"${i + 2}" for i in range(len(names)))
    return await conn.fetchrow(
        f"INSERT INTO briefs (external_id, {', '.join(names)}) VALUES ($1, {placeholders})"
        f" ON CONFLICT (external_id) DO NOTHING RETURNING {_BRIEF_COLUMNS}",
        external_id,
        *[fields[n] for n in names],
    )


async def update_brief(
    conn: asyncpg.Connection, brief_id: int, fields: dict[str, Any]
) -> asyncpg.Record:
    names = [n for n in BRIEF_FIELDS if n in fields]
    if len(names) != len(fields):
        raise ValueError(f"not importer fields: {sorted(set(fields) - set(names))}")
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    row = await conn.fetchrow(
        f"UPDATE briefs SET {sets}, updated_at = now() WHERE id = $1 RETURNING {_BRIEF_COLUMNS}",
        brief_id,
        *[fields[n] for n in names],
    )
    assert row is not None
    return row


async def seller_by_name_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_SELLER_COLUMNS} FROM sellers WHERE name_key = $1 FOR UPDATE", key
    )


async def insert_seller(
    conn: asyncpg.Connection, key: str, fields: dict[str, Any]
) -> asyncpg.Record | None:
    """Insert a seller first seen as a winner; None when the company already exists."""
    return await conn.fetchrow(
        "INSERT INTO sellers (name, name_key, categories, locations, sme, case_studies)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_key) DO NOTHING"
        f" RETURNING {_SELLER_COLUMNS}",
        fields["name"],
        key,
        fields.get("categories", []),
        fields.get("locations", []),
        fields.get("sme", False),
        fields.get("case_studies", []),
    )
