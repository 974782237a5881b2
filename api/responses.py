"""Seller responses: a seller tells the buyer "interested", "not for me" (with a reason) or
"applied" for one of its opportunities (a brief it is shortlisted for or invited to). The answer
can change until the brief closes; every answer is an audit event."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel

from api.auth import check_seller_access
from api.errors import Conflict, NotFound, ValidationFailed, field_error
from api.routing import ADMIN, Ctx, Operation, json_response
from api.validation import Body
from models import audit, responses
from models import opportunities as opportunities_repo

Response = Literal["interested", "not_for_me", "applied"]
Reason = Literal["skills", "size", "location", "rate", "timing", "other"]


class ResponseIn(Body):
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


def response_problems(response: str, reason: str | None) -> list[dict[str, str]]:
    if reason is not None and response != "not_for_me":
        return [field_error("reason", "a reason goes with not_for_me only", "invalid")]
    return []


async def record_response(
    conn: asyncpg.Connection,
    seller_id: int,
    brief_id: int,
    response: str,
    reason: str | None,
    *,
    actor_id: int | None,
    via: str,
) -> dict[str, Any]:
    """Record a seller's answer (for the API, the pages and the signed links alike) in the
    caller's transaction, with its audit event. Raises 404 (not this seller's opportunity),
    409 (the brief no longer takes answers), 422 (a reason without not_for_me)."""
    problems = response_problems(response, reason)
    if problems:
        raise ValidationFailed("the response is not valid", details=problems)
    opportunity = await opportunities_repo.get(conn, brief_id, seller_id, lock=True)
    if opportunity is None:
        raise NotFound("no such opportunity for this seller")
    if not opportunity["open"]:
        status = opportunity["status"]
        raise Conflict(
            f"the brief is {status} and past its closing date" if status == "published"
            else f"the brief is {status}: answers can change only until it closes",
            details={"status": status},
        )
    row, before = await responses.upsert(conn, brief_id, seller_id, response, reason)
    previous = before["response"] if before else None
    await audit.record(
        conn, actor_id=actor_id, action="response.recorded", entity="brief",
        entity_id=brief_id,
        data={"seller_id": seller_id, "response": response, "reason": reason,
              "previous": previous, "via": via},
    )
    data = {k: row[k] for k in ("brief_id", "seller_id", "response", "reason")}
    data.update(
        created_at=row["created_at"].isoformat(),
        updated_at=row["updated_at"].isoformat(),
        previous=previous,
    )
    return data


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
