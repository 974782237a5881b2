"""The marketplace's own category list (DOS lots, the Australian marketplace's domains, CPV
codes): admins manage it; briefs, sellers, alert preferences and rules name categories from it.
All category SQL lives here."""

from __future__ import annotations

from typing import Any

import asyncpg

_COLUMNS = "id, label, parent_id, created_at"


def category_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "label": row["label"],
        "parent_id": row["parent_id"],
        "created_at": row["created_at"].isoformat(),
    }


async def list_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"SELECT {_COLUMNS} FROM categories ORDER BY label, id"))


async def get(conn: asyncpg.Connection, category_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM categories WHERE id = $1", category_id)


async def unknown(conn: asyncpg.Connection, ids: list[str]) -> list[str]:
    """The ids of `ids` that are not in the list, in their given order (duplicates once).

    The known ones stay locked (FOR KEY SHARE) until the caller's transaction ends, so a
    concurrent delete (which checks `uses` under FOR UPDATE) waits and then sees the new use."""
    if not ids:
        return []
    known = {
        r[0]
        for r in await conn.fetch(
            "SELECT id FROM categories WHERE id = ANY($1::text[]) FOR KEY SHARE", ids
        )
    }
    return [i for i in dict.fromkeys(ids) if i not in known]


async def create(
    conn: asyncpg.Connection, category_id: str, label: str, parent_id: str | None
) -> asyncpg.Record | None:
    """None when the id is taken."""
    return await conn.fetchrow(
        "INSERT INTO categories (id, label, parent_id) VALUES ($1, $2, $3)"
        f" ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}",
        category_id,
        label,
        parent_id,
    )


async def update(
    conn: asyncpg.Connection, category_id: str, label: str, parent_id: str | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"UPDATE categories SET label = $2, parent_id = $3 WHERE id = $1 RETURNING {_COLUMNS}",
        category_id,
        label,
        parent_id,
    )


async def ancestors(conn: asyncpg.Connection, category_id: str) -> list[str]:
    """`category_id` and its parents up to the root (a cycle stops the walk)."""
    rows = await conn.fetch(
        "WITH RECURSIVE up(id, parent_id) AS ("
        " SELECT id, parent_id FROM categories WHERE id = $1"
        " UNION SELECT c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id)"
        " SELECT id FROM up",
        category_id,
    )
    return [r[0] for r in rows]


async def uses(conn: asyncpg.Connection, category_id: str) -> dict[str, int]:
    """Where a category is named (only the places that name it): a category in use cannot be
    deleted, or briefs, sellers, preferences and rules would name something that is gone."""
    row = await conn.fetchrow(
        "SELECT"
        " (SELECT count(*) FROM categories WHERE parent_id = $1) AS children,"
        " (SELECT count(*) FROM briefs WHERE category = $1) AS briefs,"
        " (SELECT count(*) FROM sellers WHERE $1 = ANY(categories)"
        "   OR case_studies @> jsonb_build_array(jsonb_build_object('category', $1::text)))"
        "   AS sellers,"
        " (SELECT count(*) FROM alert_preferences WHERE $1 = ANY(categories))"
        "   AS alert_preferences,"
        " (SELECT count(*) FROM rule_sets WHERE body -> 'category_overrides' ? $1) AS rule_sets,"
        " (SELECT count(*) FROM seller_claims WHERE status = 'pending' AND"
        "   (value ->> 'category' = $1)) AS pending_claims",
        category_id,
    )
    return {k: int(v) for k, v in dict(row).items() if v}


async def lock(conn: asyncpg.Connection, category_id: str) -> bool:
    """Lock the row for a delete (see `unknown`); False when it does not exist."""
    return bool(
        await conn.fetchval("SELECT true FROM categories WHERE id = $1 FOR UPDATE", category_id)
    )


async def delete(conn: asyncpg.Connection, category_id: str) -> bool:
    return (await conn.execute("DELETE FROM categories WHERE id = $1", category_id)) == "DELETE 1"
