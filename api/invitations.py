"""Invitations: the owning buyer invites sellers to apply for a published brief ("open to
selected sellers", as the Australian marketplace had it). Each newly invited seller gets an
alert of kind `invited` at once, whatever its score and threshold, unless it turned alerts off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from api.auth import check_brief_access
from api.errors import Conflict, ValidationFailed, field_error
from api.routing import Ctx, Operation, json_response
from api.services.alerts import kick_delivery
from api.validation import Body, Id
from models import alerts, audit, briefs, invitations

BUYERS = frozenset({"admin", "buyer"})
MAX_INVITES = 200  # per request: more than any shortlist a buyer reads


def utc_today() -> date:
    return datetime.now(UTC).date()


def is_open(brief: asyncpg.Record | dict[str, Any]) -> bool:
    """Published and its closing date (a UTC day) not past: it still takes invitations and
    answers."""
    closes = brief["closes_at"]
    return brief["status"] == "published" and (closes is None or closes >= utc_today())


class InvitationsIn(Body):
    seller_ids: list[Id] = Field(min_length=1, max_length=MAX_INVITES)


class InvitationOut(BaseModel):
    seller_id: int
    seller_name: str
    created_at: str
    invited_by: int | None
    rank: int | None = Field(description="the seller's rank on the stored shortlist, if on it")
    response: str | None = Field(description="the seller's answer, if any")
    alert_status: str | None = Field(
        description="the invitation alert's delivery state; null: the seller has alerts off "
        "or nowhere to send them"
    )


class InvitationList(BaseModel):
    items: list[InvitationOut]


class InvitationResult(InvitationList):
    invited: list[int] = Field(description="sellers invited by this request")
    already_invited: list[int] = Field(description="sellers invited before: nothing changed")
    alerted: list[int] = Field(description="newly invited sellers who get an invitation alert")


def _item(row: dict[str, Any]) -> dict[str, Any]:
    data = {k: row[k] for k in InvitationOut.model_fields}
    data["created_at"] = row["created_at"].isoformat()
    return data


async def invite(
    conn: asyncpg.Connection,
    brief: asyncpg.Record,
    seller_ids: list[int],
    actor_id: int,
    *,
    via: str | None = None,
) -> dict[str, list[int]]:
    """Invite sellers to a brief the caller may see (for the API and the pages alike), in the
    caller's transaction: invitations, their alerts and one audit event commit together. The
    caller kicks delivery after the commit. Raises 409 (brief not open), 422 (unknown or
    inactive seller)."""
    brief_id = int(brief["id"])
    if not is_open(brief):
        raise Conflict(
            f"sellers can be invited to an open published brief; this one is {brief['status']}"
            + (" and past its closing date" if brief["status"] == "published" else ""),
            details={"status": brief["status"]},
        )
    ids = sorted(set(seller_ids))
    known = await invitations.active_sellers(conn, ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValidationFailed(
            "only active sellers can be invited",
            details=[field_error("seller_ids", f"no active seller {i}", "not_found")
                     for i in missing],
        )
    new = await invitations.add(conn, brief_id, ids, invited_by=actor_id)
    alerted = await alerts.create_personal(conn, brief_id, "invited", new)
    if new:
        data: dict[str, Any] = {"seller_ids": new, "alerted": alerted}
        if via:
            data["via"] = via
        await audit.record(
            conn, actor_id=actor_id, action="brief.invited", entity="brief",
            entity_id=brief_id, data=data,
        )
    fresh = set(new)
    return {
        "invited": new,
        "already_invited": [i for i in ids if i not in fresh],
        "alerted": sorted(alerted),
    }


async def create_invitations(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id, for_update=True)
    check_brief_access(ctx.user, row)
    assert row is not None
    body = await ctx.body(InvitationsIn)
    result = await invite(ctx.conn, row, body.seller_ids, ctx.user.id)
    if result["alerted"]:
        ctx.after_commit.append(lambda: kick_delivery(ctx.app))
    items = [_item(r) for r in await invitations.list_for_brief(ctx.conn, brief_id)]
    return json_response({"items": items, **result})


async def list_invitations(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id)
    check_brief_access(ctx.user, row)
    items = [_item(r) for r in await invitations.list_for_brief(ctx.conn, brief_id)]
    return json_response({"items": items})


_PATH = r"/api/v1/briefs/{id:\d+}/invitations"
ROUTES = [
    Operation(
        "POST", _PATH, create_invitations, "Invite sellers to a brief", "outcomes",
        roles=BUYERS, body=InvitationsIn, response=InvitationResult,
        errors=(404, 409, 422),
        description="The owning buyer (or an admin) invites active sellers to an open "
        "published brief. Each seller is invited once: repeating an invitation changes nothing "
        "(`already_invited`). A newly invited seller gets an `invited` alert at "
        "once by webhook or e-mail, below its own threshold and whatever its filters, unless "
        "it turned alerts off or paused them.",
    ),
    Operation(
        "GET", _PATH, list_invitations, "List a brief's invitations", "outcomes",
        roles=BUYERS, response=InvitationList, errors=(404,),
    ),
]
