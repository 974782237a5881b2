"""Saving a seller's alert preferences (and what they may hold) and re-driving a failed alert,
for the API and the web pages alike."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import Field

from api.errors import Conflict, NotFound
from api.keys import QUEUE, SETTINGS
from api.netguard import UnsafeUrl, check_webhook_target
from api.validation import Body, Categories, Email, Money, Tags, Url
from models import alerts, audit, preferences

log = logging.getLogger("api.alerts")
Secret = Field(None, min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$")


class PreferencesIn(Body):
    """The whole set of preferences (a PUT replaces them). `webhook_secret` omitted keeps the
    stored one: it is never shown again after it is set."""

    frequency: Literal["instant", "daily", "off"]
    email: Email | None = None
    webhook_url: Url | None = None
    webhook_secret: str | None = Secret
    categories: Categories = Field(default_factory=list)
    locations: Tags = Field(default_factory=list)
    keywords: Tags = Field(default_factory=list)
    exclude_keywords: Tags = Field(default_factory=list)
    min_score: float = Field(0.0, ge=0, le=1)
    min_budget: Money | None = None
    min_day_rate: Money | None = None
    paused: bool = False


async def webhook_problem(app: web.Application, url: str) -> str:
    """Why `url` cannot receive alerts ("" when it can): no private or loopback targets unless
    allowed. Checked at save time (a clear error now) and again by the worker at send time."""
    try:
        await check_webhook_target(url, allow_private=app[SETTINGS].webhook_allow_private)
    except UnsafeUrl as exc:
        return str(exc)
    return ""


async def save_preferences(
    conn: asyncpg.Connection, seller_id: int, actor_id: int, fields: dict[str, Any]
) -> asyncpg.Record:
    """Store a seller's preferences (`fields` without `webhook_secret` keeps the stored one)
    and record who changed what."""
    row = await preferences.upsert(conn, seller_id, fields)
    await audit.record(
        conn, actor_id=actor_id, action="preferences.updated", entity="seller",
        entity_id=seller_id,
        data={
            "frequency": fields.get("frequency"),
            "paused": bool(fields.get("paused")),
            "fields": sorted(k for k in fields if k != "webhook_secret"),
        },
    )
    return row


async def redrive(conn: asyncpg.Connection, alert_id: int, actor_id: int) -> asyncpg.Record:
    """Make a failed alert pending and due now. NotFound: no such alert; Conflict: it is not
    failed. The caller asks a worker to deliver after the commit (`kick_delivery`)."""
    row = await alerts.get(conn, alert_id)
    if row is None:
        raise NotFound("no such alert")
    if not await alerts.redrive(conn, alert_id):
        raise Conflict(f"only a failed alert can be re-driven; this one is {row['status']}")
    await audit.record(
        conn, actor_id=actor_id, action="alert.redriven", entity="alert", entity_id=alert_id,
    )
    return await alerts.get(conn, alert_id) or row


async def kick_delivery(app: web.Application) -> None:
    """Ask a worker to deliver due alerts now (after a re-drive, an invitation, an award)
    rather than wait for the relay's next tick (best effort: the relay still picks them up if
    the queue is unreachable)."""
    redis = app[QUEUE].redis
    if redis is None:
        return
    try:
        await asyncio.wait_for(redis.enqueue_job("deliver_alerts"), 2.0)
    except Exception as exc:
        log.warning("could not enqueue delivery (the relay will): %s", exc)
