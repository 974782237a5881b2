"""One typed settings object, read once from the environment (prefix MARKETPLACE_)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


MAX_API_PROCESSES = 64
DEFAULT_OCDS_PREFIX = "ocds-mktplc"


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


def _ocds_prefix(value: str | None) -> str:
    """An ocid prefix: letters, digits and hyphens (it starts every ocid, e.g. ocds-213czf)."""
    if value is None:
        return DEFAULT_OCDS_PREFIX
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", value):
        raise SystemExit(f"MARKETPLACE_OCDS_PREFIX must be letters, digits and hyphens (such as"
                         f" ocds-213czf), not {value!r}")
    return value


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
    # The ocid prefix of the open data (/open-data/ocds.json): register one with the Open
    # Contracting Partnership ("ocds-" and six characters) before publishing for real.
    ocds_prefix: str = DEFAULT_OCDS_PREFIX

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)

        def get(name: str) -> str | None:
            value = e.get(f"MARKETPLACE_{name}")
            return value if value not in (None, "") else None

        port_text = get("PORT")
        try:
            port = int(port_text) if port_text else 8080
        except ValueError as exc:
            raise SystemExit(f"MARKETPLACE_PORT must be a number, not {port_text!r}") from exc
        return cls(
            api_processes=parse_processes(get("API_PROCESSES"), "MARKETPLACE_API_PROCESSES"),
            database_url=get("DATABASE_URL"),
            redis_url=get("REDIS_URL"),
            admin_token=get("ADMIN_TOKEN"),
            smtp_url=get("SMTP_URL"),
            data_dir=Path(get("DATA_DIR") or ".marketplace"),
            host=get("HOST") or "127.0.0.1",
            port=port,
            webhook_allow_private=_bool(get("WEBHOOK_ALLOW_PRIVATE")),
            public_url=get("PUBLIC_URL"),
            secret_key=get("SECRET_KEY"),
            ocds_prefix=_ocds_prefix(get("OCDS_PREFIX")),
        )

    def with_urls(self, database_url: str, redis_url: str) -> Settings:
        return replace(self, database_url=database_url, redis_url=redis_url)

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
