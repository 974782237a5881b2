"""The Digital Marketplace importer against the real PostgreSQL fixture."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from marketplace.importer import import_opportunities
from tests.test_outcomes import row, write


def _csv(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        [
            row("11", "Alpha build", "2017-01-10", winner="Acme Ltd", size="small"),  # 2
            row("12", "Beta build", "2017-02-10", winner="ACME Limited", size="large",  # 3
                location="Wales", category="digital-outcomes", role="deliveryManager"),
            row("13", "Data platform", "2017-03-10", winner="Bravo LLP", size="micro"),  # 4
            row("14", "Closed one", "2017-03-11", status="closed"),  # 5
            row("15", "Bad date", "2017-02-30", winner="Charlie Ltd"),  # 6: error
            row("16", "Unknown status", "2017-03-12", status="maybe"),  # 7: error
            row("17", "", "2017-03-13", status="closed"),  # 8: error (no title)
            row("18", "Cancelled one", "2017-03-14", status="cancelled"),  # 9
        ],
    )


async def _snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "sellers": [dict(r) for r in await conn.fetch("SELECT * FROM sellers ORDER BY id")],
        "briefs": [dict(r) for r in await conn.fetch("SELECT * FROM briefs ORDER BY id")],
        "audit": await conn.fetchval("SELECT count(*) FROM audit_events"),
    }


async def test_import_then_reimport_changes_nothing(pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = _csv(tmp_path)
    async with pool.acquire() as conn:
        report = await import_opportunities(conn, path, progress=False)
        assert [e.line for e in report.errors] == [6, 7, 8]
        assert report.briefs_created == 5
        assert report.sellers_created == 2  # "Acme Ltd" and "ACME Limited" are one seller
        assert report.sellers_updated == 1

        sellers = await conn.fetch("SELECT * FROM sellers ORDER BY id")
        assert [s["name"] for s in sellers] == ["Acme Ltd", "Bravo LLP"]
        acme = sellers[0]
        assert acme["categories"] == ["digital-specialists", "digital-outcomes"]
        assert acme["locations"] == ["London", "Wales"]
        assert acme["sme"] is False  # the latest win says large
        assert sellers[1]["sme"] is True
        studies = acme["case_studies"]
        assert [c["title"] for c in studies] == ["Alpha build", "Beta build"]
        assert studies[1]["role"] == "delivery manager"
        assert studies[0]["won_at"] == "2017-01-10"

        briefs = {b["external_id"]: b for b in await conn.fetch("SELECT * FROM briefs")}
        assert set(briefs) == {"11", "12", "13", "14", "18"}
        assert briefs["11"]["winner_seller_id"] == acme["id"]
        assert briefs["12"]["winner_seller_id"] == acme["id"]
        assert briefs["13"]["winner_seller_id"] == sellers[1]["id"]
        assert briefs["14"]["status"] == "closed" and briefs["14"]["winner_seller_id"] is None
        assert briefs["18"]["status"] == "cancelled"
        assert briefs["12"]["role"] == "delivery manager"
        assert briefs["11"]["published_at"].date().isoformat() == "2017-01-10"
        assert {c["brief_id"] for c in studies} == {briefs["11"]["id"], briefs["12"]["id"]}

        actions = [
            r["action"] for r in await conn.fetch("SELECT action FROM audit_events ORDER BY id")
        ]
        assert actions.count("brief.imported") == 5
        assert actions.count("seller.imported") == 2
        assert actions.count("seller.import_updated") == 1

        before = await _snapshot(conn)
        again = await import_opportunities(conn, path, progress=False)
        assert await _snapshot(conn) == before  # same rows, same updated_at, no new audit
        assert (again.created, again.updated) == (0, 0)
        assert again.briefs_unchanged == 5
        assert [e.line for e in again.errors] == [6, 7, 8]


async def test_later_file_adds_wins_to_existing_sellers(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with pool.acquire() as conn:
        await import_opportunities(conn, _csv(tmp_path), progress=False)
        later = tmp_path / "later"
        later.mkdir()
        path = write(
            later,
            [
                row("11", "Alpha build", "2017-01-10", winner="Acme Ltd", size="small"),
                row("21", "Gamma", "2017-09-01", winner="acme", size="medium",
                    location="Scotland"),
            ],
        )
        report = await import_opportunities(conn, path, progress=False)
        assert report.briefs_created == 1 and report.briefs_unchanged == 1
        acme = await conn.fetchrow("SELECT * FROM sellers WHERE name = 'Acme Ltd'")
        assert [c["title"] for c in acme["case_studies"]] == ["Alpha build", "Beta build", "Gamma"]
        assert acme["sme"] is True  # the newest win is medium-sized
        assert "Scotland" in acme["locations"]
        assert await conn.fetchval("SELECT count(*) FROM sellers") == 2


async def test_database_rejection_skips_only_that_row(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # A NUL character is valid CSV but PostgreSQL text refuses it: that row alone fails.
    path = write(
        tmp_path,
        [
            row("31", "Fine", "2017-01-10", status="closed"),
            row("32", "Nul\x00title", "2017-01-11", winner="Delta Ltd"),
            row("33", "Also fine", "2017-01-12", winner="Echo Ltd"),
        ],
    )
    async with pool.acquire() as conn:
        report = await import_opportunities(conn, path, progress=False)
        assert [e.line for e in report.errors] == [3]
        assert report.briefs_created == 2 and report.sellers_created == 1
        assert await conn.fetchval("SELECT count(*) FROM sellers") == 1
        names = await conn.fetch("SELECT name FROM sellers")
        assert [r["name"] for r in names] == ["Echo Ltd"]


def test_cli_unreadable_file_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    proc = subprocess.run(
        [sys.executable, "-m", "marketplace.cli", "import-dm", str(tmp_path / "missing.csv")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr


async def test_cli_imports_and_summarises(
    migrated: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": migrated.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketplace.cli", "import-dm", "--quiet", str(_csv(tmp_path)),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "3 errors" in out.decode()
    assert "line 6:" in err.decode()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM briefs") == 5
