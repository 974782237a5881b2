"""SQL of the importers (Digital Marketplace CSV, OCDS): briefs keyed by external_id, sellers
by name_key (Digital Marketplace) or by OCDS party_id, categories by id.

Each function is one statement; the importer decides what changed and wraps every source row
in its own transaction (a savepoint when the caller already holds one).
"""

from __future__ import annotations

from typing import Any

import asyncpg

# Columns of `briefs` the importer owns; anything else (e.g. buyer_account_id) it leaves alone.
BRIEF_FIELDS = (
    "title", "summary", "organisation", "category", "role", "location", "status", "published_at",
    "closes_at", "budget", "winner_seller_id", "awarded_at",
)
SELLER_FIELDS = ("name", "categories", "locations", "sme", "case_studies")

_BRIEF_COLUMNS = "id, external_id, " + ", ".join(BRIEF_FIELDS) + ", updated_at"
_SELLER_COLUMNS = "id, name, name_key, party_id, " + ", ".join(SELLER_FIELDS) + ", updated_at"


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


async def seller_by_party_id(conn: asyncpg.Connection, party_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_SELLER_COLUMNS} FROM sellers WHERE party_id = $1 FOR UPDATE", party_id
    )


async def insert_party_seller(
    conn: asyncpg.Connection, party_id: str, key: str, fields: dict[str, Any]
) -> asyncpg.Record | None:
    """Insert a seller first seen as an OCDS supplier; None when its party id or its
    normalised name is taken already."""
    return await conn.fetchrow(
        "INSERT INTO sellers (name, name_key, party_id, categories, sme, case_studies)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        f" RETURNING {_SELLER_COLUMNS}",
        fields["name"],
        key,
        party_id,
        fields.get("categories", []),
        fields.get("sme", False),
        fields.get("case_studies", []),
    )


async def claim_party_id(
    conn: asyncpg.Connection, seller_id: int, party_id: str
) -> asyncpg.Record | None:
    """Give a seller that has no party id yet this one; None when it has one already."""
    return await conn.fetchrow(
        "UPDATE sellers SET party_id = $2, updated_at = now()"
        f" WHERE id = $1 AND party_id IS NULL RETURNING {_SELLER_COLUMNS}",
        seller_id,
        party_id,
    )


async def add_category(conn: asyncpg.Connection, category_id: str, label: str) -> bool:
    """Add a category unless it exists (an admin's label is never overwritten); True when
    added."""
    added = await conn.fetchval(
        "INSERT INTO categories (id, label) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
        " RETURNING true",
        category_id,
        label,
    )
    return bool(added)
