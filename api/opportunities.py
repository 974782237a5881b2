"""A seller's opportunities (briefs it is shortlisted for or invited to), each with its "why you"
explanation and the seller's answer."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.auth import check_seller_access
from api.errors import NotFound
from api.routing import ADMIN, Ctx, Operation, json_response
from api.validation import Page
from models import opportunities, sellers


class Opportunity(BaseModel):
    model_config = ConfigDict(extra="allow")
    brief_id: int
    title: str
    score: float | None = Field(description="null when the seller was invited but not matched")
    rank: int | None = Field(description="the rank on the stored shortlist; null if invited only")
    explanation: dict[str, Any]
    invited_at: str | None
    response: Literal["interested", "not_for_me", "applied"] | None
    reason: str | None
    open: bool = Field(description="the brief still takes answers")


class OpportunityPage(BaseModel):
    items: list[Opportunity]
    limit: int
    offset: int


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


async def list_opportunities(ctx: Ctx) -> web.StreamResponse:
    seller_id = ctx.path_id()
    check_seller_access(ctx.user, seller_id)
    q = ctx.query(Page)
    if await sellers.get(ctx.conn, seller_id) is None:
        raise NotFound("no such seller")
    rows = await opportunities.list_for_seller(ctx.conn, seller_id, q.limit, q.offset)
    return json_response(
        {"items": [_jsonable(r) for r in rows], "limit": q.limit, "offset": q.offset}
    )


ROUTES = [
    Operation(
        "GET", r"/api/v1/sellers/{id:\d+}/opportunities", list_opportunities,
        "List a seller's opportunities", "sellers",
        roles=ADMIN | {"seller"}, query=Page, response=OpportunityPage, errors=(403, 404),
    ),
]
