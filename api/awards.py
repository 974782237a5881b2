"""Awards: the owning buyer records who won a published or closed brief (a seller that applied,
was invited or was shortlisted), or that nobody did. The winner is told (an alert of kind
`awarded`), and the award becomes the winner's verified past work at once: it is appended to the
seller row, whose trigger brings it to every live index within a second, so the "worked for this
buyer before" and past-wins boosts use it."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import check_brief_access
from api.errors import Conflict, ValidationFailed, field_error
from api.invitations import BUYERS, utc_today
from api.routing import Ctx, Operation, json_response
from api.services.alerts import kick_delivery
from api.validation import Body, Id
from models import alerts, audit, awards, briefs, sellers
from models.briefs import brief_json


class AwardIn(Body):
    """`{"seller_id": N}` awards the brief to a seller; `{"outcome": "no_award"}` records that
    nobody won it."""

    seller_id: Id | None = None
    outcome: Literal["awarded", "no_award"] | None = Field(
        None, description="'no_award' without a seller; 'awarded' (the default) with one"
    )

    @model_validator(mode="after")
    def _one_of(self) -> AwardIn:
        if self.outcome == "no_award" and self.seller_id is not None:
            raise ValueError("no_award takes no seller_id")
        if self.outcome != "no_award" and self.seller_id is None:
            raise ValueError('give a seller_id, or "outcome": "no_award"')
        return self


class AwardOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    status: Literal["awarded", "unsuccessful"]
    winner_seller_id: int | None
    awarded_at: str
    winner_alerted: bool
    eligible_because: list[str]


async def award(
    conn: asyncpg.Connection,
    brief: asyncpg.Record,
    seller_id: int | None,
    actor_id: int,
    *,
    via: str | None = None,
) -> dict[str, Any]:
    """Award a brief the caller may see (None: no award), in the caller's transaction, with
    the winner's past work, its alert and the audit events. The caller kicks delivery after
    the commit when `winner_alerted`. Raises 409 (wrong state) or 422 (seller not eligible)."""
    brief_id = int(brief["id"])
    if brief["status"] not in ("published", "closed"):
        raise Conflict(
            f"only a published or closed brief can be awarded; this one is {brief['status']}",
            details={"status": brief["status"]},
        )
    reasons: list[str] = []
    if seller_id is not None:
        if await sellers.get(conn, seller_id) is None:
            raise ValidationFailed(
                "no such seller", details=[field_error("seller_id", "no such seller", "not_found")]
            )
        why = await awards.eligible(conn, brief_id, seller_id)
        reasons = [k for k, v in why.items() if v]
        if not reasons:
            raise ValidationFailed(
                "the seller neither applied, was invited nor was shortlisted for this brief",
                details=[field_error("seller_id", "not eligible to win this brief", "ineligible")],
            )
    updated = await briefs.award(conn, brief_id, seller_id)
    assert updated is not None  # the caller holds the row lock and checked the state
    data: dict[str, Any] = {"seller_id": seller_id, "eligible_because": reasons}
    if via:
        data["via"] = via
    action = "brief.awarded" if seller_id is not None else "brief.unsuccessful"
    await audit.record(
        conn, actor_id=actor_id, action=action, entity="brief", entity_id=brief_id, data=data
    )
    alerted = False
    if seller_id is not None:
        case_study = awards.past_work(updated, utc_today())
        if await awards.add_past_work(conn, seller_id, case_study):
            await audit.record(
                conn, actor_id=actor_id, action="seller.past_work_added", entity="seller",
                entity_id=seller_id, data={"brief_id": brief_id, "source": "award"},
            )
        alerted = bool(await alerts.create_personal(conn, brief_id, "awarded", [seller_id]))
    result = brief_json(updated)
    result.update(winner_alerted=alerted, eligible_because=reasons)
    return result


async def award_brief(ctx: Ctx) -> web.StreamResponse:
    brief_id = ctx.path_id()
    row = await briefs.get(ctx.conn, brief_id, for_update=True)
    check_brief_access(ctx.user, row)
    assert row is not None
    body = await ctx.body(AwardIn)
    result = await award(ctx.conn, row, body.seller_id, ctx.user.id)
    if result["winner_alerted"]:
        ctx.after_commit.append(lambda: kick_delivery(ctx.app))
    return json_response(result)


ROUTES = [
    Operation(
        "POST", r"/api/v1/briefs/{id:\d+}/award", award_brief, "Award a brief", "outcomes",
        roles=BUYERS, body=AwardIn, response=AwardOut, errors=(404, 409, 422),
        description="The owning buyer (or an admin) records the outcome of a published or "
        "closed brief: `{\"seller_id\": N}` (a seller that applied, was invited or was "
        "shortlisted, else 422) makes it `awarded`, tells the winner (alert kind `awarded`) "
        "and adds the award to the winner's verified past work; `{\"outcome\": \"no_award\"}` "
        "makes it `unsuccessful`. Once decided, an outcome is final (409).",
    ),
]
