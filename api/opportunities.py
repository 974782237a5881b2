"""A seller's matched opportunities, each with its "why you" explanation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.auth import check_seller_access
from api.errors import NotFound
from api.routing import ADMIN, Ctx, Operation, json_response
from api.validation import Page
from models import matches, sellers


class Opportunity(BaseModel):
    model_config = ConfigDict(extra="allow")
    brief_id: int
    title: str
    score: float
    rank: int
    explanation: dict[str, Any]


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
    rows = await matches.list_for_seller(ctx.conn, seller_id, q.limit, q.offset)
    return json_response(
        {"items": [_jsonable(r) for r in rows], "limit": q.limit, "offset": q.offset}
    )


ROUTES = [
    Operation(
        "GET", r"/api/v1/sellers/{id:\d+}/opportunities", list_opportunities,
        "List a seller's matched opportunities", "sellers",
        roles=ADMIN | {"seller"}, query=Page, response=OpportunityPage, errors=(403, 404),
    ),
]
