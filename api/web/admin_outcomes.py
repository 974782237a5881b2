"""Admin pages for outcomes: the queue of seller claims (approve or reject, each with an audit
event) and the outcomes funnel per rules version and category."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from api.errors import ApiError
from api.keys import POOL
from api.services.claims import decide_claim
from api.services.outcomes import OutcomesQuery, funnel
from api.web import forms
from api.web.session import ACCOUNT, FORM, error_page, page, redirect, render
from models import categories as categories_repo
from models import claims as claims_repo

QUEUE_SIZE = 200


@page("admin")
async def claims_page(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        items = await claims_repo.list_all(conn, status="pending", limit=QUEUE_SIZE)
        labels = {c["id"]: c["label"] for c in await categories_repo.list_all(conn)}
    notice = ""
    for action in ("approved", "rejected"):
        done = request.query.get(action, "")
        if done.isdigit():
            notice = f"Claim {done} {action}."
    return render(request, "admin/claims.html",
                  {"items": items, "labels": labels, "notice": notice, "limit": QUEUE_SIZE})


def _path_int(request: web.Request, name: str) -> int | None:
    text = request.match_info.get(name, "")
    return int(text) if text.isdigit() and len(text) < 19 else None


@page("admin")
async def decide(request: web.Request) -> web.StreamResponse:
    seller_id, claim_id = _path_int(request, "seller_id"), _path_int(request, "claim_id")
    action = request.match_info.get("action", "")
    status = {"approve": "approved", "reject": "rejected"}.get(action)
    if seller_id is None or claim_id is None or status is None:
        return error_page(request, 404, "No such claim", "There is no such claim.")
    note = forms.text(request[FORM], "note")[:2000]
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await decide_claim(conn, seller_id, claim_id, status,  # type: ignore[arg-type]
                               request[ACCOUNT].id, note, via="web")
    except ApiError as exc:
        title = {404: "No such claim", 409: "Already decided"}.get(exc.status, "Not possible")
        return error_page(request, exc.status, title, exc.message[:1].upper() + exc.message[1:]
                          + ".")
    return redirect(f"/admin/claims?{status}={claim_id}")


@page("admin")
async def outcomes_page(request: web.Request) -> web.StreamResponse:
    raw = {k: v for k, v in request.query.items() if v}
    errors: dict[str, str] = {}
    try:
        q = OutcomesQuery.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors(include_url=False, include_input=False):
            errors.setdefault(str(e["loc"][0]) if e["loc"] else "query", e["msg"])
        q = OutcomesQuery.model_validate({})
    async with request.app[POOL].acquire() as conn:
        data: dict[str, Any] = await funnel(
            conn, rules_version=q.rules_version, category=q.category, since=q.since
        )
        categories = await categories_repo.list_all(conn)
    return render(
        request,
        "admin/outcomes.html",
        {"data": data, "categories": categories, "values": raw, "errors": errors,
         "labels": {c["id"]: c["label"] for c in categories}},
        status=422 if errors else 200,
    )
