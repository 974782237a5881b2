"""Seller responses: a seller tells the buyer "interested", "not for me" (with a reason) or
"applied" for one of its opportunities (a brief it is shortlisted for or invited to). The answer
can change until the brief closes; every answer is an audit event."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import check_seller_access
from api.routing import ADMIN, Ctx, Operation, json_response
from api.services.responses import record_response
from api.validation import Body

Response = Literal["interested", "not_for_me", "applied"]
Reason = Literal["skills", "size", "location", "rate", "timing", "other"]


class ResponseIn(Body):
    # The schema says what response_problems checks: a reason only with not_for_me.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"not": {"properties": {"response": {"const": "not_for_me"}}}},
        "then": {"properties": {"reason": {"type": "null"}}},
    })

    response: Response
    reason: Reason | None = None


class ResponseOut(BaseModel):
    brief_id: int
    seller_id: int
    response: Response
    reason: Reason | None
    created_at: str
    updated_at: str
    previous: Response | None


async def respond(ctx: Ctx) -> web.StreamResponse:
    seller_id = ctx.path_id()
    check_seller_access(ctx.user, seller_id)
    brief_id = ctx.path_id("brief_id")
    body = await ctx.body(ResponseIn)
    data = await record_response(
        ctx.conn, seller_id, brief_id, body.response, body.reason,
        actor_id=ctx.user.id, via="api",
    )
    return json_response(data)


ROUTES = [
    Operation(
        "POST", r"/api/v1/sellers/{id:\d+}/opportunities/{brief_id:\d+}/response", respond,
        "Answer an opportunity", "outcomes",
        roles=ADMIN | {"seller"}, body=ResponseIn, response=ResponseOut,
        errors=(403, 404, 409, 422),
        description="The seller (or an admin) answers a brief it is shortlisted for or invited "
        "to: interested, not_for_me (with an optional reason) or applied. The latest answer "
        "counts; it can change until the brief closes (409 after). Every answer is an audit "
        "event. Alerts carry signed one-click links to the same answers.",
    ),
]
