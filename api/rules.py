"""Matching rules as versions: admins read, create (validated), activate (who, when, why) and
preview a candidate against the active rules on recent briefs before activating it."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.errors import NotFound, ValidationFailed, field_error
from api.keys import LIVE, METRICS
from api.routing import ADMIN, Ctx, Operation, json_response
from api.validation import Body, Note, Page
from matcher.rules import Rules, RulesError
from models import audit, briefs
from models import rules as rules_repo
from models.rules import rules_json
from models.types import Brief

RulesBody = Annotated[dict[str, Any], WithJsonSchema(Rules.json_schema())]
_TOP = 10


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
    brief_id: int
    title: str
    overlap_top10: float
    gained: list[int]
    lost: list[int]
    alerts_active: int
    alerts_candidate: int


class PreviewOut(BaseModel):
    active_version: int
    briefs: list[BriefEffect]
    total: dict[str, Any]


def _parse_rules(data: dict[str, Any]) -> Rules:
    try:
        return Rules.from_dict(data)
    except RulesError as exc:
        field = f"rules.{exc.field}" if exc.field else "rules"
        raise ValidationFailed(
            f"invalid rules: {exc}", details=[field_error(field, exc.message)]
        ) from exc
    except (TypeError, ValueError) as exc:  # defensive: from_dict should only raise RulesError
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


async def _activate(ctx: Ctx, version: int, note: str) -> None:
    previous = await rules_repo.get_active(ctx.conn)
    if not await rules_repo.activate(ctx.conn, version):
        raise NotFound("no such rules version")
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="rules.activated", entity="rules",
        entity_id=version, data={"note": note, "previous": previous[0] if previous else 0},
    )


async def create_rules(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(RulesIn)
    rules = _parse_rules(body.rules)
    version = await rules_repo.create_version(ctx.conn, rules.to_dict(), body.note, ctx.user.id)
    await audit.record(
        ctx.conn, actor_id=ctx.user.id, action="rules.created", entity="rules",
        entity_id=version, data={"note": body.note},
    )
    if body.activate:
        await _activate(ctx, version, body.note)
    row = await rules_repo.get_version(ctx.conn, version)
    assert row is not None
    return json_response(rules_json(row), 201)


async def activate_rules(ctx: Ctx) -> web.StreamResponse:
    version = ctx.path_id("version")
    body = await ctx.body(ActivateIn)
    await _activate(ctx, version, body.note)
    row = await rules_repo.get_version(ctx.conn, version)
    assert row is not None
    return json_response(rules_json(row))


def _effects(matcher: Any, candidate: Any, found: list[Brief]) -> list[dict[str, Any]]:
    out = []
    for brief in found:
        old = matcher.match(brief, top_k=max(_TOP, matcher.rules.max_alerts_per_brief))
        new = candidate.match(brief, top_k=max(_TOP, candidate.rules.max_alerts_per_brief))
        old_top = [m.seller_id for m in old[:_TOP]]
        new_top = [m.seller_id for m in new[:_TOP]]
        denominator = max(len(old_top), len(new_top))
        out.append({
            "brief_id": brief.id,
            "title": brief.title,
            "overlap_top10": len(set(old_top) & set(new_top)) / denominator if denominator else 1.0,
            "gained": [s for s in new_top if s not in old_top],
            "lost": [s for s in old_top if s not in new_top],
            "alerts_active": sum(m.score >= matcher.rules.alert_threshold for m in old),
            "alerts_candidate": sum(m.score >= candidate.rules.alert_threshold for m in new),
        })
    return out


async def preview_rules(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(PreviewIn)
    rules = _parse_rules(body.rules)
    recent = await briefs.recent_published(ctx.conn, body.briefs)
    live = ctx.app[LIVE]
    start = time.perf_counter()
    # Scored in a thread while holding the live index's lock: the candidate shares the fitted
    # index, which must not change under it.
    async with live._lock:
        matcher = live.matcher
        version = live.rules_version
        effects = await asyncio.to_thread(_effects, matcher, matcher.with_rules(rules), recent)
    ctx.app[METRICS].match_latency.labels("rules_preview").observe(time.perf_counter() - start)
    n = len(effects)
    alerts_active = sum(e["alerts_active"] for e in effects)
    alerts_candidate = sum(e["alerts_candidate"] for e in effects)
    total = {
        "briefs": n,
        "mean_overlap_top10": sum(e["overlap_top10"] for e in effects) / n if n else None,
        "gained": sum(len(e["gained"]) for e in effects),
        "lost": sum(len(e["lost"]) for e in effects),
        "alerts_active": alerts_active,
        "alerts_candidate": alerts_candidate,
        "alert_change": alerts_candidate - alerts_active,
    }
    return json_response({"active_version": version, "briefs": effects, "total": total})


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
