"""What a worker's delivery jobs share: the budget of claimed alerts, the leases on the alerts
they hold, and the write-back of their results. Its own module so that the worker context
(which creates them) and the jobs (which use them) do not import each other."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from models import alerts as alerts_repo
from workers import filters
from workers.delivery import DeliveryError

log = logging.getLogger("workers.jobs")


class ClaimBudget:
    """Bounds the alerts a worker has claimed but not finished (across all its delivery jobs)
    to about two rounds of its concurrency: claiming only what can be sent soon keeps alerts
    from waiting in one worker while another is idle."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.used = 0
        self._cond = asyncio.Condition()

    async def reserve(self, want: int, wait: float = 1.0) -> int:
        """Up to `want` slots; 0 after `wait` seconds without any (the caller re-checks)."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.used < self.limit), wait)
            except TimeoutError:
                return 0
            n = min(want, self.limit - self.used)
            self.used += n
            return n

    async def release(self, n: int = 1) -> None:
        if n <= 0:
            return
        async with self._cond:
            self.used -= n
            self._cond.notify_all()


class Leases:
    """The alerts this worker holds (claimed, their result not yet recorded). A heartbeat renews
    their lease every lock_seconds / 4, so a send may take longer than the lease while a
    killed worker's alerts are due again within lock_seconds of its last beat."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx
        self.held: set[int] = set()

    def hold(self, ids: Iterable[int]) -> None:
        self.held.update(ids)

    def drop(self, ids: Iterable[int]) -> None:
        self.held.difference_update(ids)

    async def renew(self) -> None:
        ids = list(self.held)
        if ids:
            async with self.ctx["pool"].acquire() as conn:
                await alerts_repo.renew(conn, ids, lock_seconds=self.ctx["config"].lock_seconds)

    async def run(self) -> None:
        every = max(0.05, self.ctx["config"].lock_seconds / 4)
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing alert leases failed; retrying")


def leases_of(ctx: dict[str, Any]) -> Leases:
    """The worker's leases (created on first use by a ctx without the worker's resources)."""
    leases: Leases | None = ctx.get("leases")
    if leases is None:
        leases = ctx["leases"] = Leases(ctx)
    return leases


class Outcomes:
    """Delivery results, each recorded as soon as it is known: a sender keeps its concurrency
    slot until its result is committed (`recorded`), so a worker killed at any moment can only
    have sent again what it had in flight, at most its concurrency. Results that arrive while
    a write is under way go out together in the next one (one round trip for many alerts at
    thousands per second)."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx
        self.sent: list[int] = []
        self.failures: list[tuple[int, str, float | None]] = []
        self.counts = {"sent": 0, "retry": 0, "failed": 0}
        self._lock = asyncio.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._running = False

    def ok(self, alert_id: int) -> None:
        self.sent.append(alert_id)
        self._wake.set()

    def fail(self, alert: Mapping[str, Any], error: DeliveryError) -> None:
        config = self.ctx["config"]
        attempts = int(alert["attempts"])
        if error.permanent or attempts >= config.max_attempts:
            delay = None
        else:
            delay = filters.retry_delay(attempts, config.backoff_base, config.backoff_max)
        self.failures.append((int(alert["id"]), str(error), delay))
        self._wake.set()

    async def recorded(self) -> None:
        """Wait until every result reported so far is committed."""
        if not self._running:  # no writer task (one-off use): write now
            await self.flush()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        await waiter

    async def flush(self) -> None:
        async with self._lock:
            sent, self.sent = self.sent, []
            failures, self.failures = self.failures, []
            waiters, self._waiters = self._waiters, []
            if sent or failures:
                try:
                    async with self.ctx["pool"].acquire() as conn, conn.transaction():
                        await alerts_repo.mark_sent(conn, sent)
                        failed = await alerts_repo.mark_failures(conn, failures)
                except BaseException:
                    # Kept for the next write; if this process dies, the leases run out and
                    # the alerts are sent again with the same idempotency key.
                    self.sent = sent + self.sent
                    self.failures = failures + self.failures
                    self._waiters = waiters + self._waiters
                    raise
                leases = leases_of(self.ctx)
                leases.drop(sent)
                leases.drop(f[0] for f in failures)
                self.counts["sent"] += len(sent)
                self.counts["failed"] += len(failed)
                self.counts["retry"] += len(failures) - len(failed)
                for alert_id, error, _ in failures:
                    if alert_id in failed:
                        log.warning(
                            "alert failed for good: %s", error, extra={"alert_id": alert_id}
                        )
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    await self.flush()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("recording delivery results failed; retrying")
                    await asyncio.sleep(1.0)
                    self._wake.set()
        finally:
            self._running = False
