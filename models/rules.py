"""Versioned matching rule sets. Exactly one version is active at a time (a partial unique
index enforces it); activating writes a NOTIFY 'rules_changed' through the table's trigger, so
every matching process swaps rules within a second."""

from __future__ import annotations

from typing import Any

import asyncpg

_COLUMNS = "version, body, note, created_by, created_at, active, activated_at"


def rules_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    data = dict(row)
    for key in ("created_at", "activated_at"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


async def get_active(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]] | None:
    row = await conn.fetchrow("SELECT version, body FROM rule_sets WHERE active")
    return (int(row["version"]), dict(row["body"])) if row else None


async def get_version(conn: asyncpg.Connection, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM rule_sets WHERE version = $1", version)


async def list_versions(
    conn: asyncpg.Connection, *, limit: int = 50, offset: int = 0
) -> list[asyncpg.Record]:
    """Newest first, without bodies (they can be large); fetch one version for its body."""
    return list(
        await conn.fetch(
            "SELECT version, note, created_by, created_at, active, activated_at FROM rule_sets"
            " ORDER BY version DESC LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
    )


async def create_version(
    conn: asyncpg.Connection, body: dict[str, Any], note: str, created_by: int | None
) -> int:
    """Store a new (inactive) version; activation is a separate, audited step."""
    return int(
        await conn.fetchval(
            "INSERT INTO rule_sets (body, note, created_by) VALUES ($1, $2, $3) RETURNING version",
            body,
            note,
            created_by,
        )
    )


class ActivationConflict(Exception):
    """Another activation committed while this one ran: one wins, the other is told so."""


async def activate(conn: asyncpg.Connection, version: int) -> bool:
    """Make `version` the active one; False when it does not exist. Call inside a transaction.
    Raises ActivationConflict when another version was activated concurrently (the one-active
    unique index refuses the second; its transaction must roll back)."""
    exists = await conn.fetchval(
        "SELECT true FROM rule_sets WHERE version = $1 FOR UPDATE", version
    )
    if not exists:
        return False
    # Two statements: the unique index on the active flag is checked row by row, so turning the
    # old one off and the new one on in one UPDATE could collide half-way.
    await conn.execute(
        "UPDATE rule_sets SET active = false WHERE active AND version <> $1", version
    )
    try:
        await conn.execute(
            "UPDATE rule_sets SET active = true, activated_at = now() WHERE version = $1",
            version,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ActivationConflict(
            "another rules version was activated at the same time"
        ) from exc
    return True
