"""Categories: the marketplace's own list (id, label, optional parent), managed by admins and
read by everyone signed in. Briefs, sellers, alert preferences and rules name categories from
it; `check_categories` is the one check they all use."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from aiohttp import web
from pydantic import BaseModel

from api.errors import Conflict, NotFound, ValidationFailed, field_error
from api.routing import ADMIN, ANY_ROLE, Ctx, Operation, json_response
from api.validation import Body, CategoryId, Name
from models import audit, categories
from models.categories import category_json


class CategoryIn(Body):
    id: CategoryId
    label: Name
    parent_id: CategoryId | None = None


class CategoryUpdate(Body):
    label: Name
    parent_id: CategoryId | None = None


class CategoryOut(BaseModel):
    id: str
    label: str
    parent_id: str | None
    created_at: str


class CategoryList(BaseModel):
    items: list[CategoryOut]


async def check_categories(
    conn: asyncpg.Connection, named: Iterable[tuple[str, str]]
) -> None:
    """422 naming each (field, category id) whose category is not in the list. Empty ids are
    skipped (a draft brief may have no category yet)."""
    pairs = [(f, c) for f, c in named if c]
    missing = set(await categories.unknown(conn, [c for _, c in pairs]))
    problems = [
        field_error(f, f"unknown category {c!r}; GET /api/v1/categories lists them",
                    "unknown_category")
        for f, c in pairs
        if c in missing
    ]
    if problems:
        raise ValidationFailed("unknown category", details=problems)


def list_fields(field: str, ids: Iterable[str]) -> list[tuple[str, str]]:
    """(field.i, id) pairs for a list of category ids, for `check_categories`."""
    return [(f"{field}.{i}", c) for i, c in enumerate(ids)]


def _path_category(ctx: Ctx) -> str:
    return ctx.request.match_info["category_id"]


async def _check_parent(ctx: Ctx, category_id: str, parent_id: str | None) -> None:
    if parent_id is None:
        return
    await check_categories(ctx.conn, [("parent_id", parent_id)])
    # A parent that descends from this category would make a loop.
    if category_id in await categories.ancestors(ctx.conn, parent_id):
        raise ValidationFailed(
            "a category cannot be its own ancestor",
            details=[field_error("parent_id", "this parent descends from the category", "cycle")],
        )


async def list_categories(ctx: Ctx) -> web.StreamResponse:
    rows = await categories.list_all(ctx.conn)
    return json_response({"items": [category_json(r) for r in rows]})


async def get_category(ctx: Ctx) -> web.StreamResponse:
    row = await categories.get(ctx.conn, _path_category(ctx))
    if row is None:
        raise NotFound("no such category")
    return json_response(category_json(row))


async def create_category(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(CategoryIn)
    await _check_parent(ctx, body.id, body.parent_id)
    row = await categories.create(ctx.conn, body.id, body.label, body.parent_id)
    if row is None:
        raise Conflict("a category with this id exists", details={"id": body.id})
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="category.created", entity="category",
        entity_id=body.id, data={"label": body.label, "parent_id": body.parent_id},
    )
    return json_response(category_json(row), 201)


async def update_category(ctx: Ctx) -> web.StreamResponse:
    category_id = _path_category(ctx)
    body = await ctx.body(CategoryUpdate)
    if not await categories.lock(ctx.conn, category_id):
        raise NotFound("no such category")
    await _check_parent(ctx, category_id, body.parent_id)
    row = await categories.update(ctx.conn, category_id, body.label, body.parent_id)
    assert row is not None
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="category.updated", entity="category",
        entity_id=category_id, data={"label": body.label, "parent_id": body.parent_id},
    )
    return json_response(category_json(row))


async def delete_category(ctx: Ctx) -> web.StreamResponse:
    category_id = _path_category(ctx)
    # Locked first: a brief or seller naming it meanwhile waits, then sees it gone (422).
    if not await categories.lock(ctx.conn, category_id):
        raise NotFound("no such category")
    uses = await categories.uses(ctx.conn, category_id)
    if uses:
        raise Conflict(
            "the category is in use; change what names it first", details={"uses": uses}
        )
    await categories.delete(ctx.conn, category_id)
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="category.deleted", entity="category",
        entity_id=category_id,
    )
    return web.Response(status=204)


# (The length limit is left to the lookup: a longer id is simply not found.)
_ONE = "/api/v1/categories/{category_id:[A-Za-z0-9][A-Za-z0-9._-]*}"
ROUTES = [
    Operation(
        "GET", "/api/v1/categories", list_categories, "List the categories", "categories",
        roles=ANY_ROLE, response=CategoryList,
    ),
    Operation(
        "GET", _ONE, get_category, "Read a category", "categories",
        roles=ANY_ROLE, response=CategoryOut, errors=(404,),
    ),
    Operation(
        "POST", "/api/v1/categories", create_category, "Create a category", "categories",
        roles=ADMIN, body=CategoryIn, response=CategoryOut, status=201, errors=(409,),
    ),
    Operation(
        "PUT", _ONE, update_category, "Change a category's label or parent", "categories",
        roles=ADMIN, body=CategoryUpdate, response=CategoryOut, errors=(404,),
    ),
    Operation(
        "DELETE", _ONE, delete_category, "Delete a category", "categories",
        roles=ADMIN, status=204, errors=(404, 409),
        description="Refused (409) while a brief, seller, alert preference, rules version, "
        "pending claim or child category names it; the details say where.",
    ),
]
