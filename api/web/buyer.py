"""Buyer pages: own briefs, the brief editor with a live shortlist preview, publishing, the
stored shortlist."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from api.errors import ApiError
from api.invitations import invite as invite_sellers
from api.invitations import is_open
from api.keys import LIVE, POOL
from api.services import briefs as services
from api.services.alerts import kick_delivery
from api.web import forms
from api.web.session import ACCOUNT, FORM, error_page, page, redirect, render
from models import audit
from models import briefs as briefs_repo
from models import categories as categories_repo
from models import invitations as invitations_repo
from models import matches as matches_repo
from models.accounts import Account
from models.types import Brief

PREVIEW_SIZE = 10
SHORTLIST_SIZE = 50


def _brief_id(request: web.Request) -> int | None:
    text = request.match_info.get("brief_id", "")
    return int(text) if text.isdigit() and len(text) < 19 else None


def _owned(account: Account, row: asyncpg.Record | None) -> bool:
    """The API's rule (api.auth.check_brief_access): a buyer sees its own briefs, an admin all;
    anything else looks exactly like a missing brief."""
    if row is None:
        return False
    return account.role == "admin" or row["buyer_account_id"] == account.id


async def _visible_brief(
    request: web.Request, conn: asyncpg.Connection
) -> asyncpg.Record | None:
    """The brief named in the path if this account may see it, else None (shown as 404)."""
    brief_id = _brief_id(request)
    if brief_id is None:
        return None
    row = await briefs_repo.get(conn, brief_id)
    return row if _owned(request[ACCOUNT], row) else None


def _not_found(request: web.Request) -> web.Response:
    return error_page(request, 404, "No such brief", "There is no brief with that number.")


def _form_values(row: asyncpg.Record | dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"title": "", "summary": "", "category": "", "location": "",
                "essential_skills": "", "nice_to_have_skills": "", "max_day_rate": ""}
    rate = row["max_day_rate"]
    return {
        "title": row["title"],
        "summary": row["summary"],
        "category": row["category"],
        "location": row["location"],
        "essential_skills": "\n".join(row["essential_skills"]),
        "nice_to_have_skills": "\n".join(row["nice_to_have_skills"]),
        "max_day_rate": "" if rate is None else f"{rate:g}",
    }


async def _render_editor(
    request: web.Request,
    *,
    row: asyncpg.Record | None,
    values: dict[str, Any],
    errors: dict[str, str],
    preview: list[dict[str, Any]] | None,
    status: int = 200,
    notice: str = "",
) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        categories = await categories_repo.list_all(conn)
    return render(
        request,
        "buyer/edit.html",
        {
            "brief": row,
            "values": values,
            "errors": errors,
            "categories": categories,
            "preview": preview,
            "notice": notice,
        },
        status=status,
    )


async def preview_items(
    request: web.Request, fields: dict[str, Any], organisation: str
) -> list[dict[str, Any]]:
    """The draft scored in this process with the live index: the shortlist as it would be."""
    brief = Brief(
        id=0,
        title=fields.get("title", ""),
        summary=fields.get("summary", ""),
        category=fields.get("category", ""),
        location=fields.get("location", ""),
        organisation=organisation,
        essential_skills=fields.get("essential_skills", []),
        nice_to_have_skills=fields.get("nice_to_have_skills", []),
        max_day_rate=fields.get("max_day_rate"),
    )
    if not (brief.title or brief.summary or brief.essential_skills):
        return []
    live = request.app[LIVE]
    # Through the live index's lock: its incremental updates run in a thread meanwhile.
    matches = await live.match(brief, top_k=PREVIEW_SIZE)
    return [
        {
            "seller_id": m.seller_id,
            "seller_name": live.seller_name(m.seller_id) or f"Seller {m.seller_id}",
            "score": m.score,
            "rank": m.rank,
            "explanation": m.explanation,
        }
        for m in matches
    ]


async def _check_category(
    request: web.Request, fields: dict[str, Any], errors: dict[str, str]
) -> None:
    """The chosen category must be in the marketplace's list (api.categories' rule)."""
    category = fields.get("category") or ""
    if category and "category" not in errors:
        async with request.app[POOL].acquire() as conn:
            if await categories_repo.unknown(conn, [category]):
                errors["category"] = "choose a category from the list"


@page("buyer")
async def list_briefs(request: web.Request) -> web.StreamResponse:
    account = request[ACCOUNT]
    async with request.app[POOL].acquire() as conn:
        rows = await briefs_repo.list_page(conn, buyer_account_id=account.id, limit=200)
    return render(request, "buyer/list.html", {"briefs": rows})


@page("buyer")
async def new_brief(request: web.Request) -> web.StreamResponse:
    return await _render_editor(
        request, row=None, values=_form_values(None), errors={}, preview=None
    )


@page("buyer")
async def create_brief(request: web.Request) -> web.StreamResponse:
    account = request[ACCOUNT]
    form = request[FORM]
    fields, errors = forms.brief_fields(form, strict=False)
    await _check_category(request, fields, errors)
    if errors:
        return await _render_editor(
            request, row=None, values=form, errors=errors, preview=None, status=422
        )
    fields["organisation"] = account.organisation
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await briefs_repo.create(conn, fields, buyer_account_id=account.id)
        await audit.record(
            conn, actor_id=account.id, action="brief.created", entity="brief",
            entity_id=row["id"], data={"via": "web"},
        )
    return redirect(f"/buyer/briefs/{row['id']}?saved=1")


@page("buyer", "admin")
async def show_brief(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        row = await _visible_brief(request, conn)
        if row is None:
            return _not_found(request)
        shortlist: list[dict[str, Any]] = []
        invited: set[int] = set()
        if row["status"] != "draft":
            shortlist = await matches_repo.list_for_brief(conn, row["id"], SHORTLIST_SIZE)
            invited = await invitations_repo.invited_ids(conn, row["id"])
    if row["status"] == "draft" and request[ACCOUNT].role == "buyer":
        notice = "Draft saved." if request.query.get("saved") else ""
        preview = await preview_items(request, dict(row), row["organisation"])
        return await _render_editor(
            request, row=row, values=_form_values(row), errors={}, preview=preview, notice=notice
        )
    return render(
        request,
        "buyer/show.html",
        {
            "brief": row,
            "shortlist": shortlist,
            "published_now": bool(request.query.get("published")),
            "invited": invited,
            "can_invite": is_open(row),
            "notice": _invited_notice(request.query.get("invited", "")),
        },
    )


def _invited_notice(text: str) -> str:
    if not text.isdigit() or len(text) > 4:
        return ""
    n = int(text)
    if n == 0:
        return "Those sellers were invited already."
    return f"Invited {n} seller{'s' if n != 1 else ''}."


@page("buyer", "admin")
async def shortlist_fragment(request: web.Request) -> web.StreamResponse:
    """The stored shortlist alone: the brief page polls it while the worker computes it."""
    async with request.app[POOL].acquire() as conn:
        row = await _visible_brief(request, conn)
        if row is None:
            return _not_found(request)
        items = await matches_repo.list_for_brief(conn, row["id"], SHORTLIST_SIZE)
        invited = await invitations_repo.invited_ids(conn, row["id"])
    return render(
        request,
        "buyer/_shortlist.html",
        {"items": items, "stored": True, "pending": not items, "invited": invited,
         "can_invite": is_open(row)},
    )


@page("buyer", "admin")
async def invite(request: web.Request) -> web.StreamResponse:
    """The stored shortlist's "Invite" button: the ticked sellers (API rules, api.invitations)."""
    brief_id = _brief_id(request)
    if brief_id is None:
        return _not_found(request)
    raw = forms.values(request[FORM], "seller_id")
    ids = [int(v) for v in raw if v.isdigit() and len(v) < 19]
    if not ids or len(ids) != len(raw):
        return error_page(request, 422, "Nobody to invite", "Tick at least one seller to invite.")
    account = request[ACCOUNT]
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row = await briefs_repo.get(conn, brief_id, for_update=True)
            if not _owned(account, row):
                return _not_found(request)
            assert row is not None
            result = await invite_sellers(conn, row, ids, account.id, via="web")
    except ApiError as exc:
        return error_page(request, exc.status, "Not invited", exc.message)
    if result["alerted"]:
        await kick_delivery(request.app)
    return redirect(f"/buyer/briefs/{brief_id}?invited={len(result['invited'])}")


