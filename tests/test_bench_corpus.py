"""The benchmark corpus (ESCO sellers, real briefs) and a quick end-to-end benchmark run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from itertools import islice
from pathlib import Path

from bench.corpus import OFFSITE, REGIONS, generate_sellers, load_briefs, parse_day_rate
from models.types import CATEGORIES
from tests.conftest import Servers

ROOT = Path(__file__).resolve().parents[1]


def test_same_seed_same_sellers_and_prefix_stable() -> None:
    first = list(generate_sellers(50, seed=7))
    again = list(generate_sellers(50, seed=7))
    assert first == again
    # A smaller N is a prefix of the same stream: every size benchmarks the same sellers.
    assert list(generate_sellers(10, seed=7)) == first[:10]
    assert list(generate_sellers(10, seed=8)) != first[:10]


def test_profiles_are_realistic() -> None:
    sellers = list(generate_sellers(500))
    assert [s.id for s in sellers] == list(range(1, 501))
    assert len({s.name for s in sellers}) == 500
    for s in sellers:
        assert 150 <= len(s.summary.split()) <= 400
        assert 1 <= len(s.skills) <= 8 and all(0 < len(k.split()) <= 6 for k in s.skills)
        assert s.categories and set(s.categories) <= set(CATEGORIES)
        assert s.locations and set(s.locations) <= {*REGIONS, OFFSITE}
        assert s.case_studies and all(c.title and c.summary for c in s.case_studies)
        assert s.day_rate is None or 300 <= s.day_rate <= 1200
    assert 0.5 < sum(s.sme for s in sellers) / 500 < 0.95


def test_generation_streams() -> None:
    # A generator: taking a few of a million costs nothing.
    head = list(islice(generate_sellers(1_000_000), 3))
    assert [s.id for s in head] == [1, 2, 3]


def test_briefs_parse() -> None:
    # The vendored slice: the first 34 of the 89 briefs (tests/data/PROVENANCE.md); the
    # counts below are this slice's, recounted from the file.
    briefs = load_briefs()
    assert len(briefs) == 34
    assert len({b.id for b in briefs}) == 34
    for b in briefs:
        assert b.title.strip() and b.summary.strip()
        assert b.category in ("digital-outcomes", "digital-specialists")
        assert (b.category == "digital-specialists") == bool(b.role)
        assert b.essential_skills and all(not s.startswith("•") for s in b.essential_skills)
        assert b.location
    specialists = [b for b in briefs if b.role]
    assert len(specialists) == 15
    assert sum(b.max_day_rate is not None for b in briefs) == 13
    assert sum(b.location == OFFSITE for b in briefs) == 7


def test_day_rate_parsing() -> None:
    assert parse_day_rate("£750") == 750
    assert parse_day_rate("Max £750-day rate (exclusive of VAT)") == 750
    assert parse_day_rate("£600.00 per day inclusive of T&S") == 600
    assert parse_day_rate("estimated to be £113,750 (excl. VAT) ... (£650 daily rate)") == 650
    assert parse_day_rate("We decided not to set a maximum day rate") is None


def test_quick_benchmark_prints_the_table(clean_db: Servers) -> None:
    env = {
        **os.environ,
        "MARKETPLACE_DATABASE_URL": clean_db.database_url,
        "MARKETPLACE_REDIS_URL": clean_db.redis_url,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.matching", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "N = 2,000 sellers" in out
    for engine in ("ours (Matcher)", "tantivy BM25", "bm25s", "PostgreSQL FTS"):
        assert engine in out, out
        assert f"ours / {engine}" in out or engine.startswith("ours"), out
    assert re.search(r"edit-to-visible \(2 processes.*over [1-5] edits", out), out
    assert "not visible" not in out, out
    assert "ready within:" in out and "LiveMatcher.start()" in out, out
    assert "skipped" not in out, out
