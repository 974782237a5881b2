"""Fast start: a LiveMatcher writes an index snapshot after fitting, and a new one starts from it,
applying only what changed in the database since; an unusable snapshot means a (logged) fit,
never a stale index."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from live import LiveMatcher, revision_diff
from live.snapshots import RefitLock
from matcher import Matcher
from matcher import snapshot as snapshots
from models import sellers as sellers_repo
from tests.workers.conftest import KUBERNETES_BRIEF as BRIEF
from tests.workers.conftest import make_seller, wait_for

K8S = {"summary": "Kubernetes platform engineering and CI pipelines", "skills": ["kubernetes"]}


async def _ranked(live: LiveMatcher) -> list[tuple[int, float]]:
    return [(m.seller_id, m.score) for m in await live.match(BRIEF, 50)]


async def _first_live(pool: asyncpg.Pool, dsn: str, path: Path) -> None:
    live = LiveMatcher(pool, dsn, snapshot_path=path)
    await live.start()
    try:
        assert live.ready and live.source == "fit"
        await live.flush_snapshot()
        assert "database" in snapshots.read_meta(path)
    finally:
        await live.stop()


async def test_starts_from_snapshot_and_applies_changes(clean_db, pool: asyncpg.Pool,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "index" / "sellers.idx"
    async with pool.acquire() as conn:
        ids = [await make_seller(conn, f"Seller {i}", None) for i in range(40)]
        edited = ids[3]
        deleted = await make_seller(conn, "Doomed Ltd", None, **K8S)
    await _first_live(pool, clean_db.database_url, path)

    # While no process runs: an edit, a deletion and a new seller.
    async with pool.acquire() as conn:
        await sellers_repo.update(conn, edited, K8S)
        await sellers_repo.delete(conn, deleted)
        added = await make_seller(conn, "Fresh Ltd", None, **K8S)

    live = LiveMatcher(pool, clean_db.database_url, snapshot_path=path)
    await live.start()
    try:
        assert live.ready and live.source == "snapshot" and live.refits == 0
        assert len(live) == 41
        found = dict(await _ranked(live))
        assert edited in found and added in found and deleted not in found
        # Names come with the snapshot start too (previews show them without a query).
        assert live.seller_name(added) == "Fresh Ltd" and live.seller_name(ids[0]) == "Seller 0"
        assert live.seller_name(deleted) is None
        # The same sellers as a fresh fit would rank (scores differ only by IDF drift).
        async with pool.acquire() as conn:
            fresh = Matcher().fit(await sellers_repo.load_all(conn))
        assert {m.seller_id for m in fresh.match(BRIEF, 50)} == set(found)

        # Live changes keep flowing after a snapshot start.
        async with pool.acquire() as conn:
            await sellers_repo.delete(conn, added)

        async def gone() -> bool:
            return added not in dict(await _ranked(live))

        await wait_for(gone, within=1.0, every=0.02)
    finally:
        await live.stop()


async def test_change_during_start_is_not_missed(clean_db, pool: asyncpg.Pool,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "sellers.idx"
    async with pool.acquire() as conn:
        for i in range(10):
            await make_seller(conn, f"Seller {i}", None)
    await _first_live(pool, clean_db.database_url, path)
    live = LiveMatcher(pool, clean_db.database_url, snapshot_path=path)
    await live.start(wait=False)  # LISTEN is on; the snapshot loads in the background
    try:
        async with pool.acquire() as conn:
            added = await make_seller(conn, "During Start Ltd", None, **K8S)

        async def visible() -> bool:
            return added in dict(await _ranked(live))  # match waits until ready

        await wait_for(visible, within=2.0, every=0.02)
        assert live.source == "snapshot"
    finally:
        await live.stop()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other-database"])
async def test_unusable_snapshot_means_a_logged_fit(clean_db, pool: asyncpg.Pool,
                                                    tmp_path: Path, damage: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sellers.idx"
    async with pool.acquire() as conn:
        k8s = await make_seller(conn, "Cluster Ltd", None, **K8S)
    await _first_live(pool, clean_db.database_url, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04 not a zip at all")
    else:  # a valid snapshot that claims another database
        index, meta, extra = snapshots.load(path)
        meta["database"] = "0/elsewhere"
        snapshots.save(index, path, meta, extra)
    async with pool.acquire() as conn:
        await sellers_repo.delete(conn, k8s)
    caplog.set_level(logging.INFO, logger="live.index")
    live = LiveMatcher(pool, clean_db.database_url, snapshot_path=path)
    await live.start()
    try:
        assert live.source == "fit" and live.refits == 1
        assert k8s not in dict(await _ranked(live))
        assert any(r.levelno >= logging.ERROR and "snapshot" in r.getMessage()
                   for r in caplog.records)
    finally:
        await live.stop()


async def test_snapshot_of_other_code_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from models.types import Seller
    from tests.workers.conftest import SELLER_TEXT

    index = Matcher().fit([Seller(id=1, name="A", summary=SELLER_TEXT)]).index_
    path = tmp_path / "s.idx"
    snapshots.save(index, path, {})
    monkeypatch.setattr(snapshots, "FINGERPRINT", "changed")
    with pytest.raises(snapshots.SnapshotError):
        await asyncio.to_thread(snapshots.load, path)


def test_revision_diff() -> None:
    old_ids, old_revs = np.array([1, 2, 3, 5]), np.array([10, 11, 12, 13])
    ids, revs = np.array([1, 3, 4, 5]), np.array([10, 20, 21, 13])
    assert revision_diff(old_ids, old_revs, ids, revs) == ([3, 4], [2])


async def test_processes_of_a_host_share_one_mapped_index(clean_db, pool: asyncpg.Pool,
                                                          tmp_path: Path) -> None:
    """Two live indexes on one snapshot path (the API processes and worker of one host): one
    refits and writes, the other maps what it wrote instead of fitting; both serve from the
    mapping, and edits still reach both within a second."""
    path = tmp_path / "index" / "sellers.idx"
    async with pool.acquire() as conn:
        for i in range(30):
            await make_seller(conn, f"Seller {i}", None)
        k8s = await make_seller(conn, "Cluster Ltd", None, **K8S)
    first = LiveMatcher(pool, clean_db.database_url, snapshot_path=path)
    await first.start()
    await first.flush_snapshot()
    second = LiveMatcher(pool, clean_db.database_url, snapshot_path=path)
    await second.start()
    try:
        assert second.source == "snapshot" and second.refits == 0

        async def mapped(live: LiveMatcher) -> bool:
            return live.source == "snapshot" and not live.matcher.index_.postings.lo.flags.owndata

        await wait_for(lambda: mapped(first), within=3.0)  # its own fit, mapped once written
        adopted = second.adopted
        await first.refit()  # as its refit loop does, holding the host's refit lock
        assert await mapped(first)

        async def second_took_it() -> bool:
            return second.adopted > adopted and await mapped(second)

        await wait_for(second_took_it, within=3.0)
        assert second.refits == 0
        assert await _ranked(first) == await _ranked(second)
        async with pool.acquire() as conn:
            await sellers_repo.delete(conn, k8s)

        async def gone_everywhere() -> bool:
            found = [dict(await _ranked(live)) for live in (first, second)]
            return all(k8s not in ranked for ranked in found)

        await wait_for(gone_everywhere, within=1.0, every=0.02)
    finally:
        await second.stop()
        await first.stop()


def test_one_refit_at_a_time_per_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "index" / "sellers.idx"
    one, two = RefitLock(path), RefitLock(path)
    assert one.acquire()
    assert not two.acquire()
    one.release()
    assert two.acquire()
    two.release()
