"""Seller pages: matched opportunities with "why you", alert settings, delivery history, and the
one-click unsubscribe link target (no sign-in: the signed token is the credential)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.keys import POOL, SETTINGS
from api.services import alerts as services
from api.web import forms
from api.web.session import ACCOUNT, FORM, error_page, form_data, page, redirect, render
from models import audit, preferences
from models import matches as matches_repo
from models.types import CATEGORIES

PAGE_SIZE = 50


def _seller_id(request: web.Request) -> int:
    seller_id = request[ACCOUNT].seller_id
    assert seller_id is not None  # the schema guarantees it for seller accounts
    return seller_id


@page("seller")
async def opportunities(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        items = await matches_repo.list_for_seller(conn, _seller_id(request), PAGE_SIZE)
    return render(request, "seller/opportunities.html", {"items": items})


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


def _render_settings(
    request: web.Request,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    status: int = 200,
    notice: str = "",
) -> web.Response:
    return render(
        request,
        "seller/settings.html",
        {"values": values, "errors": errors, "categories": CATEGORIES, "notice": notice},
        status=status,
    )


@page("seller")
async def settings_form(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        prefs = await preferences.get(conn, _seller_id(request))
    notice = "Alert settings saved." if request.query.get("saved") else ""
    return _render_settings(request, _settings_values(prefs), {}, notice=notice)


@page("seller")
async def save_settings(request: web.Request) -> web.StreamResponse:
    form = request[FORM]
    fields, errors = forms.preference_fields(form)
    if fields["frequency"] != "off" and not (fields.get("email") or fields.get("webhook_url")):
        errors.setdefault("email", "give an e-mail address or a webhook URL to receive alerts")
    if fields.get("webhook_url") and "webhook_url" not in errors:
        problem = await services.webhook_problem(request.app, fields["webhook_url"])
        if problem:
            errors["webhook_url"] = problem
    if errors:
        values = dict(form)
        values["categories"] = forms.values(form, "categories")
        values["paused"] = forms.text(form, "paused") == "on"
        return _render_settings(request, values, errors, status=422)
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


def _verify(request: web.Request) -> int | None:
    from workers.unsubscribe import signing_key, verify_token

    settings = request.app[SETTINGS]
    key = signing_key(settings.secret_key, settings.database_url)
    return verify_token(key, request.match_info.get("token", ""))


async def unsubscribe_confirm(request: web.Request) -> web.StreamResponse:
    """GET never changes anything (mail scanners follow links): it shows a confirm button."""
    if _verify(request) is None:
        return error_page(request, 404, "Link not valid", "This unsubscribe link is not valid.")
    token = request.match_info["token"]
    return render(request, "seller/unsubscribe.html", {"token": token, "done": False})


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    """POST unsubscribes: the confirm button, and RFC 8058 one-click POSTs from mail clients
    (`List-Unsubscribe=One-Click`). No CSRF token: the signed link is the only credential and
    unsubscribing is idempotent."""
    seller_id = _verify(request)
    if seller_id is None:
        return error_page(request, 404, "Link not valid", "This unsubscribe link is not valid.")
    await form_data(request)  # drain the body; its content does not matter
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await preferences.unsubscribe(conn, seller_id):
            await audit.record(
                conn, actor_id=None, action="preferences.unsubscribed", entity="seller",
                entity_id=seller_id, data={"via": "link"},
            )
    return render(request, "seller/unsubscribe.html", {"token": "", "done": True})
