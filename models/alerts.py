"""Alerts: one row per (brief, seller), the delivery state machine. All alerts SQL lives here.

    pending --claim--> sending --ok--> sent
                          |--error, tries left--> pending (next_attempt_at = backoff)
                          |--error, last try----> failed (last_error)  --redrive--> pending
    sending with an expired lock (its worker died) is due again: delivery is at-least-once,
    always with the same alert id as idempotency key.
    channel 'digest' rows wait as pending until the daily digest claims them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

# What a sender needs about one claimed alert, fetched in the same statement as the claim.
_DELIVERY_SELECT = (
    " SELECT c.id, c.brief_id, c.seller_id, c.kind, c.channel, c.score, c.attempts, c.request_id,"
    " b.title, b.summary, b.organisation, b.category, b.role, b.location, b.budget,"
    " b.max_day_rate, b.closes_at, b.published_at,"
    " s.name AS seller_name, p.email, p.webhook_url, p.webhook_secret,"
    " m.rank, m.explanation"
    " FROM claimed c JOIN briefs b ON b.id = c.brief_id JOIN sellers s ON s.id = c.seller_id"
    " LEFT JOIN alert_preferences p ON p.seller_id = c.seller_id"
    " LEFT JOIN matches m ON m.brief_id = c.brief_id AND m.seller_id = c.seller_id"
    " ORDER BY c.id"
)
_DUE = (
    "((a.status = 'pending' AND a.next_attempt_at <= now())"
    " OR (a.status = 'sending' AND a.locked_until < now()))"
)


async def create_many(
    conn: asyncpg.Connection,
    brief_id: int,
    rows: Sequence[tuple[int, str, float]],
    *,
    request_id: str | None = None,
) -> int:
    """Insert (seller_id, channel, score) alerts; a re-run never duplicates (one per brief and
    seller). Returns how many were new. `request_id`: the publishing request (for logs)."""
    if not rows:
        return 0
    status = await conn.execute(
        "INSERT INTO alerts (brief_id, seller_id, channel, score, request_id)"
        " SELECT $1, u.seller_id, u.channel, u.score, $5"
        " FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS u(seller_id, channel, score)"
        " ON CONFLICT (brief_id, seller_id, kind) DO NOTHING",
        brief_id,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        request_id,
    )
    return int(status.split()[-1])


async def create_personal(
    conn: asyncpg.Connection, brief_id: int, kind: str, seller_ids: Sequence[int]
) -> list[int]:
    """Alerts of kind 'invited' or 'awarded' for the given sellers, sent at once by e-mail or
    webhook whatever their frequency ('instant' or 'daily') and threshold: a buyer addressed
    them by name. Sellers with alerts off or paused, or with nowhere to send, get none; one per
    brief, seller and kind (a repeat does nothing). The score is the stored match's (0 for a
    seller not on the shortlist). Returns the sellers alerted now."""
    if kind not in ("invited", "awarded"):
        raise ValueError(f"not a personal alert kind: {kind!r}")
    if not seller_ids:
        return []
    rows = await conn.fetch(
        "INSERT INTO alerts (brief_id, seller_id, kind, channel, score)"
        " SELECT $1, p.seller_id, $2,"
        "   CASE WHEN p.frequency = 'instant' AND p.webhook_url IS NOT NULL THEN 'webhook'"
        "        WHEN p.email IS NOT NULL THEN 'email' ELSE 'webhook' END,"
        "   COALESCE(m.score, 0)"
        " FROM alert_preferences p"
        " LEFT JOIN matches m ON m.brief_id = $1 AND m.seller_id = p.seller_id"
        " WHERE p.seller_id = ANY($3::bigint[]) AND p.frequency <> 'off' AND NOT p.paused"
        "   AND (p.email IS NOT NULL OR (p.frequency = 'instant' AND p.webhook_url IS NOT NULL))"
        " ON CONFLICT (brief_id, seller_id, kind) DO NOTHING RETURNING seller_id",
        brief_id,
        kind,
        list(seller_ids),
    )
    return [int(r["seller_id"]) for r in rows]


async def claim_due(
    conn: asyncpg.Connection, *, limit: int, lock_seconds: float
) -> list[dict[str, Any]]:
    """Claim up to `limit` due instant alerts for this worker (SKIP LOCKED: workers never claim
    the same row at once) and return what sending them needs, in one round trip."""
    rows = await conn.fetch(
        "WITH due AS (SELECT a.id FROM alerts a WHERE a.channel <> 'digest' AND " + _DUE
        + " ORDER BY a.next_attempt_at, a.id LIMIT $1 FOR UPDATE SKIP LOCKED),"
        " claimed AS (UPDATE alerts a SET status = 'sending',"
        " locked_until = now() + make_interval(secs => $2), attempts = a.attempts + 1"
        " FROM due WHERE a.id = due.id RETURNING a.*)" + _DELIVERY_SELECT,
        limit,
        lock_seconds,
    )
    return [dict(r) for r in rows]


async def claim_ids(
    conn: asyncpg.Connection, ids: Sequence[int], *, lock_seconds: float
) -> list[dict[str, Any]]:
    """Claim the given alerts if they are due (the one-job-per-alert path and re-drives)."""
    rows = await conn.fetch(
        "WITH due AS (SELECT a.id FROM alerts a WHERE a.id = ANY($1::bigint[])"
        " AND a.channel <> 'digest' AND " + _DUE + " FOR UPDATE SKIP LOCKED),"
        " claimed AS (UPDATE alerts a SET status = 'sending',"
        " locked_until = now() + make_interval(secs => $2), attempts = a.attempts + 1"
        " FROM due WHERE a.id = due.id RETURNING a.*)" + _DELIVERY_SELECT,
        list(ids),
        lock_seconds,
    )
    return [dict(r) for r in rows]


async def claim_digest(
    conn: asyncpg.Connection, seller_id: int, *, lock_seconds: float
) -> list[dict[str, Any]]:
    """Claim every pending digest alert of one seller (or the ones whose digest worker died)."""
    rows = await conn.fetch(
        "WITH due AS (SELECT a.id FROM alerts a WHERE a.seller_id = $1 AND a.channel = 'digest'"
        " AND ((a.status = 'pending' AND a.next_attempt_at <= now())"
        "      OR (a.status = 'sending' AND a.locked_until < now()))"
        " FOR UPDATE SKIP LOCKED),"
        " claimed AS (UPDATE alerts a SET status = 'sending',"
        " locked_until = now() + make_interval(secs => $2), attempts = a.attempts + 1"
        " FROM due WHERE a.id = due.id RETURNING a.*)" + _DELIVERY_SELECT,
        seller_id,
        lock_seconds,
    )
    return [dict(r) for r in rows]


async def mark_sent(conn: asyncpg.Connection, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    status = await conn.execute(
        "UPDATE alerts SET status = 'sent', sent_at = now(), locked_until = NULL,"
        " last_error = NULL WHERE id = ANY($1::bigint[]) AND status = 'sending'",
        list(ids),
    )
    return int(status.split()[-1])


async def mark_failures(
    conn: asyncpg.Connection,
    failures: Sequence[tuple[int, str, float | None]],
) -> list[int]:
    """(alert_id, error, retry_in_seconds or None for the last try). Returns the ids now failed."""
    if not failures:
        return []
    rows = await conn.fetch(
        "UPDATE alerts a SET"
        " status = CASE WHEN u.delay IS NULL THEN 'failed' ELSE 'pending' END,"
        " next_attempt_at = CASE WHEN u.delay IS NULL THEN a.next_attempt_at"
        "   ELSE now() + make_interval(secs => u.delay) END,"
        " last_error = left(u.error, 1000), locked_until = NULL"
        " FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS u(id, error, delay)"
        " WHERE a.id = u.id AND a.status = 'sending' RETURNING a.id, a.status",
        [f[0] for f in failures],
        [f[1] for f in failures],
        [f[2] for f in failures],
    )
    return [int(r["id"]) for r in rows if r["status"] == "failed"]


async def release(
    conn: asyncpg.Connection, ids: Sequence[int], *, not_attempted: Sequence[int] = ()
) -> None:
    """Hand claimed alerts back (worker shutting down): due again at once. Those never tried
    get their attempt back."""
    if not ids:
        return
    await conn.execute(
        "UPDATE alerts SET status = 'pending', locked_until = NULL, next_attempt_at = now(),"
        " attempts = CASE WHEN id = ANY($2::bigint[]) THEN greatest(attempts - 1, 0)"
        "   ELSE attempts END"
        " WHERE id = ANY($1::bigint[]) AND status = 'sending'",
        list(ids),
        list(not_attempted),
    )


async def has_due(conn: asyncpg.Connection) -> bool:
    """Any instant alert due now: pending past its time, or sending with an expired lock."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM alerts a WHERE a.channel <> 'digest' AND " + _DUE + ")"
        )
    )


