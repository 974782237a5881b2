"""Alert preferences per seller. All alert_preferences SQL lives here.

No row means the seller never asked for alerts: no alert is created for them.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from models import alerts

COLUMNS = (
    "frequency",
    "email",
    "webhook_url",
    "webhook_secret",
    "categories",
    "locations",
    "keywords",
    "exclude_keywords",
    "min_score",
    "min_budget",
    "min_day_rate",
    "paused",
)
_SELECT = "seller_id, " + ", ".join(COLUMNS) + ", last_digest_at, updated_at"
FREQUENCIES = ("instant", "daily", "off")


async def get(conn: asyncpg.Connection, seller_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_SELECT} FROM alert_preferences WHERE seller_id = $1", seller_id
    )
    return dict(row) if row else None


async def get_many(conn: asyncpg.Connection, seller_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Preferences of many sellers at once (the fan-out of one brief), keyed by seller id."""
    rows = await conn.fetch(
        f"SELECT {_SELECT} FROM alert_preferences WHERE seller_id = ANY($1::bigint[])", seller_ids
    )
    return {int(r["seller_id"]): dict(r) for r in rows}


async def upsert(
    conn: asyncpg.Connection, seller_id: int, fields: dict[str, Any]
) -> dict[str, Any]:
    """Create or change the given columns (others keep their value or default).

    Unknown keys are a programming error: validation belongs at the edge.
    """
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a preference: {sorted(unknown)}")
    names = [n for n in COLUMNS if n in fields]
    if not names:
        await conn.execute(
            "INSERT INTO alert_preferences (seller_id) VALUES ($1) ON CONFLICT DO NOTHING",
            seller_id,
        )
    else:
        cols = ", ".join(names)
        params = ", ".join(f"${i + 2}" for i in range(len(names)))
        sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
        await conn.execute(
            f"INSERT INTO alert_preferences (seller_id, {cols}) VALUES ($1, {params})"
            f" ON CONFLICT (seller_id) DO UPDATE SET {sets}, updated_at = now()",
            seller_id,
            *[fields[n] for n in names],
        )
    # Alerts already waiting follow the new choice (instant <-> digest, e-mail <-> webhook).
    await alerts.follow_preferences(conn, seller_id)
    result = await get(conn, seller_id)
    assert result is not None
    return result


async def set_paused(conn: asyncpg.Connection, seller_id: int, paused: bool) -> bool:
    status = await conn.execute(
        "UPDATE alert_preferences SET paused = $2, updated_at = now() WHERE seller_id = $1",
        seller_id,
        paused,
    )
    return bool(status == "UPDATE 1")


async def unsubscribe(conn: asyncpg.Connection, seller_id: int) -> bool:
    """One-click unsubscribe: frequency off. Idempotent; False when the seller is gone."""
    status = await conn.execute(
        "INSERT INTO alert_preferences (seller_id, frequency)"
        " SELECT id, 'off' FROM sellers WHERE id = $1"
        " ON CONFLICT (seller_id) DO UPDATE SET frequency = 'off', updated_at = now()",
        seller_id,
    )
    return bool(status.endswith(" 1"))


async def mark_digest_sent(conn: asyncpg.Connection, seller_id: int) -> None:
    await conn.execute(
        "UPDATE alert_preferences SET last_digest_at = now() WHERE seller_id = $1", seller_id
    )


async def digest_due_sellers(
    conn: asyncpg.Connection, *, min_interval_seconds: float, limit: int = 1000
) -> list[int]:
    """Sellers on the daily digest who have pending digest alerts and whose last digest is older
    than the interval (so a digest goes out at most once a day whatever the cron schedule)."""
    rows = await conn.fetch(
        "SELECT p.seller_id FROM alert_preferences p"
        " WHERE p.frequency = 'daily' AND NOT p.paused AND p.email IS NOT NULL"
        " AND (p.last_digest_at IS NULL"
        "      OR p.last_digest_at <= now() - make_interval(secs => $1))"
        " AND EXISTS (SELECT 1 FROM alerts a WHERE a.seller_id = p.seller_id"
        "             AND a.channel = 'digest' AND a.status = 'pending'"
        "             AND a.next_attempt_at <= now())"
        " ORDER BY p.seller_id LIMIT $2",
        min_interval_seconds,
        limit,
    )
    return [int(r["seller_id"]) for r in rows]
