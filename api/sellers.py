"""Sellers: admins create them; a seller edits its own profile; buyers and admins browse."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.auth import check_seller_access
from api.categories import check_categories, list_fields
from api.errors import Conflict, Forbidden, NotFound
from api.etags import check_if_match, etag_of, with_etag
from api.routing import ADMIN, ANY_ROLE, Ctx, Operation, json_response
from api.services.claims import file_claims, split_claims
from api.validation import (
    UNSET,
    Body,
    Categories,
    Id,
    Line,
    Money,
    Name,
    PatchBody,
    Query,
    Tags,
    Text,
)
from models import audit, sellers
from models.sellers import seller_json


class CaseStudyIn(Body):
    title: Name
    summary: Text = ""
    organisation: Line = ""
    category: Line = ""
    role: Line = ""
    location: Line = ""
    won_at: date | None = None
    brief_id: Id | None = None


CaseStudies = list[CaseStudyIn]


class SellerIn(Body):
    name: Name
    summary: Text = ""
    categories: Categories = Field(default_factory=list)
    skills: Tags = Field(default_factory=list)
    locations: Tags = Field(default_factory=list)
    day_rate: Money | None = None
    sme: bool = False
    active: bool = True
    case_studies: CaseStudies = Field(default_factory=list, max_length=100)


class SellerPatch(PatchBody):
    name: Name = UNSET
    summary: Text = UNSET
    categories: Categories = UNSET
    skills: Tags = UNSET
    locations: Tags = UNSET
    day_rate: Money | None = UNSET
    sme: bool = UNSET
    active: bool = UNSET
    case_studies: CaseStudies = Field(UNSET, max_length=100)


class SellerOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    name: str
    summary: str
    categories: list[str]
    skills: list[str]
    locations: list[str]
    day_rate: float | None
    sme: bool
    active: bool
    case_studies: list[dict[str, Any]]
    created_at: str
    updated_at: str


class SellerChanged(SellerOut):
    pending_claims: list[dict[str, Any]] | None = Field(
        None, description="a seller's own edits: its claims awaiting an admin (categories, "
        "SME status, past work count for matching only once approved)"
    )


class SellerPage(BaseModel):
    items: list[SellerOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next page")


class SellerQuery(Query):
    limit: int = Field(50, ge=1, le=200)
    cursor: int = Field(0, ge=0, le=2**63 - 1, description="the last id of the previous page")
    q: Line | None = Field(None, description="name contains (case-insensitive)")


def _fields(body: BaseModel, *, partial: bool) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude_unset=partial)
    if "case_studies" in data:
        data["case_studies"] = [dict(c) for c in data["case_studies"]]
    return data


async def _write(ctx: Ctx, seller_id: int | None, fields: dict[str, Any]) -> asyncpg.Record:
    try:
        if seller_id is None:
            return await sellers.create(ctx.conn, fields)
        row = await sellers.update(ctx.conn, seller_id, fields)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(
            "a seller with this name already exists", details={"name": fields.get("name")}
        ) from exc
    if row is None:
        raise NotFound("no such seller")
    return row


async def _check_categories(ctx: Ctx, fields: dict[str, Any]) -> None:
    named = list_fields("categories", fields.get("categories") or [])
    named += [(f"case_studies.{i}.category", c.get("category") or "")
              for i, c in enumerate(fields.get("case_studies") or [])]
    await check_categories(ctx.conn, named)


async def create_seller(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(SellerIn)
    fields = _fields(body, partial=False)
    await _check_categories(ctx, fields)
    row = await _write(ctx, None, fields)
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="seller.created", entity="seller",
        entity_id=row["id"], data={"name": row["name"]},
    )
    return json_response(seller_json(row), 201)


async def list_sellers(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(SellerQuery)
    rows = await sellers.list_page(ctx.conn, after_id=q.cursor, limit=q.limit, query=q.q)
    next_cursor = rows[-1]["id"] if len(rows) == q.limit else None
    return json_response({"items": [seller_json(r) for r in rows], "next_cursor": next_cursor})


async def get_seller(ctx: Ctx) -> web.StreamResponse:
    seller_id = ctx.path_id()
    if ctx.user.role == "seller":
        check_seller_access(ctx.user, seller_id)
    row = await sellers.get(ctx.conn, seller_id)
    if row is None:
        raise NotFound("no such seller")
    data = seller_json(row)
    return with_etag(json_response(data), data)


async def _change(ctx: Ctx, fields: dict[str, Any], action: str) -> web.StreamResponse:
    seller_id = ctx.path_id()
    user = ctx.user
    check_seller_access(user, seller_id)
    current = await sellers.get(ctx.conn, seller_id, for_update=True)
    if current is None:
        raise NotFound("no such seller")
    check_if_match(ctx.request, seller_json(current))
    await _check_categories(ctx, fields)
    if "active" in fields and user.role != "admin":
        if fields["active"] != current["active"]:
            raise Forbidden("only an admin may activate or deactivate a seller")
        fields.pop("active")
    wanted: list[tuple[str, dict[str, Any]]] = []
    if user.role != "admin":
        # What a seller says about its categories, size and past work waits for an admin.
        fields, wanted = await split_claims(ctx.conn, current, fields)
    row = await _write(ctx, seller_id, fields)
    await audit.record(
        ctx.conn, actor_id=user.id, action=action, entity="seller", entity_id=seller_id,
        data={"fields": sorted(fields)},
    )
    data = seller_json(row)
    etag = etag_of(data)
    if user.role != "admin":
        data["pending_claims"] = await file_claims(ctx, seller_id, wanted)
    return json_response(data, headers={"ETag": etag})


async def replace_seller(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(SellerIn)
    fields = _fields(body, partial=False)
    for flag in ("active", "sme"):
        if flag not in body.model_fields_set:
            fields.pop(flag)  # a replace that does not mention the flag leaves it alone
    return await _change(ctx, fields, "seller.replaced")


async def update_seller(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(SellerPatch)
    return await _change(ctx, _fields(body, partial=True), "seller.updated")


_CLAIMS_NOTE = (
    "A seller's own summary, skills, locations, day rate and name apply at once; new "
    "categories, a change of SME status and new past work become claims (listed in "
    "`pending_claims`) that count for matching once an admin approves them. An admin's edits "
    "apply at once."
)
_ONE = r"/api/v1/sellers/{id:\d+}"
ROUTES = [
    Operation(
        "POST", "/api/v1/sellers", create_seller, "Create a seller", "sellers",
        roles=ADMIN, body=SellerIn, response=SellerOut, status=201, errors=(409,),
    ),
    Operation(
        "GET", "/api/v1/sellers", list_sellers, "List sellers", "sellers",
        roles=frozenset({"admin", "buyer"}), query=SellerQuery, response=SellerPage,
    ),
    Operation(
        "GET", _ONE, get_seller, "Read a seller", "sellers",
        etag=True, roles=ANY_ROLE, response=SellerOut, errors=(403, 404),
    ),
    Operation(
        "PUT", _ONE, replace_seller, "Replace a seller's profile", "sellers",
        etag=True, roles=frozenset({"admin", "seller"}), body=SellerIn, response=SellerChanged,
        errors=(403, 404, 409), description=_CLAIMS_NOTE,
    ),
    Operation(
        "PATCH", _ONE, update_seller, "Change part of a seller's profile", "sellers",
        etag=True, roles=frozenset({"admin", "seller"}), body=SellerPatch, response=SellerChanged,
        errors=(403, 404, 409), description=_CLAIMS_NOTE,
    ),
]
