"""Bulk-load benchmark sellers into PostgreSQL with COPY, and a database for benchmarks.

Used by bench.matching (edit-to-visible and ready-within rows) and bench.preview_load. COPY
through asyncpg's binary protocol loads 100,000 profiles in seconds, where INSERTs take minutes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from marketplace.embedded import EmbeddedServices
from models.migrate import migrate
from models.sellers import case_study_json, name_key
from models.types import Seller

_COLUMNS = (
    "id", "name", "name_key", "summary", "categories", "skills", "locations", "day_rate", "sme",
    "active", "case_studies",
)


def _record(s: Seller) -> tuple[Any, ...]:
    cases = orjson.dumps([case_study_json(c) for c in s.case_studies]).decode()
    return (
        s.id, s.name, name_key(s.name), s.summary, s.categories, s.skills, s.locations,
        s.day_rate, s.sme, s.active, cases,
    )


async def load_sellers(
    conn: asyncpg.Connection, sellers: Iterable[Seller], *, replace: bool = True,
    batch: int = 20_000,
) -> int:
    """COPY sellers (with their ids) into `sellers`; `replace` empties the table first.

    `conn` must be a plain asyncpg connection (no jsonb codec): case studies go in as JSON text.
    """
    if replace:
        await conn.execute("TRUNCATE sellers RESTART IDENTITY CASCADE")
    total = 0
    chunk: list[tuple[Any, ...]] = []
    for seller in sellers:
        chunk.append(_record(seller))
        if len(chunk) >= batch:
            await conn.copy_records_to_table("sellers", records=chunk, columns=_COLUMNS)
            total += len(chunk)
            chunk = []
    if chunk:
        await conn.copy_records_to_table("sellers", records=chunk, columns=_COLUMNS)
        total += len(chunk)
    # Ids were given explicitly: move the sequence past them so API-created sellers fit.
    await conn.execute(
        "SELECT setval('sellers_id_seq', GREATEST((SELECT max(id) FROM sellers), 1))"
    )
    await conn.execute("ANALYZE sellers")
    return total


@contextmanager
def service_urls() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url): MARKETPLACE_DATABASE_URL / MARKETPLACE_REDIS_URL when both
    are set, else the embedded default (real PostgreSQL + Valkey) in a temporary folder."""
    db_url = os.environ.get("MARKETPLACE_DATABASE_URL")
    redis_url = os.environ.get("MARKETPLACE_REDIS_URL")
    if db_url and redis_url:
        yield db_url, redis_url
        return
    with tempfile.TemporaryDirectory(prefix="marketplace-bench-") as tmp:
        services = EmbeddedServices(Path(tmp))
        pg_url, valkey_url = services.start()
        try:
            yield db_url or pg_url, redis_url or valkey_url
        finally:
            services.stop()


@asynccontextmanager
async def migrated_connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        yield conn
    finally:
        await conn.close()