async def next_retry_in(conn: asyncpg.Connection) -> float | None:
    """Seconds until the earliest pending instant alert is due (None when there is none)."""
    value = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM alerts"
        " WHERE status = 'pending' AND channel <> 'digest'"
    )
    return None if value is None else max(0.0, float(value))


_LIST = (
    "a.id, a.brief_id, a.seller_id, a.kind, a.channel, a.status, a.score, a.attempts, a.last_error,"
    " a.next_attempt_at, a.created_at, a.sent_at"
)


async def get(conn: asyncpg.Connection, alert_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_LIST} FROM alerts a WHERE a.id = $1", alert_id)
    return dict(row) if row else None


async def list_for_seller(
    conn: asyncpg.Connection, seller_id: int, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_LIST}, b.title FROM alerts a JOIN briefs b ON b.id = a.brief_id"
        " WHERE a.seller_id = $1 ORDER BY a.created_at DESC, a.id DESC LIMIT $2 OFFSET $3",
        seller_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def list_for_brief(
    conn: asyncpg.Connection, brief_id: int, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_LIST} FROM alerts a WHERE a.brief_id = $1 ORDER BY a.id LIMIT $2 OFFSET $3",
        brief_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def list_failed(
    conn: asyncpg.Connection, limit: int = 50, before_id: int | None = None
) -> list[dict[str, Any]]:
    """Failed deliveries for admins, newest first, with the seller and brief they concern."""
    rows = await conn.fetch(
        f"SELECT {_LIST}, b.title, s.name AS seller_name FROM alerts a"
        " JOIN briefs b ON b.id = a.brief_id JOIN sellers s ON s.id = a.seller_id"
        " WHERE a.status = 'failed' AND ($2::bigint IS NULL OR a.id < $2)"
        " ORDER BY a.id DESC LIMIT $1",
        limit,
        before_id,
    )
    return [dict(r) for r in rows]


async def redrive(conn: asyncpg.Connection, alert_id: int) -> bool:
    """Give a failed alert a fresh set of tries, due now. False unless it was failed."""
    status = await conn.execute(
        "UPDATE alerts SET status = 'pending', attempts = 0, next_attempt_at = now(),"
        " locked_until = NULL WHERE id = $1 AND status = 'failed'",
        alert_id,
    )
    return bool(status == "UPDATE 1")


async def counts_by_status(conn: asyncpg.Connection, brief_id: int | None = None) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM alerts WHERE ($1::bigint IS NULL OR brief_id = $1)"
        " GROUP BY status",
        brief_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}
