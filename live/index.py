"""A matcher index kept current with the database, for every process that matches.

Start-up LISTENs first, then loads the index: from the persisted snapshot (`snapshot_path`,
matcher/snapshot.py) when there is one, validated against the database by comparing the
(id, revision) pairs it reflects with the table's (migration 003: a revision from one sequence,
bumped by a trigger on every write) and brought up to date by applying only the sellers that
changed since; otherwise (no snapshot, unreadable, other matcher code, too many changes) by
loading every seller and fitting in a thread, logged loudly. Every fit writes a new snapshot in
the background (atomic rename). `ready` is False until an index is loaded; `match` waits for it.

One index per host: the snapshot is mapped, not read (matcher/snapshot.py), so the processes
that share a DATA_DIR (the API processes and the worker of a host) share one copy of the index
in the page cache, each with only its own recent changes on top. A refit (periodic or after
many changes) is done by one of them at a time (`RefitLock`); it writes a new snapshot and maps
it, and the others notice the new file within a second and map it too, catching up on the
sellers changed since from the database, instead of each fitting the same index again.

A dedicated connection (live/listener.py) LISTENs on 'seller_changed' (payload: seller id)
and 'rules_changed'; bursts are coalesced and applied incrementally (add, update, remove,
with_rules) within a fraction of a second. A background refit (periodic, or after many
incremental changes: IDF drift) is built off-loop and swapped atomically. If the listening
connection drops, it reconnects and reloads everything, since notifications were missed.

The matcher is not safe for a writer and readers at once, so every use goes through one
asyncio lock: call `await live.match(brief, top_k)` rather than `live.matcher.match` from a
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from live.listener import Listener
from live.preview import PreviewCache
from live.snapshots import (
    RefitLock,
    SnapshotWriter,
    database_identity,
    file_stamp,
    revision_diff,
    seller_revisions,
)
from matcher import Matcher, Rules
from matcher import snapshot as snapshots
from models import sellers as sellers_repo
from models.types import Brief, Seller

log = logging.getLogger("live.index")



async def load_rules(conn: asyncpg.Connection) -> tuple[int, Rules]:
    """The active rule set, or the built-in defaults (version 0) when none is stored."""
    try:
        from models import rules as rules_repo
    except ImportError:  # the rules repository is not there: built-in defaults
        return 0, Rules()
    active = await rules_repo.get_active(conn)
    if not active:
        return 0, Rules()
    version, body = active
    try:
        return int(version), Rules.from_dict(body)
    except ValueError as exc:  # stored rules are validated on save; never crash on them here
        log.error("active rules version %s are invalid, using defaults: %s", version, exc)
        return 0, Rules()


def _effective_rules(matcher: Matcher) -> Rules:
    # Matcher keeps its `rules` parameter unchanged (None = defaults); scikit-learn style.
    rules = getattr(matcher, "rules_", None) or matcher.rules
    return rules if rules is not None else Rules()


class LiveMatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        coalesce_seconds: float = 0.05,
        refit_seconds: float = 600.0,
        refit_after_changes: int = 2000,
        ping_seconds: float = 5.0,
        snapshot_path: str | os.PathLike[str] | None = None,
        max_snapshot_changes: float = 0.2,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.coalesce_seconds = coalesce_seconds
        self.refit_seconds = refit_seconds
        self.refit_after_changes = refit_after_changes
        self.ping_seconds = ping_seconds
        self.snapshot_path = Path(snapshot_path) if snapshot_path else None
        # Beyond this share of changed sellers a refit is cheaper (and fixes IDF drift).
        self.max_snapshot_changes = max_snapshot_changes
        self._ready = asyncio.Event()
        self.source = ""  # "snapshot" or "fit": where the current index came from
        self.generation = 0  # bumped on every index or rules change (callers' caches key on it)
        self._snapshots = SnapshotWriter(self.snapshot_path) if self.snapshot_path else None
        self._startup: asyncio.Task[None] | None = None
        self._previews = PreviewCache()
        self._matcher: Matcher = Matcher(Rules())
        self._rules_version = 0
        # The sellers in the index, with their names, changed together with it (same lock,
        # same generation): a preview shows names without a database query, and a seller
        # removed from the index has no name here either.
        self._names: dict[int, str] = {}
        self._lock = asyncio.Lock()  # serialises matching, incremental changes and swaps
        self._refit_lock = asyncio.Lock()
        self._pending: set[int] = set()
        self._rules_pending = False
        # While a refit runs, changes are also remembered here and re-applied after the swap.
        self._tracking: set[int] | None = None
        self._tracking_rules = False
        self._wake = asyncio.Event()
        self._changes_since_refit = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._listen = Listener(dsn, self._on_notify, ping_seconds=ping_seconds)
        self.last_applied_at = 0.0
        self.refits = 0
        # The snapshot file the current index is mapped from (or was written as); another
        # process's newer snapshot differs from it.
        self._stamp: tuple[int, int] | None = None
        self.adopted = 0  # snapshots of other processes mapped after start

    # -- public -----------------------------------------------------------------------------

    @property
    def matcher(self) -> Matcher:
        return self._matcher

    @property
    def rules(self) -> Rules:
        return _effective_rules(self._matcher)

    @property
    def rules_version(self) -> int:
        return self._rules_version

    def __len__(self) -> int:
        return len(self._names)

    def seller_name(self, seller_id: int) -> str | None:
        """The name of a seller in the index (None: not in it, e.g. deleted a moment ago)."""
        return self._names.get(seller_id)

    @property
    def ready(self) -> bool:
        """True once an index (snapshot or fit) is loaded: what /health/ready reports."""
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def match(self, brief: Brief, top_k: int = 50) -> list[Any]:
        """Score off the event loop, never at the same time as an index change."""
        await self._ready.wait()
        async with self._lock:
            matcher = self._matcher
            return await asyncio.to_thread(matcher.match, brief, top_k)

    async def _match_generation(self, brief: Brief, top_k: int) -> tuple[int, list[Any]]:
        await self._ready.wait()
        async with self._lock:
            matcher, generation = self._matcher, self.generation
            return generation, await asyncio.to_thread(matcher.match, brief, top_k)

    async def preview(self, brief: Brief, top_k: int) -> list[Any]:
        """`match` for drafts, remembered per index generation (live/preview.py)."""
        return await self._previews.get(brief, top_k, self.generation, self._match_generation)

    @property
    def preview_hits(self) -> int:
        return self._previews.hits

    async def match_versioned(self, brief: Brief, top_k: int) -> tuple[list[Any], Rules, int]:
        """Matches with the rules and rules version that produced them, read together."""
        await self._ready.wait()
        async with self._lock:
            matcher, version = self._matcher, self._rules_version
            matches = await asyncio.to_thread(matcher.match, brief, top_k)
            return matches, _effective_rules(matcher), version

    async def start(self, *, wait: bool = True) -> None:
        """Listen first, then load: a change committed during the load is not missed.

        With `wait=False` the index loads in the background (`ready` tells when; `match` waits
        for it): an API can answer its health probes meanwhile."""
        await self._listen.connect()
        self._startup = asyncio.create_task(self._initial_load(), name="live-index-startup")
        if wait:
            await asyncio.shield(self._startup)

    async def _initial_load(self) -> None:
        backoff = 0.5
        while True:
            try:
                if not await self.load_snapshot():
                    await self.refit()
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("loading the matcher index failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self._ready.set()
        self._tasks = [
            asyncio.create_task(self._apply_loop(), name="live-index-apply"),
            asyncio.create_task(self._listen.supervise(self.refit), name="live-index-listener"),
            asyncio.create_task(self._refit_loop(), name="live-index-refit"),
        ]

    async def stop(self) -> None:
        self._listen.stopping = True
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._startup
        if self._snapshots is not None:
            await self._snapshots.settle(10.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._listen.close()

    async def refit(self) -> None:
        """Reload everything and build a fresh index in a thread; swap it in atomically."""
        async with self._refit_lock:
            self._tracking = set()
            self._tracking_rules = False
            try:
                started = time.perf_counter()
                async with self.pool.acquire() as conn:
                    # One consistent view: the revisions describe exactly the sellers loaded.
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        version, rules = await load_rules(conn)
                        sellers = await sellers_repo.load_all(conn)
                        state = await seller_revisions(conn) if self.snapshot_path else None
                        database = await database_identity(conn) if state is not None else ""
                loaded = time.perf_counter()

                def fit() -> tuple[Matcher, dict[str, np.ndarray] | None]:
                    fresh = Matcher(rules).fit(sellers)
                    arrays = None
                    if state is not None:
                        # Copied now, before the index is shared; written after the swap.
                        arrays = snapshots.to_arrays(
                            fresh.index_,
                            {"sellers": len(sellers), "written_at": time.time(),
                             "database": database},
                            {"ids": state[0], "revisions": state[1]})
                    return fresh, arrays

                fresh, arrays = await asyncio.to_thread(fit)
                async with self._lock:
                    self._matcher = fresh
                    self._rules_version = version
                    self._names = {s.id: s.name for s in sellers}
                    changed, self._tracking = self._tracking, None
                    rules_changed = self._tracking_rules
                    self._changes_since_refit = 0
                    self.generation += 1
                    self.source = "fit"
                self.refits += 1
                log.info(
                    "index fitted: %d sellers, rules v%d, load %.2fs, fit %.2fs",
                    len(sellers),
                    version,
                    loaded - started,
                    time.perf_counter() - loaded,
                )
                if arrays is not None and self._snapshots is not None:
                    self._snapshots.write(arrays)
            finally:
                self._tracking = None
            if changed or rules_changed:
                self._pending |= changed
                self._rules_pending = self._rules_pending or rules_changed
                self._wake.set()
            if arrays is not None and self._snapshots is not None and self._ready.is_set():
                # Serve from the file (shared with the host's other processes) rather than
                # from this process's private copy of the same index.
                await self._snapshots.flush()
                await self.load_snapshot(instead="serving the index just fitted")

    async def flush_snapshot(self) -> None:
        """Wait until the snapshot being written (if any) is on disk."""
        if self._snapshots is not None:
            await self._snapshots.flush()

    async def load_snapshot(self, *, instead: str = "fitting instead") -> bool:
        """Load the persisted index and bring it up to date with the database; False (after
        logging why, and what happens `instead`) when it cannot be used."""
        path = self.snapshot_path
        if path is None:
            return False
        started = time.perf_counter()
        self._tracking = set()
        self._tracking_rules = False
        try:
            stamp = file_stamp(path)
            try:
                index, meta, extra = await asyncio.to_thread(snapshots.load, path)
                old_ids, old_revs = extra["ids"], extra["revisions"]
            except FileNotFoundError:
                log.warning("no index snapshot at %s: %s", path, instead)
                return False
            except (snapshots.SnapshotError, KeyError) as exc:
                log.error("index snapshot unusable (%s): %s", exc, instead)
                return False
            loaded = time.perf_counter()
            async with self.pool.acquire() as conn:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    if meta.get("database") != await database_identity(conn):
                        log.error("index snapshot %s was written for another database:"
                                  " %s", path, instead)
                        return False
                    version, rules = await load_rules(conn)
                    ids, revs = await seller_revisions(conn)
                    changed, gone = revision_diff(old_ids, old_revs, ids, revs)
                    limit = max(16, self.max_snapshot_changes * max(len(ids), len(old_ids)))
                    if len(changed) + len(gone) > limit:
                        log.warning(
                            "index snapshot %s is %d sellers behind the database (limit %d):"
                            " %s", path, len(changed) + len(gone), int(limit), instead)
                        return False
                    found = await sellers_repo.load_many(conn, changed) if changed else []
                    names = await sellers_repo.load_names(conn)
            missing = set(changed) - {s.id for s in found}
            matcher = Matcher(rules)
            matcher.index_ = index

            def apply() -> None:
                for seller in found:
                    matcher.upsert(seller)
                for seller_id in [*gone, *missing]:
                    matcher.remove(seller_id)

            await asyncio.to_thread(apply)
            if len(matcher) != len(ids):  # would be a bug: never serve it silently
                log.error("index snapshot %s gave %d sellers, the database has %d: %s",
                          path, len(matcher), len(ids), instead)
                return False
            async with self._lock:
                self._matcher = matcher
                self._rules_version = version
                self._names = names  # read in the transaction that gave `ids`: the same sellers
                tracked, self._tracking = self._tracking, None
                self._changes_since_refit = len(changed) + len(gone)
                self.generation += 1
                self.source = "snapshot"
                self._stamp = stamp
            self._pending |= tracked or set()
            if self._tracking_rules:
                self._rules_pending = True
            if self._pending or self._rules_pending:
                self._wake.set()
            log.info(
                "index loaded from snapshot %s: %d sellers (%d changed, %d removed since it was"
                " written), rules v%d, read %.2fs, validated and updated %.2fs",
                path, len(ids), len(changed), len(gone) + len(missing), version,
                loaded - started, time.perf_counter() - loaded,
                extra={"snapshot_written_at": meta.get("written_at")},
            )
            return True
        finally:
            self._tracking = None

    # -- notifications ----------------------------------------------------------------------

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == "rules_changed":
            self._rules_pending = True
            if self._tracking is not None:
                self._tracking_rules = True
        else:
            try:
                seller_id = int(payload)
            except ValueError:
                return
            self._pending.add(seller_id)
            if self._tracking is not None:
                self._tracking.add(seller_id)
        self._wake.set()

    async def _apply_loop(self) -> None:
        await self._ready.wait()
        while True:
            await self._wake.wait()
            # Coalesce a burst (an import, a bulk edit) into one reload.
            await asyncio.sleep(self.coalesce_seconds)
            self._wake.clear()
            ids, self._pending = self._pending, set()
            rules_changed, self._rules_pending = self._rules_pending, False
            try:
                await self._apply(ids, rules_changed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying index changes failed; retrying")
                self._pending |= ids
                self._rules_pending = self._rules_pending or rules_changed
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _apply(self, ids: set[int], rules_changed: bool) -> None:
        if not ids and not rules_changed:
            return
        async with self.pool.acquire() as conn:
            rules_state = await load_rules(conn) if rules_changed else None
            found = await sellers_repo.load_many(conn, sorted(ids)) if ids else []
        gone = ids - {s.id for s in found}
        async with self._lock:
            if rules_state is not None:
                version, rules = rules_state
                self._matcher = self._matcher.with_rules(rules)
                self._rules_version = version
                log.info("rules v%d applied", version)
            if found or gone:
                await asyncio.to_thread(self._apply_sync, found, gone)
            self.generation += 1
        self._changes_since_refit += len(ids)
        self.last_applied_at = time.time()

    def _apply_sync(self, found: list[Seller], gone: set[int]) -> None:
        matcher = self._matcher
        for seller in found:
            if seller.id in self._names:
                matcher.update(seller)
            else:
                matcher.add(seller)
            self._names[seller.id] = seller.name
        for seller_id in gone:
            if self._names.pop(seller_id, None) is not None:
                matcher.remove(seller_id)

    # -- listener connection ----------------------------------------------------------------

    @property
    def _listener(self) -> asyncpg.Connection | None:
        """The LISTEN connection (tests read its server pid to kill it)."""
        return self._listen.connection

    def _newer_snapshot(self) -> bool:
        """Another process sharing the snapshot path wrote a new one since ours."""
        if self.snapshot_path is None:
            return False
        stamp = file_stamp(self.snapshot_path)
        return stamp is not None and stamp != self._stamp

    async def _adopt(self) -> None:
        """Map the snapshot another process of this host wrote (catching up from the database)."""
        if await self.load_snapshot(instead="keeping the current index"):
            self.adopted += 1
        else:  # unusable (another code version, corrupt): remember it, do not retry each second
            self._stamp = file_stamp(self.snapshot_path) if self.snapshot_path else None

    async def _refit_loop(self) -> None:
        last = time.monotonic()
        lock = RefitLock(self.snapshot_path) if self.snapshot_path is not None else None
        while True:
            await asyncio.sleep(1.0)
            try:
                if self._newer_snapshot():
                    await self._adopt()
                    last = time.monotonic()
                    continue
                due = time.monotonic() - last >= self.refit_seconds
                if not due and self._changes_since_refit < self.refit_after_changes:
                    continue
                if lock is None:
                    await self.refit()
                elif lock.acquire():
                    try:
                        # The holder before us may have just written one: map it instead.
                        if self._newer_snapshot():
                            await self._adopt()
                        else:
                            await self.refit()
                    finally:
                        lock.release()
                else:
                    continue  # another process refits; its snapshot will be mapped here
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background refit failed; keeping the current index")
            last = time.monotonic()