async def _load_draft(
    request: web.Request, conn: asyncpg.Connection, brief_id: int
) -> tuple[asyncpg.Record | None, web.Response | None]:
    row = await briefs_repo.get(conn, brief_id, for_update=True)
    if not _owned(request[ACCOUNT], row):
        return None, _not_found(request)
    assert row is not None
    if row["status"] != "draft":
        return None, error_page(
            request, 409, "Already published", "Only a draft can be changed or published."
        )
    return row, None


@page("buyer")
async def save_or_publish(request: web.Request) -> web.StreamResponse:
    """One form, two buttons: "Save draft" and "Publish" (the button's name says which)."""
    account = request[ACCOUNT]
    brief_id = _brief_id(request)
    if brief_id is None:
        return _not_found(request)
    form = request[FORM]
    publishing = forms.text(form, "action") == "publish"
    fields, errors = forms.brief_fields(form, strict=publishing)
    await _check_category(request, fields, errors)
    published: tuple[int, list[Any]] | None = None  # (outbox id, job args)
    async with request.app[POOL].acquire() as conn:
        async with conn.transaction():
            row, failure = await _load_draft(request, conn, brief_id)
            if failure is not None:
                return failure
            if errors:
                return await _render_editor(
                    request, row=row, values=form, errors=errors, preview=None, status=422
                )
            await briefs_repo.update(conn, brief_id, fields)
            await audit.record(
                conn, actor_id=account.id, action="brief.updated", entity="brief",
                entity_id=brief_id, data={"via": "web"},
            )
            if publishing:
                _, outbox_id, args = await services.publish(conn, brief_id, account.id)
                published = (outbox_id, args)
    if published is not None:
        await services.enqueue_after_commit(request.app, *published)
        return redirect(f"/buyer/briefs/{brief_id}?published=1")
    return redirect(f"/buyer/briefs/{brief_id}?saved=1")


@page("buyer")
async def preview(request: web.Request) -> web.StreamResponse:
    """The live shortlist preview as an HTML fragment (the editor's script swaps it in)."""
    fields, errors = forms.brief_fields(request[FORM], strict=False, preview=True)
    items = await preview_items(request, fields, request[ACCOUNT].organisation)
    return render(
        request,
        "buyer/_shortlist.html",
        {"items": items, "stored": False, "pending": False, "errors": errors},
    )
