"""Worker tuning knobs. Defaults suit production; tests and benchmarks override them through
MARKETPLACE_WORKER_<NAME> environment variables (e.g. a short lock so that a killed worker's
alerts are due again quickly) or by passing a WorkerConfig."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    batch_size: int = 500  # alerts claimed per round trip
    concurrency: int = 128  # requests in flight per worker process
    # Lease on a claimed alert, renewed by the worker's heartbeat every lock_seconds / 4 while
    # it holds the alert: a killed worker's alerts are due again this long after its last beat.
    lock_seconds: float = 8.0
    max_attempts: int = 8  # after the last one the alert is failed
    backoff_base: float = 2.0  # seconds; attempt n waits base * 2**(n-1), with full jitter
    backoff_max: float = 3600.0
    http_timeout: float = 10.0  # whole webhook request
    connect_timeout: float = 5.0
    max_response_bytes: int = 65536  # we read (and ignore) at most this much of a response
    smtp_timeout: float = 15.0
    mail_from: str = "Marketplace alerts <alerts@marketplace.invalid>"
    relay_every_seconds: int = 5  # cron period of the outbox relay (divides 60)
    outbox_grace_seconds: float = 10.0  # an outbox row undone this long is re-enqueued
    digest_interval_seconds: float = 23 * 3600.0  # at most one digest per seller per day
    deliver_jobs_per_brief: int = 4  # parallel delivery jobs a large fan-out starts
    # 'batch' (ours) or 'per_alert': one arq job per alert, the naive fan-out that
    # bench/fanout.py measures beside ours.
    fanout: str = "batch"
    refit_seconds: float = 600.0  # full background refit of the index (IDF drift)
    refit_after_changes: int = 2000  # ...or after this many incremental changes
    shutdown_grace_seconds: int = 20  # SIGTERM: finish in-flight jobs this long, then hand back
    job_timeout: int = 300
    max_jobs: int = 16

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = e.get(f"MARKETPLACE_WORKER_{f.name.upper()}")
            if raw in (None, ""):
                continue
            kind = type(getattr(cls(), f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise SystemExit(f"MARKETPLACE_WORKER_{f.name.upper()}: {exc}") from exc
        return replace(cls(**values), **overrides)
