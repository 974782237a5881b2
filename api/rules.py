"""Matching rules as versions: admins read, create (validated), activate (who, when, why) and
preview a candidate against the active rules on recent briefs before activating it."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.categories import check_categories
from api.errors import NotFound, ValidationFailed, field_error
from api.keys import LIVE, METRICS, POOL
from api.routing import ADMIN, Ctx, Operation, json_response
from api.services import rules as services
from api.validation import Body, Note, Page
from api.whatif import what_if
from matcher.rules import Rules, RulesError
from models import rules as rules_repo
from models.rules import rules_json

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RulesBody = Annotated[dict[str, Any], WithJsonSchema(Rules.json_schema())]


class RulesIn(Body):
    rules: RulesBody
    note: Note = ""
    activate: bool = Field(False, description="activate the new version at once")


class ActivateIn(Body):
    note: Annotated[Note, Field(min_length=1, description="why: kept in the audit log")]


class PreviewIn(Body):
    rules: RulesBody
    briefs: int = Field(50, ge=1, le=200, description="how many recent published briefs")


class RuleSetOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: int
    note: str
    active: bool
    created_by: int | None
    created_at: str
    activated_at: str | None


class RuleSetFull(RuleSetOut):
    body: dict[str, Any]


class RulesOverview(BaseModel):
    active_version: int = Field(description="0: no stored version is active; built-in defaults")
    active: dict[str, Any] = Field(description="the active rules body")
    versions: list[RuleSetOut]
    limit: int
    offset: int


class BriefEffect(BaseModel):
    model_config = ConfigDict(extra="allow")
    brief_id: int
    title: str
    overlap: int = Field(description="sellers in both top 10s")
    overlap_ratio: float
    gained: list[int]
    lost: list[int]
    alerts_active: int
    alerts_candidate: int


class PreviewOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    active_version: int
    briefs: list[BriefEffect]
    total: dict[str, Any]
    outcomes: dict[str, Any] = Field(description="ranking quality on awarded briefs, both rules")


def _control_characters(value: Any, path: str) -> str | None:
    """The dotted path of the first string holding a control character (PostgreSQL's jsonb
    cannot store NUL, and none belongs in a synonym or an alias), else None."""
    if isinstance(value, str):
        return path if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if _CONTROL.search(str(key)):
                return where
            found = _control_characters(item, where)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _control_characters(item, f"{path}.{i}")
            if found:
                return found
    return None


def _parse_rules(data: dict[str, Any]) -> Rules:
    bad = _control_characters(data, "rules")
    if bad:
        raise ValidationFailed(
            "invalid rules", details=[field_error(bad, "control characters are not allowed")]
        )
    try:
        return Rules.from_dict(data)
    except RulesError as exc:
        field = f"rules.{exc.field}" if exc.field else "rules"
        raise ValidationFailed(
            f"invalid rules: {exc}", details=[field_error(field, exc.message)]
        ) from exc
    # Defensive: from_dict should only raise RulesError.
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValidationFailed(
            f"invalid rules: {exc}", details=[field_error("rules", str(exc))]
        ) from exc


async def get_rules(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(Page)
    active = await rules_repo.get_active(ctx.conn)
    version, body = active if active else (0, Rules().to_dict())
    rows = await rules_repo.list_versions(ctx.conn, limit=q.limit, offset=q.offset)
    return json_response({
        "active_version": version,
        "active": body,
        "versions": [rules_json(r) for r in rows],
        "limit": q.limit,
        "offset": q.offset,
    })


async def get_rule_version(ctx: Ctx) -> web.StreamResponse:
    row = await rules_repo.get_version(ctx.conn, ctx.path_id("version"))
    if row is None:
        raise NotFound("no such rules version")
    return json_response(rules_json(row))


async def check_rule_categories(conn: asyncpg.Connection, rules: Rules) -> None:
    """Per-category overrides must name categories from the list."""
    await check_categories(conn, [
        (f"rules.category_overrides.{c}", c) for c in rules.category_overrides
    ])


async def create_rules(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(RulesIn)
    rules = _parse_rules(body.rules)
    await check_rule_categories(ctx.conn, rules)
    version = await services.create(
        ctx.conn, rules.to_dict(), body.note, ctx.user.id, activate_it=body.activate)
    row = await rules_repo.get_version(ctx.conn, version)
    assert row is not None
    return json_response(rules_json(row), 201)


async def activate_rules(ctx: Ctx) -> web.StreamResponse:
    version = ctx.path_id("version")
    body = await ctx.body(ActivateIn)
    await services.activate(ctx.conn, version, ctx.user.id, body.note)
    row = await rules_repo.get_version(ctx.conn, version)
    assert row is not None
    return json_response(rules_json(row))


async def preview_rules(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(PreviewIn)
    rules = _parse_rules(body.rules)
    start = time.perf_counter()
    # The same what-if the admin page shows: the recent briefs under both rule sets, and the
    # awarded briefs' winners ranked under both (scored under the live index's lock).
    result = await what_if(ctx.app[POOL], ctx.app[LIVE], rules, last_n=body.briefs)
    ctx.app[METRICS].match_latency.labels("rules_preview").observe(time.perf_counter() - start)
    return json_response(result)


_ONE = r"/api/v1/rules/{version:\d+}"
ROUTES = [
    Operation(
        "GET", "/api/v1/rules", get_rules, "Read the active rules and the versions", "rules",
        roles=ADMIN, query=Page, response=RulesOverview,
    ),
    Operation(
        "GET", _ONE, get_rule_version, "Read one rules version", "rules",
        roles=ADMIN, response=RuleSetFull, errors=(404,),
    ),
    Operation(
        "POST", "/api/v1/rules", create_rules, "Create a rules version", "rules",
        roles=ADMIN, body=RulesIn, response=RuleSetFull, status=201,
        description="Validated on save: a 422 names the offending field (e.g. rules.weights.text).",
    ),
    Operation(
        "POST", _ONE + "/activate", activate_rules, "Activate a rules version", "rules",
        roles=ADMIN, body=ActivateIn, response=RuleSetFull, errors=(404,),
        description="Records who, when and why as an audit event; every matching process "
        "switches within a second.",
    ),
    Operation(
        "POST", "/api/v1/rules/preview", preview_rules, "Preview candidate rules", "rules",
        roles=ADMIN, body=PreviewIn, response=PreviewOut, transaction=False,
        description="Re-scores the last N published briefs with the candidate and the active "
        "rules: top-10 overlap, sellers gained and lost, alert volume. Nothing is stored or sent.",
    ),
]
