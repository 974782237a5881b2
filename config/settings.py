"""Every setting, read once from the environment: the only module that reads it.

`Environment` (pydantic-settings) declares each `MARKETPLACE_*` variable with its default and
meaning; the typed values the code passes around are built from it: `Settings` (the service),
`WorkerConfig` (worker tuning) and `LimitSettings` (the API's rate limit and deadlines). An
empty variable counts as unset. A bad value stops the process with a message naming the
variable (`SystemExit`), before anything starts.

`tests/test_layers.py` checks that every field here has a row in README.md's settings table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "MARKETPLACE_"
WORKER_PREFIX = f"{PREFIX}WORKER_"
MAX_API_PROCESSES = 64


def parse_processes(value: str | None, name: str) -> int:
    """A process count: a number from 1 to 64, or `auto` (one per CPU core)."""
    if value is None or value == "":
        return 1
    if value.strip().lower() == "auto":
        return max(1, min(MAX_API_PROCESSES, os.cpu_count() or 1))
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_API_PROCESSES:
        raise SystemExit(f"{name} must be a number from 1 to {MAX_API_PROCESSES} or 'auto',"
                         f" not {value!r}")
    return count


def parse_rate_limit(raw: str | None) -> tuple[int, float] | None:
    """"<requests>/<seconds>" as (requests, seconds); (0, 60) for "off"; None when unset."""
    text = (raw or "").strip().lower()
    if not text:
        return None
    if text in ("off", "0", "none"):
        return 0, 60.0
    try:
        n, _, per = text.partition("/")
        requests, seconds = int(n), float(per or 1)
        if requests < 0 or seconds <= 0:
            raise ValueError("must be positive")
    except ValueError as exc:
        raise ValueError(f"must look like 600/60 or off, not {text!r}") from exc
    return requests, seconds


class Environment(BaseSettings):
    """The `MARKETPLACE_*` variables (name = PREFIX + field name in upper case)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; unset: the embedded PostgreSQL under DATA_DIR")
    redis_url: str | None = Field(
        default=None,
        description="Redis/Valkey URL; unset: the embedded Valkey under DATA_DIR")
    admin_token: str | None = Field(
        default=None, description="bootstrap admin bearer token (registered at start)")
    smtp_url: str | None = Field(
        default=None,
        description="smtp://user:pass@host:port for e-mail alerts; unset: e-mails are logged, "
                    "not sent")
    data_dir: Path = Field(
        default=Path(".marketplace"),
        description="embedded servers' data, the index snapshot and the generated secret key")
    host: str = Field(default="127.0.0.1", description="address the API listens on")
    port: int = Field(default=8080, description="port the API listens on")
    api_processes: str | None = Field(
        default=None,
        description="API processes behind the port: 1 to 64, or `auto` (one per core); "
                    "unset: 1")
    webhook_allow_private: bool = Field(
        default=False,
        description="deliver webhooks to loopback/private addresses (tests and local demos "
                    "only)")
    public_url: str | None = Field(
        default=None, description="base URL in e-mail links; unset: http://HOST:PORT")
    secret_key: str | None = Field(
        default=None,
        description="signs unsubscribe links; unset: generated once into DATA_DIR")
    rate_limit: str | None = Field(
        default=None,
        description="requests per token (or address without one): `<requests>/<seconds>` or "
                    "`off`; unset: 3000/60")
    request_timeout: float = Field(
        default=30.0, gt=0, description="seconds a request may take before it is answered 503")
    body_timeout: float = Field(
        default=10.0, gt=0, description="seconds to receive a request body before 408")
    ocds_prefix: str = Field(
        default="ocds-mktplc", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$",
        description="the ocid prefix of /open-data/ocds.json (letters, digits, hyphens); "
                    "register one with the Open Contracting Partnership before publishing")
    verbose: bool = Field(default=False, description="debug-level logs")
    worker_burst: bool = Field(
        default=False,
        description="`python -m workers.main` only: run the queued jobs, then exit")

    @field_validator("api_processes")
    @classmethod
    def _processes(cls, value: str | None) -> str | None:
        try:
            parse_processes(value, "MARKETPLACE_API_PROCESSES")
        except SystemExit as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        parse_rate_limit(value)
        return value

    @field_validator("verbose", "worker_burst", "webhook_allow_private", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        # Any text but a true word is false, as a shell user expects of `VAR=0` or `VAR=no`.
        if isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return value


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Worker tuning knobs. Defaults suit production; tests and benchmarks override them
    through MARKETPLACE_WORKER_<NAME> variables (e.g. a short lock so that a killed worker's
    alerts are due again quickly) or by passing a WorkerConfig."""

    batch_size: int = 500  # alerts claimed per round trip
    concurrency: int = 128  # requests in flight per worker process
    lock_seconds: float = 120.0  # a claimed alert is due again when its worker died this long ago
    max_attempts: int = 8  # after the last one the alert is failed
    backoff_base: float = 2.0  # seconds; attempt n waits base * 2**(n-1), with full jitter
    backoff_max: float = 3600.0  # seconds; the longest wait between two attempts
    http_timeout: float = 10.0  # whole webhook request
    connect_timeout: float = 5.0  # seconds to connect to a webhook receiver
    max_response_bytes: int = 65536  # we read (and ignore) at most this much of a response
    smtp_timeout: float = 15.0  # seconds for one e-mail to the SMTP server
    mail_from: str = "Marketplace alerts <alerts@marketplace.invalid>"  # alert e-mails' From
    relay_every_seconds: int = 5  # cron period of the outbox relay (divides 60)
    outbox_grace_seconds: float = 10.0  # an outbox row undone this long is re-enqueued
    digest_interval_seconds: float = 23 * 3600.0  # at most one digest per seller per day
    deliver_jobs_per_brief: int = 4  # parallel delivery jobs a large fan-out starts
    refit_seconds: float = 600.0  # full background refit of the index (IDF drift)
    refit_after_changes: int = 2000  # ...or after this many incremental changes
    shutdown_grace_seconds: int = 20  # SIGTERM: finish in-flight jobs this long, then hand back
    job_timeout: int = 300  # seconds an arq job may run before it is cancelled
    max_jobs: int = 16  # arq jobs one worker process runs at once

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = e.get(f"{WORKER_PREFIX}{f.name.upper()}")
            if raw in (None, ""):
                continue
            kind = type(getattr(cls(), f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise SystemExit(f"{WORKER_PREFIX}{f.name.upper()}: {exc}") from exc
        return replace(cls(**values), **overrides)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    rate_requests: int = 3000  # 0: no rate limit
    rate_seconds: float = 60.0
    request_timeout: float = 30.0
    body_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None  # None: the embedded PostgreSQL under data_dir
    redis_url: str | None = None  # None: the embedded Valkey under data_dir
    admin_token: str | None = None  # bootstrap admin bearer token
    smtp_url: str | None = None  # smtp://user:pass@host:port ; None: e-mail alerts are logged
    data_dir: Path = field(default_factory=lambda: Path(".marketplace"))
    host: str = "127.0.0.1"
    port: int = 8080
    webhook_allow_private: bool = False
    public_url: str | None = None  # base URL used in e-mail links; defaults to http://host:port
    secret_key: str | None = None  # signs unsubscribe links; derived from data_dir when unset
    api_processes: int = 1  # API processes behind the port, each with its own index
    ocds_prefix: str = "ocds-mktplc"  # the ocid prefix of the open data

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = read_environment(env)
        return cls(
            api_processes=parse_processes(e.api_processes, "MARKETPLACE_API_PROCESSES"),
            database_url=e.database_url,
            redis_url=e.redis_url,
            admin_token=e.admin_token,
            smtp_url=e.smtp_url,
            data_dir=e.data_dir,
            host=e.host,
            port=e.port,
            webhook_allow_private=e.webhook_allow_private,
            public_url=e.public_url,
            secret_key=e.secret_key,
            ocds_prefix=e.ocds_prefix,
        )

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def read_environment(env: Mapping[str, str] | None = None) -> Environment:
    """The process environment (or `env`, for tests) as an `Environment`; exit on bad values."""
    try:
        if env is None:
            return Environment()
        # model_validate reads only the mapping given, never os.environ.
        given = {k[len(PREFIX):].lower(): v for k, v in env.items()
                 if k.startswith(PREFIX) and v != ""}
        return Environment.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors())
        raise SystemExit(problems) from None


def limit_settings(env: Mapping[str, str] | None = None) -> LimitSettings:
    e = read_environment(env)
    rate = parse_rate_limit(e.rate_limit)
    base = LimitSettings()
    requests, seconds = rate if rate is not None else (base.rate_requests, base.rate_seconds)
    return LimitSettings(rate_requests=requests, rate_seconds=seconds,
                         request_timeout=e.request_timeout, body_timeout=e.body_timeout)
