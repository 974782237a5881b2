"""Admin pages: the rules editor with the what-if preview and the score chart, activation (new
or earlier versions, with a reason), failed deliveries with re-drive, the audit log."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiohttp import web

from api.errors import Conflict, NotFound
from api.keys import LIVE, POOL
from api.services import alerts as alerts_service
from api.services import rules as rules_service
from api.web import chart, forms
from api.web.session import ACCOUNT, FORM, error_page, page, redirect, render
from api.whatif import run_locked, what_if
from matcher import Rules, RulesError
from models import audit
from models import briefs as briefs_repo
from models import categories as categories_repo
from models import rules as rules_repo

MAX_RULES_BYTES = 200_000


async def _active_body(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
    """The stored active rules (the database is the truth; the live index follows it within a
    second), or the built-in defaults as version 0."""
    active = await rules_repo.get_active(conn)
    if active is None:
        return 0, Rules().to_dict()
    version, body = active
    try:
        return version, Rules.from_dict(body).to_dict()
    except RulesError:
        return version, body


async def _render_rules(
    request: web.Request,
    *,
    rules_text: str | None = None,
    error: str = "",
    error_field: str = "",
    result: dict[str, Any] | None = None,
    chart_ctx: dict[str, Any] | None = None,
    last_n: int = 50,
    reason: str = "",
    notice: str = "",
    status: int = 200,
) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        version, body = await _active_body(conn)
        versions = await rules_repo.list_versions(conn, limit=20)
    if rules_text is None:
        rules_text = json.dumps(body, indent=2, sort_keys=True)
    return render(
        request,
        "admin/rules.html",
        {
            "rules_text": rules_text,
            "active_version": version,
            "live_version": request.app[LIVE].rules_version,
            "versions": versions,
            "error": error,
            "error_field": error_field,
            "result": result,
            "chart": chart_ctx,
            "last_n": last_n,
            "reason": reason,
            "notice": notice,
        },
        status=status,
    )


@page("admin")
async def rules_page(request: web.Request) -> web.StreamResponse:
    activated = request.query.get("activated", "")
    notice = f"Version {activated} is now active." if activated.isdigit() else ""
    return await _render_rules(request, notice=notice)


def _parse_rules(text: str) -> tuple[Rules | None, str, str]:
    """(rules, error message, error field)."""
    if len(text.encode()) > MAX_RULES_BYTES:
        return None, "The rules are too large.", ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.", ""
    try:
        return Rules.from_dict(data), "", ""
    except RulesError as exc:
        return None, f"{exc.field or 'rules'}: {exc.message}", exc.field


def _last_n(form: dict[str, Any]) -> int:
    raw = forms.text(form, "last_n")
    return max(1, min(int(raw), 500)) if raw.isdigit() and len(raw) < 5 else 50


async def _chart_for(
    request: web.Request, candidate: Rules, result: dict[str, Any], wanted: str
) -> dict[str, Any] | None:
    """The score chart of the chosen brief, or of the brief the change moves most."""
    per_brief = result["briefs"]
    if not per_brief:
        return None
    chosen = next((b for b in per_brief if str(b["brief_id"]) == wanted), None)
    if chosen is None:
        chosen = max(per_brief, key=lambda b: (len(b["gained"]) + len(b["lost"]), -b["brief_id"]))
    async with request.app[POOL].acquire() as conn:
        row = await briefs_repo.get(conn, chosen["brief_id"])
    if row is None:
        return None
    brief = briefs_repo.row_to_brief(row)
    dist, _version = await run_locked(
        request.app[LIVE], lambda m: chart.distribution(m, m.with_rules(candidate), brief)
    )
    names = result["seller_names"]
    return {
        "brief": chosen,
        "figure": chart.histogram(
            dist, f"Score distribution for brief {brief.id}: {brief.title}"
        ),
        "table": chart.bins_table(dist),
        "gained": [{"id": s, "name": names.get(str(s), f"Seller {s}")} for s in chosen["gained"]],
        "lost": [{"id": s, "name": names.get(str(s), f"Seller {s}")} for s in chosen["lost"]],
        "depth": chart.DEPTH,
    }


@page("admin")
async def preview_rules(request: web.Request) -> web.StreamResponse:
    form = request[FORM]
    text = forms.text(form, "rules")
    last_n = _last_n(form)
    candidate, error, field = _parse_rules(text)
    if candidate is None:
        return await _render_rules(
            request, rules_text=text, error=error, error_field=field, last_n=last_n, status=422
        )
    result = await what_if(request.app[POOL], request.app[LIVE], candidate, last_n=last_n)
    chart_ctx = await _chart_for(request, candidate, result, forms.text(form, "brief_id"))
    return await _render_rules(
        request,
        rules_text=text,
        result=result,
        chart_ctx=chart_ctx,
        last_n=last_n,
        reason=forms.text(form, "reason"),
    )


@page("admin")
async def fit_rules(request: web.Request) -> web.StreamResponse:
    """Fit from outcomes: the active rules with weights learnt from the recorded outcomes,
    opened in the what-if preview (nothing is stored or activated)."""
    from api.services.outcomes import propose_rules

    last_n = _last_n(request[FORM])
    try:
        version, proposal, info = await propose_rules(request.app[POOL])
    except ValueError as exc:
        return await _render_rules(
            request, error=f"Nothing to fit on yet: {exc}.", last_n=last_n, status=422
        )
    result = await what_if(request.app[POOL], request.app[LIVE], proposal, last_n=last_n)
    chart_ctx = await _chart_for(request, proposal, result, "")
    base = f"version {version}" if version else "the built-in defaults"
    briefs = f"{info['briefs']} brief" + ("" if info["briefs"] == 1 else "s")
    pairs = f"{info['pairs']} pair" + ("" if info["pairs"] == 1 else "s")
    notice = (
        f"Proposed weights fitted on {briefs} with outcomes ({pairs} of sellers), starting"
        f" from {base}. Nothing is active until you activate it."
    )
    return await _render_rules(
        request,
        rules_text=json.dumps(proposal.to_dict(), indent=2, sort_keys=True),
        result=result,
        chart_ctx=chart_ctx,
        last_n=last_n,
        notice=notice,
    )


def _reason(form: dict[str, Any]) -> str:
    return forms.text(form, "reason")[:2000]


@page("admin")
async def activate_rules(request: web.Request) -> web.StreamResponse:
    """Store the edited rules as a new version and activate it, with who, when and why."""
    form = request[FORM]
    text = forms.text(form, "rules")
    reason = _reason(form)
    candidate, error, field = _parse_rules(text)
    if candidate is None or not reason:
        return await _render_rules(
            request,
            rules_text=text,
            error=error or "Say why you are activating these rules (the reason is audited).",
            error_field=field or ("" if candidate is None else "reason"),
            reason=reason,
            status=422,
        )
    actor = request[ACCOUNT].id
    async with request.app[POOL].acquire() as conn:
        unknown = await categories_repo.unknown(conn, list(candidate.category_overrides))
    if unknown:
        return await _render_rules(
            request, rules_text=text, reason=reason, status=422,
            error=f"category_overrides: unknown category {unknown[0]!r} (not in the list).",
            error_field="category_overrides",
        )
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            version = await rules_service.create(
                conn, candidate.to_dict(), reason, actor, activate_it=True)
    except Conflict:
        return await _render_rules(
            request, rules_text=text, reason=reason, status=409,
            error="Another admin activated rules at the same moment; nothing was saved. "
            "Review the active rules and activate again if these should still win.",
            error_field="",
        )
    return redirect(f"/admin/rules?activated={version}")


async def _activate(conn: asyncpg.Connection, version: int, actor: int, reason: str) -> bool:
    try:
        await rules_service.activate(conn, version, actor, reason)
    except NotFound:
        return False
    return True


@page("admin")
async def reactivate(request: web.Request) -> web.StreamResponse:
    text = request.match_info.get("version", "")
    reason = _reason(request[FORM])
    if not text.isdigit() or len(text) > 9:
        return error_page(request, 404, "No such version", "There is no such rules version.")
    if not reason:
        return await _render_rules(
            request, error="Say why you are reactivating this version.", error_field="reason",
            status=422,
        )
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            ok = await _activate(conn, int(text), request[ACCOUNT].id, reason)
    except Conflict:
        return await _render_rules(
            request, status=409, error_field="",
            error="Another admin activated rules at the same moment; this version was not "
            "activated. Review the active rules and try again if it should still win.",
        )
    if not ok:
        return error_page(request, 404, "No such version", "There is no such rules version.")
    return redirect(f"/admin/rules?activated={int(text)}")


@page("admin")
async def failed_deliveries(request: web.Request) -> web.StreamResponse:
    from models import alerts  # WORKERS' repository

    async with request.app[POOL].acquire() as conn:
        items = await alerts.list_failed(conn, 200)
    redriven = request.query.get("redriven", "")
    return render(
        request,
        "admin/deliveries.html",
        {"items": items, "notice": f"Alert {redriven} queued again." if redriven.isdigit() else ""},
    )


@page("admin")
async def redrive(request: web.Request) -> web.StreamResponse:
    text = request.match_info.get("alert_id", "")
    if not text.isdigit() or len(text) > 18:
        return error_page(request, 404, "No such alert", "There is no such failed alert.")
    alert_id = int(text)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await alerts_service.redrive(conn, alert_id, request[ACCOUNT].id)
    except (NotFound, Conflict):
        return error_page(request, 404, "No such alert", "There is no such failed alert.")
    await alerts_service.kick_delivery(request.app)
    return redirect(f"/admin/deliveries?redriven={alert_id}")


@page("admin")
async def audit_log(request: web.Request) -> web.StreamResponse:
    before = request.query.get("before", "")
    entity = request.query.get("entity", "") or None
    async with request.app[POOL].acquire() as conn:
        events = await audit.list_events(
            conn,
            entity=entity if entity and len(entity) < 50 else None,
            before_id=int(before) if before.isdigit() and len(before) < 18 else None,
            limit=50,
        )
    return render(
        request,
        "admin/audit.html",
        {
            "events": events,
            "entity": entity or "",
            "next_before": events[-1]["id"] if len(events) == 50 else None,
        },
    )
