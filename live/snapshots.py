"""The index snapshot store: where the persisted index lives, what it is checked against
(the (id, revision) pairs of the sellers table and the database's identity), and one writer
at a time in the background so that the newest index lands last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import asyncpg
import numpy as np

from matcher import snapshot as snapshots

log = logging.getLogger("live.snapshots")


async def seller_revisions(conn: asyncpg.Connection) -> tuple[np.ndarray, np.ndarray]:
    """(ids ascending, revisions) of every seller: what an index snapshot is checked against.
    Raw binary COPY would be faster still; at 100,000 rows this is ~0.1 s."""
    rows = await conn.fetch("SELECT id, revision FROM sellers ORDER BY id")
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    revs = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    return ids, revs


async def database_identity(conn: asyncpg.Connection) -> str:
    """Which database cluster and database this is: a snapshot of another one (a restored
    backup elsewhere, a recreated cluster) is not used even if its revisions happen to fit."""
    try:
        system = await conn.fetchval("SELECT system_identifier::text FROM pg_control_system()")
    except asyncpg.PostgresError:  # not allowed for this role: the database name must do
        system = ""
    return f"{system}/{await conn.fetchval('SELECT current_database()')}"


def revision_diff(old_ids: np.ndarray, old_revs: np.ndarray, ids: np.ndarray, revs: np.ndarray,
                  ) -> tuple[list[int], list[int]]:
    """(ids added or changed, ids gone) between two (ids ascending, revisions) states."""
    common, i_old, i_new = np.intersect1d(old_ids, ids, assume_unique=True, return_indices=True)
    changed = common[old_revs[i_old] != revs[i_new]]
    added = np.setdiff1d(ids, old_ids, assume_unique=True)
    gone = np.setdiff1d(old_ids, ids, assume_unique=True)
    return sorted(changed.tolist() + added.tolist()), gone.tolist()


def default_snapshot_path(data_dir: str | os.PathLike[str] | None) -> Path | None:
    return Path(data_dir) / "index" / "sellers.idx" if data_dir else None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(inode, modification time) of the snapshot file, None when there is none: a new
    snapshot is a new file renamed into place, so either changes when one is written."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class RefitLock:
    """One refit at a time among the processes sharing a snapshot (those of one host, with one
    DATA_DIR): an exclusive `flock` on a file beside it, never waited for. The others map the
    snapshot the holder writes instead of fitting the same index themselves. The kernel drops
    the lock when its holder dies, so a crashed refit never blocks the next one."""

    def __init__(self, snapshot: Path) -> None:
        self.path = snapshot.with_name(snapshot.name + ".refit-lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


class SnapshotWriter:
    """Writes index snapshots off the event loop, one at a time, newest last (atomic rename
    in matcher/snapshot.py: a reader never sees half a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._task: asyncio.Task[None] | None = None

    def write(self, arrays: dict[str, np.ndarray]) -> None:
        path = self.path
        previous = self._task

        async def write() -> None:
            if previous is not None:  # one writer at a time: the newest index lands last
                with contextlib.suppress(Exception):
                    await previous
            started = time.perf_counter()
            try:
                size = await asyncio.to_thread(snapshots.write, arrays, path)
            except Exception:
                log.exception("writing the index snapshot %s failed", path)
                return
            log.info("index snapshot written: %s, %.1f MB, %.2fs", path, size / 1e6,
                     time.perf_counter() - started)

        self._task = asyncio.create_task(write(), name="live-index-snapshot")

    async def flush(self) -> None:
        """Wait until the snapshot being written (if any) is on disk."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def settle(self, seconds: float) -> None:
        """On stop: the write runs in a thread and renames atomically; give it a moment, no
        more."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), seconds)
