"""The evaluation harness: peers on hand-made data, and an end-to-end run on a slice of the
real opportunity data (ours, BM25 and PostgreSQL full-text search in one run)."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from marketplace.evaluation import evaluate, fit_split_date, format_table
from marketplace.peers import bm25_ranks, or_tsquery, postgres_fts_ranks
from matcher.metrics import rank_of
from matcher.outcomes import EvalSet, Query, read_opportunities
from models.types import Brief, CaseStudy, Seller
from tests.conftest import OPPORTUNITIES_CSV

DEV_CSV = OPPORTUNITIES_CSV
METRIC_KEYS = {"n_queries", "recall@1", "recall@10", "mrr", "ndcg@10",
               "recall@5%", "recall@10%", "recall@20%"}
# Ours also reports the alert curve of its rules.
ALERT_KEYS = {"alert_threshold", "alert_volume", "alert_recall", "matched_winners", "alert_curve"}


def _sellers() -> list[Seller]:
    def won(title: str, org: str) -> CaseStudy:
        return CaseStudy(title=title, organisation=org, won_at=date(2017, 1, 1))

    return [
        Seller(id=1, name="Kube Co", case_studies=[won("Kubernetes platform", "Home Office")]),
        Seller(id=2, name="Research Co", case_studies=[won("User research", "Cabinet Office")]),
        Seller(id=3, name="Mixed Co", case_studies=[won("Research data platform", "DVLA")]),
    ]


# Query text full of tsquery and SQL syntax: it must be taken as words, never as syntax.
HOSTILE = "User research for O'Brien's team \\ & | ! :* () '); DROP TABLE sellers; --"


def test_or_tsquery_quotes_every_lexeme() -> None:
    assert or_tsquery(["a", "b"]) == "'a' | 'b'"
    assert or_tsquery(["o'brien"]) == "'o''brien'"
    assert or_tsquery(["back\\slash"]) == "'back\\\\slash'"


def test_bm25_ranks_known_order() -> None:
    queries = [
        Query(Brief(id=1, title=HOSTILE), relevant=2),
        Query(Brief(id=2, title="kubernetes"), relevant=1),
        Query(Brief(id=3, title="kubernetes"), relevant=2),  # shares no term: not found
    ]
    assert bm25_ranks(_sellers(), queries) == [1, 1, None]


async def test_postgres_fts_ranks_known_order(pool: asyncpg.Pool) -> None:
    queries = [
        Query(Brief(id=1, title=HOSTILE), relevant=2),
        Query(Brief(id=2, title="kubernetes"), relevant=1),
        Query(Brief(id=3, title="kubernetes"), relevant=2),
        Query(Brief(id=4, title="the and of"), relevant=1),  # only stop words: nothing found
    ]
    async with pool.acquire() as conn:
        ranks = await postgres_fts_ranks(conn, _sellers(), queries)
        assert ranks["postgres_fts"] == [1, 1, None, None]
        assert ranks["postgres_ts_rank"] == [1, 1, None, None]
        # A temporary table only: nothing of it is left, the real tables are untouched.
        assert await conn.fetchval("SELECT to_regclass('eval_profiles')") is None
        assert await conn.fetchval("SELECT to_regclass('sellers')") is not None


def test_fit_split_is_before_the_split_and_halves_the_awards() -> None:
    opps, _ = read_opportunities(DEV_CSV)
    split = date(2017, 7, 1)
    fit_split = fit_split_date(opps, split)
    assert fit_split < split
    before = [o for o in opps if o.awarded and o.published_at and o.published_at < split]
    later = [o for o in before if o.published_at and o.published_at >= fit_split]
    assert abs(len(later) - len(before) / 2) <= 10


def _slice(tmp_path: Path, start: str, end: str) -> Path:
    """The dev CSV's rows published in [start, end), as a file of its own."""
    with DEV_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    path = tmp_path / "slice.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(rows[0])
        writer.writerows(r for r in rows[1:] if start <= r[9] < end)
    return path


def _same_buyer_first(evalset: EvalSet, rules: Any) -> list[int | None]:
    """A trivial stand-in for our matcher: sellers with past work for the buyer first."""
    ranks: list[int | None] = []
    for query in evalset.queries:
        def key(seller: Seller, q: Query = query) -> tuple[int, int]:
            same = sum(c.organisation == q.brief.organisation for c in seller.case_studies)
            return (-same, seller.id)

        ranked = [s.id for s in sorted(evalset.sellers, key=key)]
        ranks.append(rank_of(ranked, query.relevant))
    return ranks


def test_evaluate_slice_end_to_end(
    servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", servers.database_url)
    opps, errors = read_opportunities(_slice(tmp_path, "2016-10-01", "2017-10-01"))
    assert errors == []
    results = evaluate(opps, date(2017, 6, 1), ours=_same_buyer_first)
    assert results["n_queries"] > 10
    for key in ("ours", "bm25", "postgres_fts", "postgres_ts_rank"):
        assert set(results[key]) == METRIC_KEYS
        assert results[key]["n_queries"] == results["n_queries"]
        assert 0 <= results[key]["recall@1"] <= results[key]["recall@10"] <= 1
    assert results["ours"]["mrr"] > 0
    table = format_table(results)
    assert "postgres_fts (ts_rank_cd)" in table and "bm25" in table


async def test_cli_eval_json_on_a_slice(servers: Any, tmp_path: Path) -> None:
    """The real command, our matcher included, prints one JSON object."""
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": servers.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketplace.cli", "eval", "--json", "--quiet",
        "--opportunities", str(_slice(tmp_path, "2016-10-01", "2017-10-01")),
        "--split-date", "2017-06-01",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert isinstance(result["n_queries"], int) and result["n_queries"] > 10
    assert set(result["ours"]) == METRIC_KEYS | ALERT_KEYS
    for key in ("bm25", "postgres_fts", "postgres_ts_rank"):
        assert set(result[key]) == METRIC_KEYS, key
    ours = result["ours"]
    curve = ours["alert_curve"]
    # A higher threshold never reaches more sellers or more winners.
    for lower, higher in itertools.pairwise(curve):
        assert higher["alert_volume"] <= lower["alert_volume"]
        assert higher["alert_recall"] <= lower["alert_recall"]
    assert 0 <= ours["alert_recall"] <= ours["matched_winners"] <= 1


def test_cli_eval_bad_arguments(tmp_path: Path) -> None:
    from marketplace.cli import main

    assert main(["eval", "--opportunities", str(DEV_CSV), "--split-date", "July"]) == 2
    assert main(["eval", "--opportunities", str(tmp_path / "none.csv"),
                 "--split-date", "2017-07-01"]) == 1
