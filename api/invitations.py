"""Invitations: the owning buyer invites sellers to apply for a published brief ("open to
selected sellers", as the Australian marketplace had it). Each newly invited seller gets an
alert of kind `invited` at once, whatever its score and threshold, unless it turned alerts off.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from api.auth import check_brief_access
from api.routing import Ctx, Operation, json_response
from api.services.alerts import kick_delivery
from api.services.invitations import MAX_INVITES, invite
from api.validation import Body, Id
from models import briefs, invitations

BUYERS = frozenset({"admin", "buyer"})


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
