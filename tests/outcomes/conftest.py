"""Fixtures for the outcomes tests (categories, claims, funnel, fitting): the API fixtures,
and the category list put back to the migration's seed (the suite's truncation leaves the
categories table alone)."""

from __future__ import annotations

import asyncpg
import pytest

from tests.api.conftest import admin, buyer, client, make_client, other_buyer, other_seller, seller

__all__ = ["admin", "buyer", "client", "make_client", "other_buyer", "other_seller", "seller"]

DOS_LOTS = {
    "digital-outcomes": "Digital outcomes",
    "digital-specialists": "Digital specialists",
    "user-research-participants": "User research participants",
    "user-research-studios": "User research studios",
}


@pytest.fixture(autouse=True)
async def seeded_categories(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM categories WHERE NOT (id = ANY($1::text[]))",
                           list(DOS_LOTS))
        for cid, label in DOS_LOTS.items():
            await conn.execute(
                "INSERT INTO categories (id, label) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE"
                " SET label = EXCLUDED.label, parent_id = NULL", cid, label,
            )
