"""A seller's opportunities: the briefs it is shortlisted for and the ones a buyer invited it
to, each with the seller's answer. All SQL that reads them lives here."""

from __future__ import annotations

from typing import Any

import asyncpg

# The day a closing date is judged against: UTC, the same in every process and session.
TODAY = "(now() AT TIME ZONE 'UTC')::date"
OPEN = "(b.status = 'published' AND (b.closes_at IS NULL OR b.closes_at >= " + TODAY + "))"


async def get(
    conn: asyncpg.Connection, brief_id: int, seller_id: int, *, lock: bool = False
) -> dict[str, Any] | None:
    """One opportunity of a seller: the brief, with the seller's match (None when it was only
    invited), invitation and answer; None when the brief is neither matched to nor invited for
    this seller. `open`: the brief still takes answers (published, closing date not past).
    `lock`: hold the brief (FOR SHARE) until the transaction ends, so an award or a close
    cannot slip between this check and the answer."""
    row = await conn.fetchrow(
        "SELECT b.id AS brief_id, b.title, b.summary, b.organisation, b.category, b.role,"
        " b.location, b.essential_skills, b.nice_to_have_skills, b.max_day_rate, b.budget,"
        " b.status, b.closes_at, b.published_at, b.winner_seller_id,"
        " " + OPEN + " AS open,"
        " m.score, m.rank, m.explanation, i.created_at AS invited_at,"
        " r.response, r.reason, r.updated_at AS responded_at"
        " FROM briefs b"
        " LEFT JOIN matches m ON m.brief_id = b.id AND m.seller_id = $2"
        " LEFT JOIN invitations i ON i.brief_id = b.id AND i.seller_id = $2"
        " LEFT JOIN responses r ON r.brief_id = b.id AND r.seller_id = $2"
        " WHERE b.id = $1 AND b.status <> 'draft'"
        "   AND (m.seller_id IS NOT NULL OR i.seller_id IS NOT NULL)"
        + (" FOR SHARE OF b" if lock else ""),
        brief_id,
        seller_id,
    )
    return dict(row) if row else None


async def list_for_seller(
    conn: asyncpg.Connection, seller_id: int, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """A seller's opportunities, newest first: the briefs it is shortlisted for and the ones it
    was invited to (score and rank None when only invited), with its answer."""
    rows = await conn.fetch(
        "WITH mine AS ("
        "  SELECT brief_id FROM matches WHERE seller_id = $1"
        "  UNION SELECT brief_id FROM invitations WHERE seller_id = $1)"
        " SELECT b.id AS brief_id, b.title, b.organisation, b.category, b.location, b.status,"
        " b.closes_at, b.published_at,"
        " " + OPEN + " AS open,"
        " m.score, m.rank, COALESCE(m.explanation, '{}'::jsonb) AS explanation,"
        " m.rules_version, m.created_at, i.created_at AS invited_at,"
        " r.response, r.reason, r.updated_at AS responded_at"
        " FROM mine JOIN briefs b ON b.id = mine.brief_id AND b.status <> 'draft'"
        " LEFT JOIN matches m ON m.brief_id = b.id AND m.seller_id = $1"
        " LEFT JOIN invitations i ON i.brief_id = b.id AND i.seller_id = $1"
        " LEFT JOIN responses r ON r.brief_id = b.id AND r.seller_id = $1"
        " ORDER BY b.published_at DESC NULLS LAST, b.id DESC LIMIT $2 OFFSET $3",
        seller_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]
