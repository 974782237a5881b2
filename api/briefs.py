"""Briefs: a buyer owns its briefs; draft -> published -> closed; the shortlist is a live
preview while the brief is a draft and the stored one (computed by the worker) afterwards."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.auth import check_brief_access
from api.categories import check_categories
from api.errors import Conflict, ValidationFailed
from api.keys import LIVE, METRICS
from api.routing import Ctx, Operation, json_response
from api.services import briefs as services
from api.services.briefs import BriefDraft, BriefPreviewIn, DraftCategory, publish_problems
from api.validation import (
    UNSET,
    Line,
    Money,
    Name,
    Page,
    PatchBody,
    Query,
    Tags,
    Text,
)
from models import audit, briefs, matches
from models.briefs import brief_json, row_to_brief
from models.types import Brief

log = logging.getLogger(__name__)
BUYERS = frozenset({"admin", "buyer"})
PREVIEW_LIMIT = 20
Status = Literal["draft", "published", "closed", "awarded", "cancelled", "unsuccessful"]


class BriefPatch(PatchBody):
    title: Name = UNSET
    summary: Text = UNSET
    category: DraftCategory = UNSET
    role: Line = UNSET
    organisation: Line = UNSET
    location: Line = UNSET
    essential_skills: Tags = UNSET
    nice_to_have_skills: Tags = UNSET
    max_day_rate: Money | None = UNSET
    budget: Money | None = UNSET
    closes_at: date | None = UNSET


class BriefOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    status: Status
    title: str
    summary: str
    category: str
    role: str
    organisation: str
    location: str
    essential_skills: list[str]
    nice_to_have_skills: list[str]
    max_day_rate: float | None
    budget: float | None
    closes_at: str | None
    published_at: str | None
    buyer_account_id: int | None
    created_at: str
    updated_at: str


class BriefPage(BaseModel):
    items: list[BriefOut]
    limit: int
    offset: int


class ShortlistItem(BaseModel):
    seller_id: int
    seller_name: str
    score: float
    rank: int
    explanation: dict[str, Any]


class Shortlist(BaseModel):
    items: list[ShortlistItem]
    status: str = Field(description="the brief's status ('draft' for an unsaved preview)")
    source: Literal["preview", "stored"] = Field(
        description="preview: computed now with the live index; stored: computed at publishing"
    )
    rules_version: int | None
    limit: int
    offset: int


class BriefQuery(Page):
    status: Status | None = None


class ShortlistQuery(Query):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000)


class PreviewQuery(ShortlistQuery):
    # A preview page shows the top of the list; scoring and explaining 20 is cheaper than 50.
    limit: int = Field(PREVIEW_LIMIT, ge=1, le=200)


async def _live_shortlist(ctx: Ctx, brief: Brief, limit: int, offset: int) -> dict[str, Any]:
    live = ctx.app[LIVE]
    start = time.perf_counter()
    # Scored in a thread under the live index's lock: the loop keeps serving, and no
    # incremental index change runs at the same time. The live index remembers previews per
    # index generation and shares identical ones in flight (LiveMatcher.preview).
    # Shielded: when the request's deadline cancels it, the scoring task still finishes under
    # the lock; otherwise the lock would be released while the thread is still reading the
    # index, and an incremental update could run at the same time.
    score = getattr(live, "preview", None) or live.match
    found = (await asyncio.shield(score(brief, offset + limit)))[offset:]
    ctx.app[METRICS].match_latency.labels("preview").observe(time.perf_counter() - start)
    # Names from the live index, changed with it (no database query per preview); a seller
    # deleted a moment ago has none and is left out until the index catches up (within 1 s).
    items = []
    for m in found:
        name = live.seller_name(m.seller_id)
        if name is not None:
            items.append({
                "seller_id": m.seller_id,
                "seller_name": name,
                "score": m.score,
                "rank": m.rank,
                "explanation": m.explanation,
            })
    return {"items": items, "source": "preview", "rules_version": live.rules_version}


async def create_brief(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(BriefDraft)
    fields = body.model_dump()
    await check_categories(ctx.conn, [("category", body.category)])
    if fields["organisation"] is None:
        fields["organisation"] = ctx.user.organisation
    row = await briefs.create(ctx.conn, fields, buyer_account_id=ctx.user.id)
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="brief.created", entity="brief",
        entity_id=row["id"], data={"title": row["title"]},
    )
    return json_response(brief_json(row), 201)


async def list_briefs(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(BriefQuery)
    owner = None if ctx.user.role == "admin" else ctx.user.id
    rows = await briefs.list_page(
        ctx.conn, buyer_account_id=owner, status=q.status, limit=q.limit, offset=q.offset
    )
    return json_response(
        {"items": [brief_json(r) for r in rows], "limit": q.limit, "offset": q.offset}
    )


async def get_brief(ctx: Ctx) -> web.StreamResponse:
    row = await briefs.get(ctx.conn, ctx.path_id())
    check_brief_access(ctx.user, row)
    assert row is not None
    return json_response(brief_json(row))


async def update_brief(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id, for_update=True)
    check_brief_access(ctx.user, row)
    body = await ctx.body(BriefPatch)
    assert row is not None
    if row["status"] != "draft":
        raise Conflict(f"only a draft can be changed; this brief is {row['status']}")
    fields = body.model_dump(exclude_unset=True)
    await check_categories(ctx.conn, [("category", fields.get("category") or "")])
    updated = await briefs.update(ctx.conn, brief_id, fields)
    assert updated is not None
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="brief.updated", entity="brief",
        entity_id=brief_id, data={"fields": sorted(fields)},
    )
    return json_response(brief_json(updated))


async def publish_brief(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id, for_update=True)  # two publishes queue up here
    check_brief_access(ctx.user, row)
    assert row is not None
    if row["status"] != "draft":
        raise Conflict(f"the brief is already {row['status']}", details={"status": row["status"]})
    problems = publish_problems(row_to_brief(row))
    if problems:
        raise ValidationFailed("the brief is not ready to publish", details=problems)
    published, outbox_id, args = await services.publish(ctx.conn, brief_id, ctx.user.id)
    ctx.after_commit.append(lambda: services.enqueue_after_commit(ctx.app, outbox_id, args))
    data = brief_json(published)
    data["outbox_id"] = outbox_id
    return json_response(data, 201)


async def close_brief(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id, for_update=True)
    check_brief_access(ctx.user, row)
    closed = await briefs.close(ctx.conn, brief_id)
    if closed is None:
        assert row is not None
        raise Conflict(f"only a published brief can be closed; this one is {row['status']}")
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="brief.closed", entity="brief", entity_id=brief_id
    )
    return json_response(brief_json(closed))


async def get_shortlist(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(ShortlistQuery)
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id)
    check_brief_access(ctx.user, row)
    assert row is not None
    if row["status"] == "draft":
        data = await _live_shortlist(ctx, row_to_brief(row), q.limit, q.offset)
    else:
        stored = await matches.list_for_brief(ctx.conn, brief_id, q.limit, q.offset)
        data = {
            "items": [
                {k: m[k] for k in ("seller_id", "seller_name", "score", "rank", "explanation")}
                for m in stored
            ],
            "source": "stored",
            "rules_version": stored[0]["rules_version"] if stored else None,
        }
    data.update(status=row["status"], limit=q.limit, offset=q.offset)
    return json_response(data)


async def preview_shortlist(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(PreviewQuery)
    body = await ctx.body(BriefPreviewIn)
    fields = body.model_dump()
    fields["organisation"] = fields["organisation"] or ctx.user.organisation
    data = await _live_shortlist(ctx, Brief(id=0, **fields), q.limit, q.offset)
    data.update(status="draft", limit=q.limit, offset=q.offset)
    return json_response(data)


_ONE = r"/api/v1/briefs/{id:\d+}"
ROUTES = [
    Operation(
        "POST", "/api/v1/briefs", create_brief, "Create a draft brief", "briefs",
        roles=BUYERS, body=BriefDraft, response=BriefOut, status=201,
    ),
    Operation(
        "GET", "/api/v1/briefs", list_briefs, "List briefs", "briefs",
        roles=BUYERS, query=BriefQuery, response=BriefPage,
        description="A buyer sees its own briefs, an admin every brief; newest first.",
    ),
    Operation(
        "GET", _ONE, get_brief, "Read a brief", "briefs",
        roles=BUYERS, response=BriefOut, errors=(404,),
    ),
    Operation(
        "PATCH", _ONE, update_brief, "Change a draft brief", "briefs",
        roles=BUYERS, body=BriefPatch, response=BriefOut, errors=(404, 409),
    ),
    Operation(
        "POST", _ONE + "/publish", publish_brief, "Publish a brief", "briefs",
        roles=BUYERS, response=BriefOut, status=201, errors=(404, 409, 422),
        description="Strict validation (422 names every missing field); then, in one "
        "transaction, the brief turns published with an audit event and an outbox row; the "
        "matching job is enqueued after commit. Answers 201 even when the queue is down.",
    ),
    Operation(
        "POST", _ONE + "/close", close_brief, "Close a published brief", "briefs",
        roles=BUYERS, response=BriefOut, errors=(404, 409),
    ),
    Operation(
        "GET", _ONE + "/shortlist", get_shortlist, "Read a brief's shortlist", "briefs",
        roles=BUYERS, query=ShortlistQuery, response=Shortlist, errors=(404,),
        description="A draft gets a live preview; a published brief its stored shortlist.",
    ),
    Operation(
        "POST", "/api/v1/briefs/preview", preview_shortlist, "Preview a shortlist", "briefs",
        roles=BUYERS, body=BriefPreviewIn, query=PreviewQuery, response=Shortlist,
        transaction=False, handler_db=False,
        description="Scores an unsaved draft with the live index; nothing is stored.",
    ),
]
