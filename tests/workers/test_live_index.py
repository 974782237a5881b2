"""The live index follows the database within a second: seller add/edit/delete, rule swaps, and
a dropped LISTEN connection (reconnect + full reload)."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from live import LiveMatcher
from matcher import Rules
from models import rules as rules_repo
from models import sellers as sellers_repo
from tests.workers.conftest import KUBERNETES_BRIEF as BRIEF
from tests.workers.conftest import make_seller, wait_for


async def _ids(live: LiveMatcher) -> set[int]:
    return {m.seller_id for m in await live.match(BRIEF, 50)}


async def test_incremental_changes_within_a_second(clean_db, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await make_seller(conn, "Data Ltd", None)
    live = LiveMatcher(pool, clean_db.database_url)
    await live.start()
    try:
        assert len(live) == 1 and live.rules_version == 0

        async with pool.acquire() as conn:
            k8s = await make_seller(
                conn,
                "Cluster Ltd",
                None,
                summary="Kubernetes platform engineering and CI pipelines",
                skills=["kubernetes"],
            )
        started = time.monotonic()

        async def has_k8s() -> bool:
            return k8s in await _ids(live)

        await wait_for(has_k8s, within=1.0, every=0.02)
        assert time.monotonic() - started < 1.0
        assert live.refits == 1  # incremental: no rebuild

        async with pool.acquire() as conn:
            await sellers_repo.update(
                conn,
                k8s,
                {"summary": "Bakery", "skills": ["bread"], "categories": ["user-research-studios"]},
            )

        async def lost_k8s() -> bool:
            return k8s not in await _ids(live)

        await wait_for(lost_k8s, within=1.0, every=0.02)

        async with pool.acquire() as conn:
            await sellers_repo.update(
                conn,
                k8s,
                {
                    "summary": "Kubernetes clusters",
                    "skills": ["kubernetes"],
                    "categories": ["digital-outcomes"],
                },
            )
        await wait_for(has_k8s, within=1.0, every=0.02)
        async with pool.acquire() as conn:
            await sellers_repo.delete(conn, k8s)
        await wait_for(lost_k8s, within=1.0, every=0.02)
        assert len(live) == 1

        # A new active rule set reaches the matcher without a refit.
        body = Rules(alert_threshold=0.9).to_dict()
        async with pool.acquire() as conn, conn.transaction():
            version = await rules_repo.create_version(conn, body, "stricter", None)
            await rules_repo.activate(conn, version)

        async def rules_applied() -> bool:
            return live.rules_version == version and live.rules.alert_threshold == 0.9

        await wait_for(rules_applied, within=1.0, every=0.02)
        assert live.refits == 1
    finally:
        await live.stop()


async def test_seller_names_follow_the_index(clean_db, pool: asyncpg.Pool) -> None:
    """Previews read names from the live index: a rename shows within a second, a deleted
    seller has no name (and is left out), both in the same change as the index itself."""
    async with pool.acquire() as conn:
        first = await make_seller(conn, "Data Ltd", None)
    live = LiveMatcher(pool, clean_db.database_url)
    await live.start()
    try:
        assert live.seller_name(first) == "Data Ltd"
        async with pool.acquire() as conn:
            added = await make_seller(conn, "Cluster Ltd", None)
            await sellers_repo.update(conn, first, {"name": "Data Renamed Ltd"})

        async def names_current() -> bool:
            return (live.seller_name(added), live.seller_name(first)) == (
                "Cluster Ltd", "Data Renamed Ltd")

        await wait_for(names_current, within=1.0, every=0.02)
        async with pool.acquire() as conn:
            await sellers_repo.delete(conn, added)

        async def name_gone() -> bool:
            return live.seller_name(added) is None

        await wait_for(name_gone, within=1.0, every=0.02)
        assert len(live) == 1
        await live.refit()  # a full reload keeps them too
        assert live.seller_name(first) == "Data Renamed Ltd" and live.seller_name(added) is None
    finally:
        await live.stop()


async def test_reconnects_and_reloads(clean_db, pool: asyncpg.Pool) -> None:
    live = LiveMatcher(pool, clean_db.database_url, ping_seconds=0.5)
    await live.start()
    try:
        assert live._listener is not None
        pid = live._listener.get_server_pid()
        async with pool.acquire() as conn:
            # Drop the listening connection, then change data while nobody listens.
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
            k8s = await make_seller(
                conn, "Cluster Ltd", None, summary="Kubernetes clusters", skills=["kubernetes"]
            )

        async def has_k8s() -> bool:
            return k8s in await _ids(live)

        await wait_for(has_k8s, within=5.0, every=0.05)
        assert live._listener is not None and live._listener.get_server_pid() != pid
    finally:
        await live.stop()


async def test_background_refit_keeps_changes(clean_db, pool: asyncpg.Pool) -> None:
    """Changes made while a refit runs are re-applied on top of the swapped-in index."""
    async with pool.acquire() as conn:
        for i in range(30):
            await make_seller(conn, f"Seller {i}", None)
    live = LiveMatcher(pool, clean_db.database_url, refit_after_changes=5)
    await live.start()
    try:
        async with pool.acquire() as conn:
            k8s = [
                await make_seller(
                    conn, f"K8s {i}", None, summary="Kubernetes clusters", skills=["kubernetes"]
                )
                for i in range(6)
            ]

        async def refitted() -> bool:
            ids = await _ids(live)
            return live.refits >= 2 and all(i in ids for i in k8s)

        await wait_for(refitted, within=5.0)
        assert len(live) == 36
    finally:
        await live.stop()


async def test_preview_is_remembered_per_generation(clean_db, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        k8s = await make_seller(
            conn, "Cluster Ltd", None, summary="Kubernetes platform engineering",
            skills=["kubernetes"],
        )
    live = LiveMatcher(pool, clean_db.database_url)
    await live.start()
    try:
        first = await live.preview(BRIEF, 20)
        assert [m.seller_id for m in first] == [k8s]
        assert await live.preview(BRIEF, 20) is first and live.preview_hits == 1
        # Identical previews in flight share one scoring.
        together = await asyncio.gather(*(live.preview(BRIEF, 10) for _ in range(5)))
        assert all(t is together[0] for t in together)
        generation = live.generation
        async with pool.acquire() as conn:
            await sellers_repo.delete(conn, k8s)

        async def changed() -> bool:
            return live.generation > generation

        await wait_for(changed, within=1.0, every=0.02)
        assert await live.preview(BRIEF, 20) == []  # a new generation: scored again
    finally:
        await live.stop()
