"""The per-brief alert cap holds whatever order sellers with equal scores come back in: across
the waves of one fan-out, across re-runs, and at the repository."""

from __future__ import annotations

import asyncpg

from matcher import Rules
from models import alerts as alerts_repo
from models import rules as rules_repo
from tests.workers.conftest import (
    make_seller,
    publish_brief,
    running_worker,
    settings_for,
    wait_for,
    worker_config,
)


async def test_cap_holds_across_calls_with_other_sellers(clean_db, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        ids = [await make_seller(conn, f"Tied {i}", None) for i in range(8)]
        brief_id, _ = await publish_brief(conn)
        first = [(s, "email", 0.5) for s in ids[:5]]
        other_order = [(s, "email", 0.5) for s in reversed(ids)]
        async with conn.transaction():
            assert await alerts_repo.create_many(conn, brief_id, first, cap=5) == 5
        async with conn.transaction():
            # Sellers tied with the first five, in another order: the cap is already used up.
            assert await alerts_repo.create_many(conn, brief_id, other_order, cap=5) == 0
        assert sum((await alerts_repo.counts_by_status(conn, brief_id)).values()) == 5
        async with conn.transaction():  # room left: filled best first
            assert await alerts_repo.create_many(conn, brief_id, other_order, cap=7) == 2
        rows = await alerts_repo.list_for_brief(conn, brief_id)
    assert {r["seller_id"] for r in rows} == {*ids[:5], ids[7], ids[6]}


async def test_cap_holds_with_tied_scores_in_a_wave_fan_out(clean_db, pool: asyncpg.Pool) -> None:
    """400 sellers with the very same profile (equal scores) and a cap of 300: the fan-out
    stores 200, then 300 matches; the second wave may order the ties differently."""
    cap = 300
    async with pool.acquire() as conn:
        async with conn.transaction():
            version = await rules_repo.create_version(
                conn, Rules(max_alerts_per_brief=cap).to_dict(), "cap test", None
            )
            await rules_repo.activate(conn, version)
        async with conn.transaction():
            for i in range(400):
                await make_seller(conn, f"Same {i:03d}", {"frequency": "daily", "email": "a@a.t"})
        brief_id, outbox_id = await publish_brief(conn)
    async with running_worker(settings_for(clean_db, None), worker_config()):

        async def matched() -> bool:
            async with pool.acquire() as conn:
                return bool(await conn.fetchval(
                    "SELECT done_at IS NOT NULL FROM outbox WHERE id = $1", outbox_id
                ))

        await wait_for(matched, within=60)
    async with pool.acquire() as conn:
        total = sum((await alerts_repo.counts_by_status(conn, brief_id)).values())
    assert total == cap
