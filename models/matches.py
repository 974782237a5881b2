"""Stored shortlists (the matches of a published brief). All matches SQL lives here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson


def _field(m: Any, name: str) -> Any:
    return m[name] if isinstance(m, Mapping) else getattr(m, name)


def _columns(matches: Sequence[Any]) -> tuple[list[int], list[float], list[int], list[str]]:
    return (
        [int(_field(m, "seller_id")) for m in matches],
        [float(_field(m, "score")) for m in matches],
        [int(_field(m, "rank")) for m in matches],
        [
            orjson.dumps(_field(m, "explanation") or {}, option=orjson.OPT_NON_STR_KEYS).decode()
            for m in matches
        ],
    )


async def replace_shortlist(
    conn: asyncpg.Connection,
    brief_id: int,
    matches: Sequence[Any],
    rules_version: int,
) -> int:
    """Replace the brief's stored shortlist (a re-run of the job gives the same rows).

    `matches` are Match objects or dicts with seller_id, score, rank, explanation. Rows go in as
    arrays in one statement: a fan-out brief can match ten thousand sellers.
    """
    await conn.execute("DELETE FROM matches WHERE brief_id = $1", brief_id)
    return await add_to_shortlist(conn, brief_id, matches, rules_version)


async def add_to_shortlist(
    conn: asyncpg.Connection,
    brief_id: int,
    matches: Sequence[Any],
    rules_version: int,
) -> int:
    """Add (or refresh) rows of a shortlist being stored in waves, best matches first."""
    if not matches:
        return 0
    # Sellers deleted since the matcher indexed them are skipped instead of failing the job.
    status = await conn.execute(
        "INSERT INTO matches (brief_id, seller_id, score, rank, explanation, rules_version)"
        " SELECT $1, u.seller_id, u.score, u.rank, u.explanation::jsonb, $6"
        " FROM unnest($2::bigint[], $3::float8[], $4::int[], $5::text[])"
        "   AS u(seller_id, score, rank, explanation)"
        " JOIN sellers s ON s.id = u.seller_id"
        " ON CONFLICT (brief_id, seller_id) DO UPDATE SET score = EXCLUDED.score,"
        " rank = EXCLUDED.rank, explanation = EXCLUDED.explanation,"
        " rules_version = EXCLUDED.rules_version",
        brief_id,
        *_columns(matches),
        rules_version,
    )
    return int(status.split()[-1])


async def set_ranks(
    conn: asyncpg.Connection, brief_id: int, ranks: Sequence[tuple[int, int]]
) -> None:
    """Re-rank stored rows (seller_id, rank) without rewriting their explanations."""
    if not ranks:
        return
    await conn.execute(
        "UPDATE matches m SET rank = u.rank"
        " FROM unnest($2::bigint[], $3::int[]) AS u(seller_id, rank)"
        " WHERE m.brief_id = $1 AND m.seller_id = u.seller_id AND m.rank <> u.rank",
        brief_id,
        [r[0] for r in ranks],
        [r[1] for r in ranks],
    )


async def list_for_brief(
    conn: asyncpg.Connection, brief_id: int, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT m.seller_id, s.name AS seller_name, m.score, m.rank, m.explanation,"
        " m.rules_version, m.created_at"
        " FROM matches m JOIN sellers s ON s.id = m.seller_id"
        " WHERE m.brief_id = $1 ORDER BY m.rank, m.seller_id LIMIT $2 OFFSET $3",
        brief_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def count_for_brief(conn: asyncpg.Connection, brief_id: int) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM matches WHERE brief_id = $1", brief_id))


async def list_for_seller(
    conn: asyncpg.Connection, seller_id: int, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """The seller's matched opportunities, newest brief first, with "why you"."""
    rows = await conn.fetch(
        "SELECT m.brief_id, b.title, b.organisation, b.category, b.location, b.status,"
        " b.closes_at, b.published_at, m.score, m.rank, m.explanation, m.rules_version,"
        " m.created_at"
        " FROM matches m JOIN briefs b ON b.id = m.brief_id"
        " WHERE m.seller_id = $1 ORDER BY b.published_at DESC NULLS LAST, m.brief_id DESC"
        " LIMIT $2 OFFSET $3",
        seller_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def count_for_seller(conn: asyncpg.Connection, seller_id: int) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM matches WHERE seller_id = $1", seller_id)
    )
