"""Shared fixtures: real PostgreSQL and a real Redis-protocol server, never mocks.

By default the session starts the embedded servers (the same ones `make run` uses) in a
temporary folder. Set MARKETPLACE_TEST_DATABASE_URL / MARKETPLACE_TEST_REDIS_URL to run the
suite against other servers (e.g. the machine's own PostgreSQL and Redis); the test database
is wiped, so never point these at data you want to keep.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from marketplace.embedded import EmbeddedServices
from models.db import connect, create_pool
from models.migrate import migrate

# Small slices of the real data, vendored so that a clone tests on its own (PROVENANCE.md).
TEST_DATA = Path(__file__).resolve().parent / "data"
OPPORTUNITIES_CSV = TEST_DATA / "dos-opportunities-slice.csv"
BRIEFS_JSONL = TEST_DATA / "dos-briefs-2019-2020.jsonl"
# bench/corpus.py (and the benchmark processes tests start) compose their corpus from these
# slices, never from the full data beside the checkout.
os.environ["BENCH_DATA_DIR"] = str(TEST_DATA)
DEMO_DATA = Path(__file__).resolve().parents[1] / "marketplace" / "demo"


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    data_dir: Path


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    db_url = os.environ.get("MARKETPLACE_TEST_DATABASE_URL")
    redis_url = os.environ.get("MARKETPLACE_TEST_REDIS_URL")
    with tempfile.TemporaryDirectory(prefix="marketplace-test-") as tmp:
        data_dir = Path(tmp)
        if db_url and redis_url:
            yield Servers(db_url, redis_url, data_dir)
            return
        services = EmbeddedServices(data_dir)
        pg_url, valkey_url = services.start()
        try:
            yield Servers(db_url or pg_url, redis_url or valkey_url, data_dir)
        finally:
            services.stop()


_TABLES = (
    "audit_events, outbox, alerts, alert_preferences, matches, rule_sets, briefs, tokens, "
    "accounts, sellers"
)


@pytest.fixture(scope="session")
async def migrated(servers: Servers) -> Servers:
    conn = await connect(servers.database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return servers


@pytest.fixture
async def clean_db(migrated: Servers) -> AsyncIterator[Servers]:
    """Empty every table (and the queue) before the test: each test starts from nothing."""
    conn = await connect(migrated.database_url)
    try:
        await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    from redis.asyncio import Redis  # arq depends on redis-py

    redis = Redis.from_url(migrated.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    yield migrated


@pytest.fixture
async def pool(clean_db: Servers) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(clean_db.database_url, max_size=5)
    try:
        yield p
    finally:
        await p.close()
