"""What happened after matching, read back for learning: the funnel per rules version and
category, the awards as evaluation records, and labelled briefs for fitting rule weights. All
outcomes SQL that reads across matches, alerts, responses, invitations and awards lives here."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

import asyncpg

# The funnel's steps, in order. A response counts at its latest value (responses keep one row
# per brief and seller), so "interested" is the sellers whose last word was interested.
STEPS = ("matched", "alerted", "interested", "not_for_me", "applied", "invited", "awarded")

_FUNNEL = """
WITH b AS (
    SELECT br.id, br.category,
           (SELECT max(m.rules_version) FROM matches m WHERE m.brief_id = br.id) AS rules_version
    FROM briefs br
    WHERE br.published_at IS NOT NULL
      AND ($1::timestamptz IS NULL OR br.published_at >= $1)
      AND ($2::text IS NULL OR br.category = $2)
), bv AS (
    SELECT * FROM b WHERE $3::int IS NULL OR rules_version = $3
), steps AS (
    SELECT 'matched' AS step, NULL::text AS reason, brief_id, seller_id FROM matches
    UNION ALL
    SELECT 'alerted', NULL, brief_id, seller_id FROM alerts
    WHERE kind = 'match' AND status = 'sent'
    UNION ALL
    SELECT response, reason, brief_id, seller_id FROM responses
    UNION ALL
    SELECT 'invited', NULL, brief_id, seller_id FROM invitations
    UNION ALL
    SELECT 'awarded', NULL, id, winner_seller_id FROM briefs
    WHERE status = 'awarded' AND winner_seller_id IS NOT NULL
)
SELECT bv.rules_version, bv.category, s.step, s.reason,
       count(*) AS n, count(*) FILTER (WHERE se.sme) AS sme
FROM steps s
JOIN bv ON bv.id = s.brief_id
JOIN sellers se ON se.id = s.seller_id
GROUP BY 1, 2, 3, 4
"""

_BRIEFS = """
WITH b AS (
    SELECT br.id, br.category,
           (SELECT max(m.rules_version) FROM matches m WHERE m.brief_id = br.id) AS rules_version
    FROM briefs br
    WHERE br.published_at IS NOT NULL
      AND ($1::timestamptz IS NULL OR br.published_at >= $1)
      AND ($2::text IS NULL OR br.category = $2)
)
SELECT rules_version, category, count(*) AS n FROM b
WHERE $3::int IS NULL OR rules_version = $3
GROUP BY 1, 2
"""


async def funnel_rows(
    conn: asyncpg.Connection,
    *,
    since: date | None = None,
    category: str | None = None,
    rules_version: int | None = None,
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """(step counts, brief counts), both per (rules version, category) of published briefs.

    A brief's rules version is the one its stored shortlist was computed with (None: no stored
    shortlist, e.g. an imported brief). Step rows: (rules_version, category, step, reason, n,
    sme) where n counts (brief, seller) pairs and sme those whose seller is an SME now.
    """
    since_at = None
    if since is not None:
        from datetime import datetime

        since_at = datetime(since.year, since.month, since.day, tzinfo=UTC)
    args = (since_at, category, rules_version)
    steps = list(await conn.fetch(_FUNNEL, *args))
    counts = list(await conn.fetch(_BRIEFS, *args))
    return steps, counts


async def award_records(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every awarded brief with its winner, oldest first, as the fields of the evaluation's
    opportunity records (matcher.outcomes.Opportunity, what the opportunity-data CSV reader
    produces): `marketplace eval --from-db` then runs the very code a file runs.

    `id` is the Digital Marketplace ID of an imported brief (as in the file it came from) and
    the brief's own id otherwise. The service records whether a seller is an SME, not its size
    band: an SME's `winner_size` is "small" (evaluation reads only SME or not from it) and
    anything else is "" (unknown), as the importer reads an empty size as not an SME.
    """
    rows = await conn.fetch(
        "SELECT b.id, b.external_id, b.title, b.category, b.role, b.organisation, b.location,"
        " b.published_at, s.name AS winner, s.sme"
        " FROM briefs b JOIN sellers s ON s.id = b.winner_seller_id"
        " WHERE b.status = 'awarded' AND b.published_at IS NOT NULL"
        " ORDER BY b.published_at, b.id"
    )
    return [
        {
            "id": r["external_id"] or str(r["id"]),
            "title": r["title"],
            "category": r["category"],
            "role": r["role"],
            "organisation": r["organisation"],
            "location": r["location"],
            "published_at": r["published_at"].astimezone(UTC).date(),
            "status": "awarded",
            "winner": r["winner"],
            "winner_size": "small" if r["sme"] else "",
        }
        for r in rows
    ]


async def labelled_briefs(
    conn: asyncpg.Connection, *, limit: int = 500, depth: int = 50
) -> list[asyncpg.Record]:
    """Published briefs that have an outcome to learn from (an award or a seller's response),
    newest first, each with its stored shortlist's best `depth` seller ids (`shortlist`), the
    sellers' latest responses (`responses`: {seller id: [response, reason]}), the invited
    sellers (`invited`) and the winner (`winner_seller_id` when awarded)."""
    return list(await conn.fetch(
        "SELECT b.*,"
        " COALESCE((SELECT array_agg(x.seller_id ORDER BY x.rank) FROM (SELECT seller_id, rank"
        "   FROM matches WHERE brief_id = b.id ORDER BY rank LIMIT $2) x), '{}') AS shortlist,"
        " COALESCE((SELECT jsonb_object_agg(r.seller_id::text, jsonb_build_array(r.response,"
        "   r.reason)) FROM responses r WHERE r.brief_id = b.id), '{}') AS responses,"
        " COALESCE((SELECT array_agg(i.seller_id) FROM invitations i WHERE i.brief_id = b.id),"
        "   '{}') AS invited"
        " FROM briefs b WHERE b.published_at IS NOT NULL AND ("
        "   (b.status = 'awarded' AND b.winner_seller_id IS NOT NULL)"
        "   OR EXISTS (SELECT 1 FROM responses r WHERE r.brief_id = b.id))"
        " ORDER BY b.published_at DESC, b.id DESC LIMIT $1",
        limit, depth,
    ))
