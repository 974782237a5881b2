"""A seller's alerts and alert preferences; failed deliveries and re-drive for admins."""

from __future__ import annotations

import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.auth import check_seller_access
from api.categories import check_categories, list_fields
from api.errors import NotFound, ValidationFailed, field_error
from api.netguard import WEBHOOK_SECRET_NEEDED
from api.routing import ADMIN, Ctx, Operation, json_response
from api.services import alerts as services
from api.services.alerts import PreferencesIn
from api.validation import Page, Query
from models import alerts, preferences, sellers

log = logging.getLogger(__name__)

SELLER_OR_ADMIN = ADMIN | {"seller"}


class PreferencesOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    seller_id: int
    frequency: Literal["instant", "daily", "off"]
    email: str | None
    webhook_url: str | None
    webhook_secret_set: bool
    categories: list[str]
    locations: list[str]
    keywords: list[str]
    exclude_keywords: list[str]
    min_score: float
    min_budget: float | None
    paused: bool


class AlertOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    brief_id: int
    seller_id: int
    channel: str
    status: Literal["pending", "sending", "sent", "failed"]
    attempts: int
    last_error: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: int | None = None


class FailedQuery(Query):
    status: Literal["failed"] = "failed"
    limit: int = Field(50, ge=1, le=200)
    cursor: int | None = Field(None, ge=1, le=2**63 - 1, description="the last id seen")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _prefs_json(seller_id: int, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:  # never set: what the defaults mean (no alerts until asked for)
        row = {
            "seller_id": seller_id, "frequency": "off", "email": None, "webhook_url": None,
            "webhook_secret": None, "categories": [], "locations": [], "keywords": [],
            "exclude_keywords": [], "min_score": 0.0, "min_budget": None, "min_day_rate": None,
            "paused": False, "last_digest_at": None, "updated_at": None,
        }
    data = _jsonable(dict(row))
    data["webhook_secret_set"] = bool(data.pop("webhook_secret", None))
    return data


async def _seller(ctx: Ctx) -> int:
    seller_id = ctx.path_id()
    check_seller_access(ctx.user, seller_id)
    if await sellers.get(ctx.conn, seller_id) is None:
        raise NotFound("no such seller")
    return seller_id


async def list_seller_alerts(ctx: Ctx) -> web.StreamResponse:
    seller_id = await _seller(ctx)
    q = ctx.query(Page)
    rows = await alerts.list_for_seller(ctx.conn, seller_id, q.limit, q.offset)
    return json_response({"items": [_jsonable(r) for r in rows], "limit": q.limit,
                          "offset": q.offset})


async def get_preferences(ctx: Ctx) -> web.StreamResponse:
    seller_id = await _seller(ctx)
    return json_response(_prefs_json(seller_id, await preferences.get(ctx.conn, seller_id)))


async def put_preferences(ctx: Ctx) -> web.StreamResponse:
    seller_id = await _seller(ctx)
    body = await ctx.body(PreferencesIn)
    await check_categories(ctx.conn, list_fields("categories", body.categories))
    if body.webhook_url is not None:
        problem = await services.webhook_problem(ctx.app, body.webhook_url)
        if problem:
            raise ValidationFailed(
                "webhook_url is not deliverable", details=[field_error("webhook_url", problem)])
    fields = body.model_dump()
    if "webhook_secret" not in body.model_fields_set:
        fields.pop("webhook_secret")
    if body.webhook_url and not body.webhook_secret:
        stored = await preferences.get(ctx.conn, seller_id)
        if "webhook_secret" in fields or not (stored and stored.get("webhook_secret")):
            raise ValidationFailed(
                "a webhook needs a secret",
                details=[field_error("webhook_secret", WEBHOOK_SECRET_NEEDED)],
            )
    row = await services.save_preferences(ctx.conn, seller_id, ctx.user.id, fields)
    return json_response(_prefs_json(seller_id, row))


async def list_failed_alerts(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(FailedQuery)
    rows = await alerts.list_failed(ctx.conn, q.limit, q.cursor)
    next_cursor = rows[-1]["id"] if len(rows) == q.limit else None
    return json_response({"items": [_jsonable(r) for r in rows], "next_cursor": next_cursor})


async def redrive_alert(ctx: Ctx) -> web.StreamResponse:
    row = await services.redrive(ctx.conn, ctx.path_id(), ctx.user.id)
    ctx.after_commit.append(lambda: services.kick_delivery(ctx.app))
    return json_response(_jsonable(dict(row)))


_SELLER = r"/api/v1/sellers/{id:\d+}"
ROUTES = [
    Operation(
        "GET", _SELLER + "/alerts", list_seller_alerts, "List a seller's alerts", "alerts",
        roles=SELLER_OR_ADMIN, query=Page, response=AlertPage, errors=(403, 404),
    ),
    Operation(
        "GET", _SELLER + "/alert-preferences", get_preferences,
        "Read a seller's alert preferences", "alerts",
        roles=SELLER_OR_ADMIN, response=PreferencesOut, errors=(403, 404),
    ),
    Operation(
        "PUT", _SELLER + "/alert-preferences", put_preferences,
        "Replace a seller's alert preferences", "alerts",
        roles=SELLER_OR_ADMIN, body=PreferencesIn, response=PreferencesOut, errors=(403, 404),
    ),
    Operation(
        "GET", "/api/v1/alerts", list_failed_alerts, "List failed alerts", "alerts",
        roles=ADMIN, query=FailedQuery, response=AlertPage,
    ),
    Operation(
        "POST", r"/api/v1/alerts/{id:\d+}/redrive", redrive_alert, "Re-drive a failed alert",
        "alerts", roles=ADMIN, response=AlertOut, errors=(404, 409),
    ),
]
