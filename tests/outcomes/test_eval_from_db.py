"""`marketplace eval --from-db`: the service's own awards give the same figures as the file
they were imported from, and a database filled through the API evaluates as computed by hand."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from marketplace.cli import main
from marketplace.importer import import_opportunities
from tests.api.factories import User
from tests.conftest import DEMO_DATA, Servers

AWARDS_CSV = DEMO_DATA / "opportunities-awarded-2016-2017.csv"


async def _eval(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """The command itself (in a thread: it runs its own event loop)."""
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["eval", "--json", "--quiet", *args]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    result.pop("seconds")
    return result


async def test_from_db_equals_the_imported_file(
    pool: asyncpg.Pool, clean_db: Servers, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with pool.acquire() as conn:
        report = await import_opportunities(conn, AWARDS_CSV, progress=False)
    assert report.errors == []
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", clean_db.database_url)
    split = ["--split-date", "2017-03-01"]
    from_file = await _eval(capsys, "--opportunities", str(AWARDS_CSV), *split)
    from_db = await _eval(capsys, "--from-db", *split)
    assert from_file["n_queries"] > 20
    for ranker in ("ours", "bm25", "postgres_fts", "postgres_ts_rank"):
        assert ranker in from_db
    assert from_db == from_file


async def _award(client: TestClient, admin: dict[str, str], buyer: User, pool: asyncpg.Pool,
                 title: str, winner: int, published: datetime) -> None:
    r = await client.post("/api/v1/briefs", headers=buyer.headers, json={
        "title": title, "summary": title, "category": "digital-outcomes",
        "location": "London", "essential_skills": ["python"]})
    brief_id = (await r.json())["id"]
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    assert r.status == 201
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE briefs SET status = 'awarded', winner_seller_id = $2, awarded_at = now(),"
            " published_at = $3 WHERE id = $1", brief_id, winner, published)


async def test_from_db_on_awards_recorded_through_the_api(
    client: TestClient, admin: dict[str, str], buyer: User, pool: asyncpg.Pool,
    clean_db: Servers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    ids = []
    for name in ("Kube Platforms Ltd", "Research Studio Ltd", "Never Won Ltd"):
        r = await client.post("/api/v1/sellers", headers=admin, json={
            "name": name, "categories": ["digital-outcomes"], "skills": ["python"]})
        ids.append((await r.json())["id"])
    kube, research, _ = ids
    await _award(client, admin, buyer, pool, "Kubernetes platform hosting", kube,
                 datetime(2024, 1, 10, tzinfo=UTC))
    await _award(client, admin, buyer, pool, "User research with claimants", research,
                 datetime(2024, 2, 10, tzinfo=UTC))
    await _award(client, admin, buyer, pool, "Kubernetes platform support", kube,
                 datetime(2024, 6, 10, tzinfo=UTC))
    await _award(client, admin, buyer, pool, "Something for a newcomer", ids[2],
                 datetime(2024, 7, 10, tzinfo=UTC))
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", clean_db.database_url)
    result = await _eval(capsys, "--from-db", "--split-date", "2024-05-01")
    # Profiles: the two sellers with a win before the split. Queries: later awards whose winner
    # had one (the newcomer's award is not a query). Kube's earlier win names the same work.
    assert (result["n_candidates"], result["n_queries"]) == (2, 1)
    assert result["ours"]["recall@1"] == 1.0 and result["bm25"]["recall@1"] == 1.0


def test_from_db_and_a_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--from-db", "--opportunities", str(AWARDS_CSV), "--split-date",
              "2017-01-01"])
    with pytest.raises(SystemExit):
        main(["eval", "--split-date", "2017-01-01"])
