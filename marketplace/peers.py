"""The peers our ranking is compared with, on the same candidates and the same profile text
(`matcher.outcomes.profile_text`) and query text (`brief_text`):

- BM25 (bm25s), the usual choice for keyword ranking;
- PostgreSQL full-text search the way the Australian Digital Marketplace ranked sellers: a
  tsvector column with a GIN index, the brief's terms OR-ed into one tsquery, ranked by
  `ts_rank_cd` (and, as a second variant, plain `ts_rank`).

A peer that does not return a seller at all (no shared term) ranks it None: not found.
Ties keep candidate order (seller id), so results are deterministic.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import asyncpg
import numpy as np
from tqdm import tqdm

from matcher.metrics import rank_of
from matcher.outcomes import Query, brief_text, profile_text
from models.types import Seller

Ranks = list[int | None]


def _bar(items: Sequence[Query], desc: str, progress: bool) -> tqdm:
    return tqdm(
        items, desc=desc, unit="query", file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )


def bm25_ranks(sellers: list[Seller], queries: Sequence[Query], *, progress: bool = False) -> Ranks:
    import bm25s

    # bm25s sets its own logger to DEBUG on import; its progress lines are noise here.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    if not sellers:
        return [None for _ in queries]
    corpus = bm25s.tokenize(
        [profile_text(s) for s in sellers], stopwords="en", show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    ids = [s.id for s in sellers]
    ranks: Ranks = []
    for query in _bar(queries, "bm25", progress):
        tokens = bm25s.tokenize(
            brief_text(query.brief), stopwords="en", show_progress=False, return_ids=False
        )
        terms = [t for t in tokens[0] if t] if tokens else []
        if not terms:
            ranks.append(None)
            continue
        scores = retriever.get_scores(terms)
        order = np.argsort(-scores, kind="stable")
        ranked = [ids[i] for i in order if scores[i] > 0]
        ranks.append(rank_of(ranked, query.relevant))
    return ranks


def or_tsquery(lexemes: Sequence[str]) -> str:
    """`'a' | 'b' | 'c'` in tsquery input syntax. Each lexeme is quoted and escaped, so no
    character of the brief can change the query's structure; the result is bound as a
    parameter and cast with ::tsquery (no second stemming pass)."""
    quoted = []
    for lexeme in lexemes:
        escaped = lexeme.replace("\\", "\\\\").replace("'", "''")
        quoted.append(f"'{escaped}'")
    return " | ".join(quoted)


async def postgres_fts_ranks(
    conn: asyncpg.Connection,
    sellers: list[Seller],
    queries: Sequence[Query],
    *,
    progress: bool = False,
) -> dict[str, Ranks]:
    """Ranks by `ts_rank_cd` ("postgres_fts") and by `ts_rank` ("postgres_ts_rank").

    Uses a temporary table on this connection: nothing permanent is created or changed."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS eval_profiles (id bigint PRIMARY KEY, doc tsvector)"
        " ON COMMIT PRESERVE ROWS"
    )
    await conn.execute("TRUNCATE eval_profiles")
    try:
        await conn.executemany(
            "INSERT INTO eval_profiles (id, doc) VALUES ($1, to_tsvector('english', $2))",
            [(s.id, profile_text(s)) for s in sellers],
        )
        await conn.execute(
            "CREATE INDEX IF NOT EXISTS eval_profiles_doc_idx ON eval_profiles USING gin (doc)"
        )
        await conn.execute("ANALYZE eval_profiles")
        results: dict[str, Ranks] = {"postgres_fts": [], "postgres_ts_rank": []}
        for query in _bar(queries, "postgres", progress):
            lexemes = await conn.fetchval(
                "SELECT tsvector_to_array(to_tsvector('english', $1))", brief_text(query.brief)
            )
            if not lexemes:
                results["postgres_fts"].append(None)
                results["postgres_ts_rank"].append(None)
                continue
            tsquery = or_tsquery(lexemes)
            for key, function in (("postgres_fts", "ts_rank_cd"), ("postgres_ts_rank", "ts_rank")):
                rows = await conn.fetch(
                    f"SELECT id FROM eval_profiles, CAST($1 AS tsquery) AS q WHERE doc @@ q"
                    f" ORDER BY {function}(doc, q) DESC, id",
                    tsquery,
                )
                results[key].append(rank_of([r["id"] for r in rows], query.relevant))
        return results
    finally:
        await conn.execute("DROP TABLE IF EXISTS eval_profiles")
