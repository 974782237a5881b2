"""What a worker's delivery jobs share: the budget of claimed alerts and the batched write-back
of their results. Its own module so that the worker context (which creates them) and the jobs
(which use them) do not import each other."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from models import alerts as alerts_repo
from workers import filters
from workers.delivery import DeliveryError

log = logging.getLogger("workers.jobs")


class ClaimBudget:
    """Bounds the alerts a worker has claimed but not finished (across all its delivery jobs)
    to about two rounds of its concurrency. A claimed alert must be sent long before its lock
    expires, or another worker would take it as abandoned and send it a second time; claiming
    only what can be sent at once keeps that wait short whatever the number of jobs."""

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


class Outcomes:
    """Delivery results written back in small batches (every ~50 ms): few round trips at
    thousands of alerts per second, and a crash can only resend what was in flight or in the
    last unflushed instant."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.ctx = ctx
        self.sent: list[int] = []
        self.failures: list[tuple[int, str, float | None]] = []
        self.counts = {"sent": 0, "retry": 0, "failed": 0}
        self._lock = asyncio.Lock()

    def ok(self, alert_id: int) -> None:
        self.sent.append(alert_id)

    def fail(self, alert: Mapping[str, Any], error: DeliveryError) -> None:
        config = self.ctx["config"]
        attempts = int(alert["attempts"])
        if error.permanent or attempts >= config.max_attempts:
            delay = None
        else:
            delay = filters.retry_delay(attempts, config.backoff_base, config.backoff_max)
        self.failures.append((int(alert["id"]), str(error), delay))

    async def flush(self) -> None:
        async with self._lock:
            sent, self.sent = self.sent, []
            failures, self.failures = self.failures, []
            if not sent and not failures:
                return
            try:
                async with self.ctx["pool"].acquire() as conn, conn.transaction():
                    await alerts_repo.mark_sent(conn, sent)
                    failed = await alerts_repo.mark_failures(conn, failures)
            except BaseException:
                # Keep them for the next flush; if this process dies, the locks expire and the
                # alerts are sent again with the same idempotency key.
                self.sent = sent + self.sent
                self.failures = failures + self.failures
                raise
            self.counts["sent"] += len(sent)
            self.counts["failed"] += len(failed)
            self.counts["retry"] += len(failures) - len(failed)
            for alert_id, error, _ in failures:
                if alert_id in failed:
                    log.warning("alert failed for good: %s", error, extra={"alert_id": alert_id})

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording delivery results failed; retrying")
                await asyncio.sleep(1.0)
