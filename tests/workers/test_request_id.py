"""The publishing request's id follows a brief: outbox row -> match job -> alerts -> delivery
log lines (structured JSON, as config.logs writes them). Old outbox rows without it work."""

from __future__ import annotations

import logging

import asyncpg
import orjson

from config.logs import JsonFormatter
from models import briefs as briefs_repo
from models import outbox as outbox_repo
from tests.workers.conftest import (
    BRIEF,
    Sink,
    make_seller,
    running_worker,
    settings_for,
    wait_for,
)


class _Lines(logging.Handler):
    """Formats at emit time, as the real handler does (the request id may be a contextvar)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


async def _publish(conn: asyncpg.Connection, args_extra: list[str]) -> int:
    async with conn.transaction():
        row = await briefs_repo.create(conn, BRIEF, buyer_account_id=None)
        await briefs_repo.publish(conn, row["id"])
        await outbox_repo.add(conn, "match_brief", [row["id"], *args_extra])
    return int(row["id"])


async def test_request_id_from_publish_to_delivery(clean_db, pool: asyncpg.Pool,
                                                   sink: Sink) -> None:
    handler = _Lines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with pool.acquire() as conn:
            await make_seller(conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url})
            with_id = await _publish(conn, ["req-abc123"])
            old_style = await _publish(conn, [])  # an outbox row written before request ids
        # No queue job was enqueued: the relay cron picks both rows up, args as stored.
        async with running_worker(settings_for(clean_db, None)):

            async def delivered() -> bool:
                return sum(sink.delivered.values()) == 2

            await wait_for(delivered, within=20)

            def has(msg: str, brief_id: int) -> list[dict[str, object]]:
                return [x for x in handler.lines
                        if str(x["msg"]).startswith(msg) and x.get("brief_id") == brief_id]

            async def logged() -> bool:
                return bool(has("alerts delivered", with_id) and has("alerts delivered", old_style))

            await wait_for(logged, within=5)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    matched = has("brief matched", with_id)
    assert matched and all(x.get("request_id") == "req-abc123" for x in matched)
    sent = has("alerts delivered", with_id)
    assert sent and all(x.get("request_id") == "req-abc123" for x in sent)
    assert all("request_id" not in x for x in has("brief matched", old_style))
    assert all("request_id" not in x for x in has("alerts delivered", old_style))
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT request_id FROM alerts WHERE brief_id = $1", with_id)
    assert stored == "req-abc123"
