"""Seller pages: opportunities with "why you" and answer buttons, one opportunity's page (where
alerts link to), alert settings, delivery history, and the targets of the signed links in
alerts, one-click unsubscribe and one-click answers (no sign-in: the signed token is the
credential; GET shows a confirm button, POST acts)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.errors import ApiError
from api.keys import POOL, SETTINGS
from api.netguard import WEBHOOK_SECRET_NEEDED
from api.services import alerts as services
from api.services.responses import record_response
from api.web import forms
from api.web.session import ACCOUNT, FORM, error_page, form_data, page, redirect, render
from models import audit, preferences
from models import categories as categories_repo
from models import opportunities as opportunities_repo
from workers.links import Expired, Links, links_for

PAGE_SIZE = 50


def _seller_id(request: web.Request) -> int:
    seller_id = request[ACCOUNT].seller_id
    assert seller_id is not None  # the schema guarantees it for seller accounts
    return seller_id


RESPONSE_LABELS = {"interested": "Interested", "not_for_me": "Not for me", "applied": "Applied"}
REASON_LABELS = {
    "skills": "Not our skills", "size": "Too big or too small for us", "location": "Location",
    "rate": "Day rate or budget", "timing": "Timing", "other": "Another reason",
}
_LABELS = {"response_labels": RESPONSE_LABELS, "reason_labels": REASON_LABELS}
_NOTICES = {
    "interested": "Recorded: you are interested.",
    "not_for_me": "Recorded: not for you.",
    "applied": "Recorded: you applied.",
}


def _brief_id(request: web.Request) -> int | None:
    text = request.match_info.get("brief_id", "")
    return int(text) if text.isdigit() and len(text) < 19 else None


@page("seller")
async def opportunities(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        items = await opportunities_repo.list_for_seller(conn, _seller_id(request), PAGE_SIZE)
    notice = _NOTICES.get(request.query.get("answered", ""), "")
    return render(
        request, "seller/opportunities.html", {"items": items, "notice": notice, **_LABELS}
    )


@page("seller")
async def opportunity(request: web.Request) -> web.StreamResponse:
    """One opportunity: the brief, why you, and the answer buttons (alerts link here)."""
    brief_id = _brief_id(request)
    item = None
    if brief_id is not None:
        async with request.app[POOL].acquire() as conn:
            item = await opportunities_repo.get(conn, brief_id, _seller_id(request))
    if item is None:
        return error_page(
            request, 404, "No such opportunity", "This brief is not one of your opportunities."
        )
    notice = _NOTICES.get(request.query.get("answered", ""), "")
    return render(request, "seller/opportunity.html", {"o": item, "notice": notice, **_LABELS})


@page("seller")
async def respond(request: web.Request) -> web.StreamResponse:
    """The answer buttons of the opportunity pages (a form POST with the page's CSRF token)."""
    brief_id = _brief_id(request)
    if brief_id is None:
        return error_page(request, 404, "No such opportunity", "There is no such brief.")
    form = request[FORM]
    response = forms.text(form, "response")
    # One form holds every button and the reason list: the reason counts for "not for me" only.
    reason = (forms.text(form, "reason") or None) if response == "not_for_me" else None
    if response not in RESPONSE_LABELS or (reason is not None and reason not in REASON_LABELS):
        return error_page(request, 422, "Not an answer", "Choose one of the answer buttons.")
    detail = forms.text(form, "back") == "detail"
    back = f"/seller/opportunities/{brief_id}" if detail else "/seller"
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await record_response(
                conn, _seller_id(request), brief_id, response, reason,
                actor_id=request[ACCOUNT].id, via="web",
            )
    except ApiError as exc:
        return error_page(request, exc.status, "Answer not recorded", exc.message)
    return redirect(f"{back}?answered={response}")


def _settings_values(prefs: dict[str, Any] | None) -> dict[str, Any]:
    p = prefs or {}
    min_score = p.get("min_score") or 0.0
    return {
        "frequency": p.get("frequency", "off" if prefs is None else "instant"),
        "email": p.get("email") or "",
        "webhook_url": p.get("webhook_url") or "",
        "has_secret": bool(p.get("webhook_secret")),
        "categories": list(p.get("categories") or []),
        "locations": "\n".join(p.get("locations") or []),
        "keywords": "\n".join(p.get("keywords") or []),
        "exclude_keywords": "\n".join(p.get("exclude_keywords") or []),
        "min_score": f"{min_score:g}",
        "paused": bool(p.get("paused")),
    }


async def _render_settings(
    request: web.Request,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status: int = 200,
    notice: str = "",
) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        categories = await categories_repo.list_all(conn)
    return render(
        request,
        "seller/settings.html",
        {"values": values, "errors": errors, "categories": categories, "notice": notice},
        status=status,
    )


@page("seller")
async def settings_form(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        prefs = await preferences.get(conn, _seller_id(request))
    notice = "Alert settings saved." if request.query.get("saved") else ""
    return await _render_settings(request, _settings_values(prefs), {}, notice=notice)


@page("seller")
async def save_settings(request: web.Request) -> web.StreamResponse:
    form = request[FORM]
    fields, errors = forms.preference_fields(form)
    if fields["frequency"] != "off" and not (fields.get("email") or fields.get("webhook_url")):
        errors.setdefault("email", "give an e-mail address or a webhook URL to receive alerts")
    if fields.get("categories") and "categories" not in errors:
        async with request.app[POOL].acquire() as conn:
            if await categories_repo.unknown(conn, fields["categories"]):
                errors["categories"] = "choose categories from the list"
    if fields.get("webhook_url") and "webhook_url" not in errors:
        problem = await services.webhook_problem(request.app, fields["webhook_url"])
        if problem:
            errors["webhook_url"] = problem
    seller_id = _seller_id(request)
    if fields.get("webhook_url") and not fields.get("webhook_secret"):
        async with request.app[POOL].acquire() as conn:
            stored = await preferences.get(conn, seller_id)
        if not (stored and stored.get("webhook_secret")):
            errors.setdefault("webhook_secret", WEBHOOK_SECRET_NEEDED)
    if errors:
        values = dict(form)
        values["categories"] = forms.values(form, "categories")
        values["paused"] = forms.text(form, "paused") == "on"
        return await _render_settings(request, values, errors, status=422)
    seller_id = _seller_id(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await services.save_preferences(conn, seller_id, request[ACCOUNT].id, fields)
    return redirect("/seller/settings?saved=1")


@page("seller")
async def deliveries(request: web.Request) -> web.StreamResponse:
    from models import alerts  # WORKERS' repository

    async with request.app[POOL].acquire() as conn:
        items = await alerts.list_for_seller(conn, _seller_id(request), PAGE_SIZE, 0)
    return render(request, "seller/deliveries.html", {"items": items})


def _links(request: web.Request) -> Links:
    return links_for(request.app[SETTINGS])


def _bad_link(request: web.Request, what: str, expired: bool) -> web.Response:
    if expired:
        return error_page(
            request, 410, "Link expired",
            f"This {what} link has expired. Sign in to answer or change your alert settings.",
        )
    # Links signed before a key or format change land here too: say where the same action is.
    return error_page(
        request, 404, "Link not valid",
        f"This {what} link is not valid. Sign in to answer or change your alert settings.",
    )


def _verify_unsubscribe(request: web.Request) -> tuple[int | None, bool]:
    """(seller id or None, expired)."""
    try:
        return _links(request).verify_unsubscribe(request.match_info.get("token", "")), False
    except Expired:
        return None, True


async def unsubscribe_confirm(request: web.Request) -> web.StreamResponse:
    """GET never changes anything (mail scanners follow links): it shows a confirm button."""
    seller_id, expired = _verify_unsubscribe(request)
    if seller_id is None:
        return _bad_link(request, "unsubscribe", expired)
    token = request.match_info["token"]
    return render(request, "seller/unsubscribe.html", {"token": token, "done": False})


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    """POST unsubscribes: the confirm button, and RFC 8058 one-click POSTs from mail clients
    (`List-Unsubscribe=One-Click`). No CSRF token: the signed link is the only credential and
    unsubscribing is idempotent."""
    seller_id, expired = _verify_unsubscribe(request)
    if seller_id is None:
        return _bad_link(request, "unsubscribe", expired)
    await form_data(request)  # drain the body; its content does not matter
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await preferences.unsubscribe(conn, seller_id):
            await audit.record(
                conn, actor_id=None, action="preferences.unsubscribed", entity="seller",
                entity_id=seller_id, data={"via": "link"},
            )
    return render(request, "seller/unsubscribe.html", {"token": "", "done": True})


def _verify_response(request: web.Request) -> tuple[tuple[int, int, str] | None, bool]:
    """((seller id, brief id, answer) or None, expired)."""
    try:
        return _links(request).verify_response(request.match_info.get("token", "")), False
    except Expired:
        return None, True


async def response_confirm(request: web.Request) -> web.StreamResponse:
    """GET of a one-click answer link: shows the brief and a confirm button (and, for "not for
    me", an optional reason); changes nothing."""
    signed, expired = _verify_response(request)
    if signed is None:
        return _bad_link(request, "answer", expired)
    seller_id, brief_id, response = signed
    async with request.app[POOL].acquire() as conn:
        item = await opportunities_repo.get(conn, brief_id, seller_id)
    if item is None:
        return error_page(request, 404, "No such opportunity", "This brief is no longer listed.")
    return render(request, "seller/respond.html", {
        "o": item, "response": response, "token": request.match_info["token"], "done": False,
        **_LABELS,
    })


async def response_link(request: web.Request) -> web.StreamResponse:
    """POST of the confirm page records the answer. No CSRF token: the signed link is the only
    credential, it names one seller, brief and answer, and recording it twice changes nothing.
    The reason (optional, "not for me" only) comes from the form and is checked."""
    signed, expired = _verify_response(request)
    if signed is None:
        return _bad_link(request, "answer", expired)
    seller_id, brief_id, response = signed
    form = await form_data(request) or {}
    reason = forms.text(form, "reason") or None
    if reason is not None and (response != "not_for_me" or reason not in REASON_LABELS):
        return error_page(request, 422, "Not a reason", "Choose one of the listed reasons.")
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await record_response(
                conn, seller_id, brief_id, response, reason, actor_id=None, via="link"
            )
            item = await opportunities_repo.get(conn, brief_id, seller_id)
    except ApiError as exc:
        return error_page(request, exc.status, "Answer not recorded", exc.message)
    return render(request, "seller/respond.html", {
        "o": item, "response": response, "token": "", "done": True, **_LABELS,
    })
