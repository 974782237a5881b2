"""Real receivers for the worker tests: an aiohttp webhook sink and an aiosmtpd SMTP server,
both counting what they receive per idempotency key; a worker running in-process."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from config.settings import Settings, WorkerConfig
from models import briefs as briefs_repo
from models import outbox as outbox_repo
from models import preferences as prefs_repo
from models import sellers as sellers_repo
from models.types import Brief
from workers.delivery import verify_signature
from workers.main import run_worker

SECRET_KEY = "test-signing-key"

# The brief the live-index tests match: sellers made to fit it rise to the top.
KUBERNETES_BRIEF = Brief(
    id=1,
    title="Kubernetes platform engineering",
    summary="Run our Kubernetes clusters and CI pipelines",
    category="digital-outcomes",
    essential_skills=["kubernetes"],
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """A webhook receiver. `behaviour(key, n)` returns a status (n = this key's try number) or
    a number of seconds to hang; default 200."""

    secrets: dict[int, str] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)  # 2xx answers per key
    timed_out: Counter[str] = field(default_factory=Counter)
    bad_signatures: list[str] = field(default_factory=list)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    behaviour: Callable[[str, int], int | float] | None = None
    first_at: float | None = None
    port: int = 0
    in_flight: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def idle(self) -> bool:
        return self.in_flight == 0

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        self.hits[key] += 1
        data = orjson.loads(body)
        secret = self.secrets.get(int(data["seller_id"]), "")
        if not verify_signature(secret, request.headers.get("X-Marketplace-Signature", ""), body):
            self.bad_signatures.append(key)
        action: int | float = 200
        if self.behaviour is not None:
            action = self.behaviour(key, self.hits[key])
        if isinstance(action, float):
            try:
                await asyncio.sleep(action)
            except asyncio.CancelledError:  # the sender gave up and closed the connection
                self.timed_out[key] += 1
                raise
            if request.transport is None or request.transport.is_closing():
                # The sender gave up (timeout): our answer never reaches it, so it retries with
                # the same key, and a receiver that dedupes by key does the work once.
                self.timed_out[key] += 1
                return web.Response(status=499)
            action = 200
            if request.transport is None or request.transport.is_closing():
                # The sender gave up (timeout): our answer never reaches it, so it retries with
                # the same key, and a receiver that dedupes by key does the work once.
                self.timed_out[key] += 1
                return web.Response(status=499)
        if 200 <= action < 300:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            self.delivered[key] += 1
            self.bodies[key] = data
        return web.json_response({"ok": action < 300}, status=action)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()
    app.router.add_post("/hook", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    s.port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", s.port)
    await site.start()
    try:
        yield s
    finally:
        await runner.cleanup()


class MailBox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.by_alert: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        for alert_id in (msg.get("X-Alert-Ids") or "").split(","):
            if alert_id:
                self.by_alert[alert_id] += 1
        return "250 OK"


@dataclass
class Smtp:
    box: MailBox
    port: int
    controller: Controller

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()

    def start(self) -> None:
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def smtp() -> Any:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    server = Smtp(box, port, controller)
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.controller.stop()


def worker_config(**overrides: Any) -> WorkerConfig:
    base: dict[str, Any] = {
        "lock_seconds": 3.0,
        "relay_every_seconds": 1,
        "outbox_grace_seconds": 1.0,
        "backoff_base": 0.3,
        "backoff_max": 2.0,
        "max_attempts": 4,
        "http_timeout": 2.0,
        "smtp_timeout": 3.0,
        "shutdown_grace_seconds": 5,
    }
    base.update(overrides)
    return WorkerConfig(**base)


def settings_for(servers: Any, smtp_url: str | None) -> Settings:
    return Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        smtp_url=smtp_url,
        webhook_allow_private=True,
        secret_key=SECRET_KEY,
        public_url="http://marketplace.test",
    )


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, config: WorkerConfig | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """A real arq worker in this process (its own pool, listener, HTTP session)."""
    task = asyncio.create_task(
        run_worker(settings, config=config or worker_config(), handle_signals=False)
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, every: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {within}s")


SELLER_TEXT = (
    "We build Python data pipelines and APIs on AWS with PostgreSQL for government departments"
)


async def make_seller(
    conn: asyncpg.Connection, name: str, prefs: dict[str, Any] | None, **fields: Any
) -> int:
    data: dict[str, Any] = {
        "name": name,
        "summary": SELLER_TEXT,
        "categories": ["digital-outcomes"],
        "skills": ["python", "postgresql", "aws"],
        "locations": ["London"],
    }
    data.update(fields)
    row = await sellers_repo.create(conn, data)
    if prefs is not None:
        await prefs_repo.upsert(conn, row["id"], prefs)
    return int(row["id"])


BRIEF = {
    "title": "Python data pipeline on AWS",
    "summary": "Build data pipelines in Python with PostgreSQL",
    "category": "digital-outcomes",
    "location": "London",
    "organisation": "Department for Tests",
    "essential_skills": ["python", "postgresql"],
}


async def publish_brief(conn: asyncpg.Connection, **fields: Any) -> tuple[int, int]:
    """As the API publishes: brief published, audit and outbox row in one transaction."""
    async with conn.transaction():
        row = await briefs_repo.create(conn, {**BRIEF, **fields}, buyer_account_id=None)
        await briefs_repo.publish(conn, row["id"])
        outbox_id = await outbox_repo.add(conn, "match_brief", [row["id"]])
    return int(row["id"]), outbox_id
