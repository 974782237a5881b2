"""Awards: the owning buyer records who won a published or closed brief (a seller that applied,
was invited or was shortlisted), or that nobody did. The winner is told (an alert of kind
`awarded`), and the award becomes the winner's verified past work at once: it is appended to the
seller row, whose trigger brings it to every live index within a second, so the "worked for this
buyer before" and past-wins boosts use it."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import check_brief_access
from api.routing import Ctx, Operation, json_response
from api.services.alerts import kick_delivery
from api.services.awards import award
from api.validation import Body, Id
from models import briefs

BUYERS = frozenset({"admin", "buyer"})


class AwardIn(Body):
    """`{"seller_id": N}` awards the brief to a seller; `{"outcome": "no_award"}` records that
    nobody won it."""

    # The schema says what _one_of checks: exactly one of the two forms.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["seller_id"], "properties": {
            "seller_id": {"type": "integer"}, "outcome": {"enum": ["awarded", None]}}},
        {"required": ["outcome"], "properties": {
            "outcome": {"const": "no_award"}, "seller_id": {"type": "null"}}},
    ]})

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
