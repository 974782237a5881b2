"""A round trip of the open data: export /open-data/ocds.json from one instance, run the real
`marketplace import-ocds FILE` into a fresh database, and find the same sellers (by name and
SME status) carrying the same past work (title, buyer, date won) as the awards of the first.

The first instance holds awards recorded in the service and one imported from Digital
Marketplace opportunity data (which has no award date: its past work is dated by publication,
and the export dates its award release the same way)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date
from pathlib import Path
from subprocess import PIPE

import asyncpg
import pytest

from marketplace.importer import import_parsed
from matcher.outcomes import parse_opportunities
from models.db import connect
from tests.api.conftest import MakeClient
from tests.conftest import Servers
from tests.outcome_seed import seed

CLI = [sys.executable, "-m", "marketplace.cli"]
DM_ROWS = [
    "ID,Opportunity,Link,Framework,Category,Specialist,Organisation Name,Buyer Domain,"
    "Location Of The Work,Published At,Open For,Expected Contract Length,"
    "Applications from SMEs,Applications from Large Organisations,Total Organisations,Status,"
    "Winning supplier,Size of supplier,Contract amount,Contract start date",
    "901,Discovery for prison visits,,digital-outcomes-and-specialists,digital-outcomes,,"
    "Ministry of Justice,justice.gov.uk,London,2017-03-14,2 weeks,3 months,4,2,6,awarded,"
    "Kainos Software Ltd,large,150000,",
    "902,Content designer,,digital-outcomes-and-specialists,digital-specialists,"
    "contentDesigner,HMRC,hmrc.gov.uk,Newcastle,2017-04-02,1 week,6 months,3,0,3,closed,,,,",
]

PastWork = dict[str, tuple[bool, set[tuple[str, str, date | None]]]]


@pytest.fixture
async def fresh_database(clean_db: Servers) -> AsyncIterator[str]:
    """A second, empty database on the same server: the fresh instance."""
    name = f"roundtrip_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(clean_db.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = clean_db.database_url.rpartition("/")
    query = ""
    if "?" in clean_db.database_url.rsplit("/", 1)[1]:
        query = "?" + clean_db.database_url.rsplit("?", 1)[1]
    try:
        yield f"{base}/{name}{query}"
    finally:
        admin = await asyncpg.connect(clean_db.database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _past_work_of_source(conn: asyncpg.Connection) -> PastWork:
    """Per winner: SME status and the awards it won here (title, buyer, date won)."""
    out: PastWork = {}
    for row in await conn.fetch(
        "SELECT s.name, s.sme, b.title, b.organisation,"
        " coalesce(b.awarded_at, b.published_at) AS won FROM briefs b"
        " JOIN sellers s ON s.id = b.winner_seller_id WHERE b.status = 'awarded'"
    ):
        _, work = out.setdefault(row["name"], (row["sme"], set()))
        work.add((row["title"], row["organisation"], row["won"].astimezone(UTC).date()))
    # Past work the source itself keeps on a seller for an award (the importer's case studies)
    # must be the same facts.
    for row in await conn.fetch("SELECT name, case_studies FROM sellers"):
        for cs in row["case_studies"]:
            if row["name"] in out and cs.get("won_at"):
                fact = (cs["title"], cs.get("organisation", ""), date.fromisoformat(cs["won_at"]))
                assert fact in out[row["name"]][1], (row["name"], fact)
    return out


async def _past_work_of(conn: asyncpg.Connection) -> PastWork:
    out: PastWork = {}
    for row in await conn.fetch("SELECT name, sme, case_studies FROM sellers"):
        out[row["name"]] = (row["sme"], {
            (cs["title"], cs.get("organisation", ""),
             date.fromisoformat(cs["won_at"]) if cs.get("won_at") else None)
            for cs in row["case_studies"]
        })
    return out


async def test_export_then_import_ocds_gives_the_same_past_work(
    make_client: MakeClient, pool: asyncpg.Pool, admin: dict[str, str], fresh_database: str,
    tmp_path: Path, clean_db: Servers,
) -> None:
    async with pool.acquire() as conn:
        opps, errors = parse_opportunities(DM_ROWS)
        assert not errors
        report = await import_parsed(conn, opps, errors, progress=False)
        assert not report.errors
    async with make_client(ocds_prefix="ocds-rtrip1") as client:
        await seed(client, pool, admin)
        r = await client.get("/open-data/ocds.json")
        assert r.status == 200
        export = tmp_path / "ocds.json"
        export.write_bytes(await r.read())
    async with pool.acquire() as conn:
        source = await _past_work_of_source(conn)
    assert set(source) == {"Alpha Digital Ltd", "Delta Digital Ltd", "Kainos Software Ltd"}

    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPLACE_")}
    env.update(MARKETPLACE_DATABASE_URL=fresh_database, MARKETPLACE_REDIS_URL=clean_db.redis_url,
               MARKETPLACE_DATA_DIR=str(tmp_path / "fresh"))
    for command in (["migrate"], ["import-ocds", str(export)]):
        proc = await asyncio.create_subprocess_exec(
            *CLI, *command, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, (err + out).decode()

    fresh = await connect(fresh_database)
    try:
        imported = await _past_work_of(fresh)
        awarded = await fresh.fetchval("SELECT count(*) FROM briefs WHERE status = 'awarded'")
    finally:
        await fresh.close()
    assert imported == source
    assert awarded == 3
