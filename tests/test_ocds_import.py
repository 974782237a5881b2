"""`marketplace import-ocds` against the real PostgreSQL fixture, and `marketplace eval --ocds`
as a process, on the vendored OCDS slices (tests/data/ocds)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from marketplace.ocds_import import import_ocds
from tests.test_ocds import BAD_LINES, PACKAGE, RECORDS, package, release

METRIC_KEYS = {"n_queries", "recall@1", "recall@10", "mrr", "ndcg@10"}
DM_SLICE = Path(__file__).resolve().parent / "data" / "dos-opportunities-slice.csv"


async def _snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "sellers": [dict(r) for r in await conn.fetch("SELECT * FROM sellers ORDER BY id")],
        "briefs": [dict(r) for r in await conn.fetch("SELECT * FROM briefs ORDER BY id")],
        "categories": [dict(r) for r in await conn.fetch("SELECT * FROM categories ORDER BY id")],
        "audit": await conn.fetchval("SELECT count(*) FROM audit_events"),
    }


def _write(tmp_path: Path, *releases: dict[str, Any], name: str = "awards.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(package(*releases)), encoding="utf-8")
    return path


async def test_import_package_then_reimport_changes_nothing(pool: asyncpg.Pool) -> None:
    document = json.loads(PACKAGE.read_text(encoding="utf-8"))
    releases = document["releases"]
    party_ids = {s["id"] for r in releases for a in r["awards"] for s in a["suppliers"]}
    async with pool.acquire() as conn:
        report = await import_ocds(conn, PACKAGE, progress=False)
        assert report.errors == []
        assert (report.rows, report.briefs_created) == (53, 53)
        assert report.sellers_created == len(party_ids)

        sellers = {r["party_id"]: r for r in await conn.fetch("SELECT * FROM sellers")}
        assert set(sellers) == party_ids
        briefs = {r["external_id"]: r for r in await conn.fetch("SELECT * FROM briefs")}
        assert len(briefs) == 53
        for rel in releases:
            award = rel["awards"][0]
            brief = briefs[f"{rel['ocid']}/{award['id']}"]
            assert brief["status"] == "awarded"
            assert brief["title"] == rel["tender"]["title"]
            assert brief["organisation"] == rel["buyer"]["name"]
            assert brief["awarded_at"].date().isoformat() == award["date"][:10]
            suppliers = [s["id"] for s in award["suppliers"]]
            # The winner only when there is one; every supplier has the work as past work.
            expected = sellers[suppliers[0]]["id"] if len(suppliers) == 1 else None
            assert brief["winner_seller_id"] == expected
            for party_id in suppliers:
                studies = sellers[party_id]["case_studies"]
                [study] = [c for c in studies if c["brief_id"] == brief["id"]]
                assert study["title"] == rel["tender"]["title"]
                assert study["organisation"] == rel["buyer"]["name"]
                assert study["won_at"] == award["date"][:10]
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_events")]
        assert actions.count("brief.imported") == 53
        assert actions.count("seller.imported") == len(party_ids)

        before = await _snapshot(conn)
        again = await import_ocds(conn, PACKAGE, progress=False)
        assert await _snapshot(conn) == before  # same rows, same updated_at, no new audit
        assert (again.created, again.updated) == (0, 0)
        assert again.briefs_unchanged == 53

        # The same awards as a record package: nothing new either.
        records = await import_ocds(conn, RECORDS, progress=False)
        assert (records.created, records.updated, len(records.errors)) == (0, 0, 0)
        assert await _snapshot(conn) == before


async def test_cpv_categories_scale_and_value(pool: asyncpg.Pool, tmp_path: Path) -> None:
    acme, bravo = ("GB-COH-0001", "Acme Ltd"), ("GB-COH-0002", "Bravo plc")
    async with pool.acquire() as conn:
        # An admin named this category already: the import must not relabel it.
        await conn.execute("INSERT INTO categories (id, label) VALUES ('79000000', 'Admin')"
                           " ON CONFLICT (id) DO UPDATE SET label = 'Admin'")
        await conn.execute("DELETE FROM categories WHERE id IN ('73100000', '79400000')")
        path = _write(
            tmp_path,
            release("ocds-a", "2020-01-10", [acme, bravo],
                    cpv=[("73100000-3", "Research and experimental development services"),
                         ("79000000-4", "Business services")],
                    scale={acme[0]: "sme", bravo[0]: "large"}, value=1500.0),
            release("ocds-b", "2020-03-10", [acme], cpv=[("79400000-8", "")],
                    scale={acme[0]: "large"}, value=99.0),
        )
        report = await import_ocds(conn, path, progress=False)
        assert report.errors == [] and report.categories_created == 2
        labels = dict(await conn.fetch(
            "SELECT id, label FROM categories WHERE id IN ('73100000', '79000000', '79400000')"))
        assert labels == {"73100000": "Research and experimental development services",
                          "79000000": "Admin", "79400000": "79400000"}
        rows = {r["party_id"]: r for r in await conn.fetch("SELECT * FROM sellers")}
        assert rows[acme[0]]["sme"] is False  # the latest award's scale
        assert rows[bravo[0]]["sme"] is False
        assert rows[acme[0]]["categories"] == ["73100000", "79400000"]
        briefs = {r["external_id"]: r for r in await conn.fetch("SELECT * FROM briefs")}
        assert briefs["ocds-a/1"]["category"] == "73100000"
        assert briefs["ocds-a/1"]["budget"] == 1500.0
        assert briefs["ocds-a/1"]["winner_seller_id"] is None  # two suppliers
        assert briefs["ocds-b/1"]["winner_seller_id"] == rows[acme[0]]["id"]

        # A later file: an SME again, and a value in euros is not shown as pounds.
        later = release("ocds-c", "2020-06-10", [acme], scale={acme[0]: "micro"}, value=5.0)
        later["awards"][0]["value"]["currency"] = "EUR"
        report = await import_ocds(conn, _write(tmp_path, later, name="later.json"),
                                   progress=False)
        assert (report.briefs_created, report.sellers_updated) == (1, 1)
        assert await conn.fetchval(
            "SELECT sme FROM sellers WHERE party_id = $1", acme[0]) is True
        assert await conn.fetchval(
            "SELECT budget FROM briefs WHERE external_id = 'ocds-c/1'") is None


async def test_bad_releases_reported_and_the_rest_imported(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        report = await import_ocds(conn, BAD_LINES, progress=False)
        assert [(e.unit, e.position) for e in report.errors] == [
            ("line", 2), ("line", 3), ("line", 6), ("line", 7), ("line", 8)]
        assert report.briefs_created == 3
        assert await conn.fetchval("SELECT count(*) FROM briefs") == 3


async def test_database_rejection_skips_only_that_award(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # A NUL character is valid JSON but PostgreSQL text refuses it: that award alone fails.
    path = _write(
        tmp_path,
        release("ocds-d", "2020-01-10", [("P-1", "Delta Ltd")]),
        release("ocds-e", "2020-01-11", [("P-2", "Echo Ltd")], title="Nul\x00title"),
        release("ocds-f", "2020-01-12", [("P-3", "Foxtrot Ltd")]),
    )
    async with pool.acquire() as conn:
        report = await import_ocds(conn, path, progress=False)
        assert [str(e).split(":")[0] for e in report.errors] == ["release 2"]
        assert "award 1 not imported" in report.errors[0].message
        assert (report.briefs_created, report.sellers_created) == (2, 2)
        names = await conn.fetch("SELECT name FROM sellers ORDER BY id")
        assert [r["name"] for r in names] == ["Delta Ltd", "Foxtrot Ltd"]


async def test_a_supplier_is_its_party_id(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        # A seller from the Digital Marketplace (no party id) is the same company as a
        # supplier with its normalised name; a second party id with that name is another.
        await conn.execute(
            "INSERT INTO sellers (name, name_key) VALUES ('Golf Ltd', 'golf')")
        path = _write(
            tmp_path,
            release("ocds-g", "2020-01-10", [("P-GOLF", "GOLF Limited")]),
            release("ocds-h", "2020-01-11", [("P-GOLF-2", "Golf Ltd")]),
            release("ocds-i", "2020-01-12", [("P-GOLF", "Golf")]),
        )
        report = await import_ocds(conn, path, progress=False)
        assert report.errors == []
        rows = await conn.fetch("SELECT name, party_id, case_studies FROM sellers ORDER BY id")
        assert [(r["name"], r["party_id"]) for r in rows] == [
            ("Golf Ltd", "P-GOLF"), ("Golf Ltd", "P-GOLF-2")]
        assert [len(r["case_studies"]) for r in rows] == [2, 1]
        before = await _snapshot(conn)
        await import_ocds(conn, path, progress=False)
        assert await _snapshot(conn) == before


def test_cli_unreadable_file_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    (tmp_path / "rows.csv").write_text("id,title\n1,x\n", encoding="utf-8")
    for name, message in (("missing.json", "cannot read"), ("rows.csv", "not JSON")):
        proc = subprocess.run(
            [sys.executable, "-m", "marketplace.cli", "import-ocds", str(tmp_path / name)],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert proc.returncode == 1
        assert message in proc.stderr


async def test_cli_imports_and_summarises(migrated: Any, pool: asyncpg.Pool) -> None:
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": migrated.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketplace.cli", "import-ocds", "--quiet", str(BAD_LINES),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "3 awards: briefs 3 created" in out.decode()
    assert "5 errors" in out.decode()
    assert "line 3: missing ocid" in err.decode()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM briefs") == 3


async def _eval_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketplace.cli", "eval", "--json", "--quiet", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_cli_eval_ocds_json(servers: Any) -> None:
    """The real command, our matcher included, on the release package slice: the same JSON
    keys, for every ranker, as the same command on Digital Marketplace data."""
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": servers.database_url}
    result = await _eval_json(env, "--ocds", str(PACKAGE), "--split-date", "2020-05-01")
    assert (result["n_queries"], result["n_candidates"]) == (12, 39)
    assert result["split_date"] == "2020-05-01" and result["row_errors"] == 0
    for key in ("ours", "bm25", "postgres_fts", "postgres_ts_rank"):
        assert METRIC_KEYS <= set(result[key]), key
        assert result[key]["n_queries"] == 12
        assert 0 <= result[key]["recall@1"] <= result[key]["recall@10"] <= 1
    csv = await _eval_json(env, "--opportunities", str(DM_SLICE), "--split-date", "2017-07-01")
    assert set(result) == set(csv)
    for key in ("ours", "bm25", "postgres_fts", "postgres_ts_rank"):
        assert set(result[key]) == set(csv[key]), key


def test_cli_eval_needs_exactly_one_source(capsys: Any) -> None:
    from marketplace.cli import main

    for argv in (["eval", "--split-date", "2020-05-01"],
                 ["eval", "--ocds", str(PACKAGE), "--opportunities", "x.csv",
                  "--split-date", "2020-05-01"]):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"accepted {argv}")
    assert "--ocds" in capsys.readouterr().err
    assert main(["eval", "--ocds", str(BAD_LINES.parent / "none.json"),
                 "--split-date", "2020-05-01"]) == 1
