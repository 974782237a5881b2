"""Sign-in with a bearer token (the API's own tokens), sign-out, and the home redirect."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web

from api.keys import POOL
from api.web.session import (
    CSRF_FIELD,
    HOME,
    PRE_COOKIE,
    clear_session,
    current_account,
    form_data,
    new_presession,
    redirect,
    render,
    set_session,
)
from models import accounts


def _safe_next(value: str) -> str:
    """Only a local path: an open redirect after sign-in would help phishing. Browsers read a
    backslash as a slash (`/\\evil.example` is `//evil.example`) and drop tabs and newlines
    from URLs, so anything but printable ASCII is refused, and so is a second leading slash or
    backslash; a CR or LF would also break the Location header."""
    if not value.startswith("/") or value[1:2] in ("/", "\\"):
        return ""
    if not all("\x21" <= c <= "\x7e" for c in value) or "\\" in value:
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme or parts.netloc:
        return ""
    return value


def _render(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    pre = new_presession()
    response = render(
        request,
        "signin.html",
        {"pre_token": pre, "error": error, "next": _safe_next(request.query.get("next", ""))},
        status=status,
    )
    response.set_cookie(
        PRE_COOKIE, pre, httponly=True, samesite="Strict", secure=request.secure, path="/signin"
    )
    return response


async def home(request: web.Request) -> web.StreamResponse:
    account = await current_account(request)
    if account is None:
        return redirect("/signin")
    return redirect(HOME.get(account.role, "/signin"))


async def signin_form(request: web.Request) -> web.StreamResponse:
    return _render(request)


async def signin(request: web.Request) -> web.StreamResponse:
    form = await form_data(request) or {}
    given = form.get(CSRF_FIELD, "")
    expected = request.cookies.get(PRE_COOKIE, "")
    if not (isinstance(given, str) and expected and hmac.compare_digest(given, expected)):
        return _render(request, error="The form expired. Please try again.", status=403)
    token = form.get("token", "")
    token = token.strip() if isinstance(token, str) else ""
    async with request.app[POOL].acquire() as conn:
        account = await accounts.authenticate(conn, token) if token else None
    if account is None:
        return _render(
            request, error="That token is unknown, expired or revoked.", status=401
        )
    nxt = form.get("next", "")
    target = _safe_next(nxt if isinstance(nxt, str) else "") or HOME[account.role]
    response = redirect(target)
    set_session(response, request, token)
    response.del_cookie(PRE_COOKIE, path="/signin")
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    # Signing out only drops the cookie; it needs no CSRF check because forcing someone out is
    # harmless, and the token itself stays valid for the API (revoke it there).
    await form_data(request)
    response = redirect("/signin")
    clear_session(response)
    return response
