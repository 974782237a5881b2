"""A matcher index kept current with the database, for every process that matches.

Start-up loads every seller and the active rules and fits the index in a thread (the event
loop keeps serving). A dedicated connection LISTENs on 'seller_changed' (payload: seller id)
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
import time
from typing import Any

import asyncpg

from matcher import Matcher, Rules
from models import sellers as sellers_repo
from models.types import Brief, Seller

log = logging.getLogger("workers.live_index")

CHANNELS = ("seller_changed", "rules_changed")


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
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.coalesce_seconds = coalesce_seconds
        self.refit_seconds = refit_seconds
        self.refit_after_changes = refit_after_changes
        self.ping_seconds = ping_seconds
        self._matcher: Matcher = Matcher(Rules())
        self._rules_version = 0
        self._ids: set[int] = set()
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
        self._listener: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._stopping = False
        self.last_applied_at = 0.0
        self.refits = 0

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
        return len(self._ids)

    async def match(self, brief: Brief, top_k: int = 50) -> list[Any]:
        """Score off the event loop, never at the same time as an index change."""
        async with self._lock:
            matcher = self._matcher
            return await asyncio.to_thread(matcher.match, brief, top_k)

    async def match_versioned(self, brief: Brief, top_k: int) -> tuple[list[Any], Rules, int]:
        """Matches with the rules and rules version that produced them, read together."""
        async with self._lock:
            matcher, version = self._matcher, self._rules_version
            matches = await asyncio.to_thread(matcher.match, brief, top_k)
            return matches, _effective_rules(matcher), version

    async def start(self) -> None:
        """Listen first, then load: a change committed during the load is not missed."""
        await self._connect_listener()
        await self.refit()
        self._tasks = [
            asyncio.create_task(self._apply_loop(), name="live-index-apply"),
            asyncio.create_task(self._supervise_listener(), name="live-index-listener"),
            asyncio.create_task(self._refit_loop(), name="live-index-refit"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._close_listener()

    async def refit(self) -> None:
        """Reload everything and build a fresh index in a thread; swap it in atomically."""
        async with self._refit_lock:
            self._tracking = set()
            self._tracking_rules = False
            try:
                async with self.pool.acquire() as conn:
                    version, rules = await load_rules(conn)
                    sellers = await sellers_repo.load_all(conn)
                started = time.perf_counter()
                fresh = await asyncio.to_thread(lambda: Matcher(rules).fit(sellers))
                async with self._lock:
                    self._matcher = fresh
                    self._rules_version = version
                    self._ids = {s.id for s in sellers}
                    changed, self._tracking = self._tracking, None
                    rules_changed = self._tracking_rules
                    self._changes_since_refit = 0
                self.refits += 1
                log.info(
                    "index fitted: %d sellers, rules v%d, %.2fs",
                    len(sellers),
                    version,
                    time.perf_counter() - started,
                )
            finally:
                self._tracking = None
            if changed or rules_changed:
                self._pending |= changed
                self._rules_pending = self._rules_pending or rules_changed
                self._wake.set()

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
        self._changes_since_refit += len(ids)
        self.last_applied_at = time.time()

    def _apply_sync(self, found: list[Seller], gone: set[int]) -> None:
        matcher = self._matcher
        for seller in found:
            if seller.id in self._ids:
                matcher.update(seller)
            else:
                matcher.add(seller)
                self._ids.add(seller.id)
        for seller_id in gone:
            if seller_id in self._ids:
                matcher.remove(seller_id)
                self._ids.discard(seller_id)

    # -- listener connection ----------------------------------------------------------------

    async def _connect_listener(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        for channel in CHANNELS:
            await conn.add_listener(channel, self._on_notify)
        self._listener = conn
        self._lost = lost
        self._connected.set()

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        self._connected.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def _supervise_listener(self) -> None:
        """Keep the LISTEN connection alive; after a reconnect, reload everything."""
        backoff = 0.5
        while not self._stopping:
            conn = self._listener
            healthy = conn is not None and not conn.is_closed()
            if healthy:
                assert conn is not None
                try:
                    await asyncio.wait_for(self._lost.wait(), self.ping_seconds)
                    healthy = False
                except TimeoutError:
                    try:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self.ping_seconds)
                    except (asyncpg.PostgresError, OSError, TimeoutError):
                        healthy = False
                if healthy:
                    continue
            log.warning("index listener connection lost; reconnecting")
            await self._close_listener()
            try:
                await self._connect_listener()
                await self.refit()
                backoff = 0.5
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning("index listener reconnect failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _refit_loop(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            due = time.monotonic() - last >= self.refit_seconds
            if due or self._changes_since_refit >= self.refit_after_changes:
                try:
                    await self.refit()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background refit failed; keeping the current index")
                last = time.monotonic()
