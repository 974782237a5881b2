"""Publishing a brief, for the API and the web pages alike: what a draft may hold, what it
needs to be published, and the publish itself."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import Field

from api.errors import field_error
from api.keys import METRICS, POOL, QUEUE
from api.validation import Body, DraftCategoryId, Line, Money, Name, Tags, Text
from config.logs import request_id
from models import audit, briefs, outbox
from models.types import Brief

log = logging.getLogger("api.briefs")

# Publishing answers within this even when the queue hangs: the relay cron enqueues the
# committed outbox row later.
_ENQUEUE_TIMEOUT = 3.0
# Empty while a draft has none yet; otherwise an id from the category list (checked against
# the database by api.categories.check_categories).
DraftCategory = DraftCategoryId


class BriefDraft(Body):
    """A draft validates loosely: only a title is needed; publishing checks the rest."""

    title: Name
    summary: Text = ""
    category: DraftCategory = ""
    role: Line = ""
    organisation: Line | None = Field(None, description="defaults to the buyer's organisation")
    location: Line = ""
    essential_skills: Tags = Field(default_factory=list)
    nice_to_have_skills: Tags = Field(default_factory=list)
    max_day_rate: Money | None = None
    budget: Money | None = None
    closes_at: date | None = None


class BriefPreviewIn(BriefDraft):
    """An unsaved draft, for the live preview while the buyer types (title may be empty)."""

    title: Line = ""  # type: ignore[assignment]


def publish_problems(brief: Brief) -> list[dict[str, str]]:
    """Strict validation at publishing: what a seller needs to judge the brief."""
    problems = []
    if not brief.title.strip():
        problems.append(field_error("title", "a title is required", "missing"))
    if not brief.summary.strip():
        problems.append(field_error("summary", "a summary is required", "missing"))
    if not brief.category.strip():
        problems.append(field_error("category", "a category is required", "missing"))
    if not brief.location.strip():
        problems.append(field_error("location", "a location is required", "missing"))
    if not [s for s in brief.essential_skills if s.strip()]:
        problems.append(
            field_error("essential_skills", "at least one essential skill is required", "missing")
        )
    return problems


async def publish(
    conn: asyncpg.Connection, brief_id: int, actor_id: int
) -> tuple[asyncpg.Record, int, list[Any]]:
    """Publish a checked draft (the caller has locked it and checked it is ready).

    In the caller's transaction: the status, the audit event and the outbox row commit together
    or not at all; the job is enqueued only after the commit (`enqueue_after_commit`), so an
    enqueued job never sees a draft. The request id goes into the audit event, the log line and
    the job's optional last argument (match_brief logs it and stores it on the brief's alerts),
    so an operator can follow a brief from this request to its deliveries.
    Returns (published row, outbox id, job args)."""
    published = await briefs.publish(conn, brief_id)
    assert published is not None
    rid = request_id.get()
    await audit.record(
        conn, actor_id=actor_id, action="brief.published", entity="brief",
        entity_id=brief_id, data={"request_id": rid} if rid else None,
    )
    args: list[Any] = [brief_id, rid] if rid else [brief_id]
    outbox_id = await outbox.add(conn, "match_brief", args)
    log.info("brief published (outbox %s)", outbox_id, extra={"brief_id": brief_id})
    return published, outbox_id, args


async def enqueue_after_commit(app: web.Application, outbox_id: int, args: list[Any]) -> None:
    """Enqueue match_brief(outbox_id, *args) after the commit: a bounded wait that never raises
    (a hung or broken queue leaves the committed outbox row to the relay cron); counts the
    publish metric."""
    from workers.enqueue import enqueue_outbox

    brief_id = args[0]
    ok = False
    try:
        ok = await asyncio.wait_for(
            enqueue_outbox(app[QUEUE].redis, app[POOL], outbox_id, "match_brief", args),
            _ENQUEUE_TIMEOUT,
        )
    except Exception as exc:
        log.warning("enqueue of outbox %s failed: %s", outbox_id, exc, extra={"brief_id": brief_id})
    app[METRICS].publishes.labels("yes" if ok else "no").inc()
