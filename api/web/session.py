"""Page sessions: a server-side session (models.sessions) whose random id is kept in an
HttpOnly, SameSite=Strict cookie, Secure when MARKETPLACE_PUBLIC_URL is https. The API token
typed at sign-in never goes into the cookie.

A session expires after models.sessions.SESSION_SECONDS, ends at sign-out (revoked on the
server: the old cookie value stops working), and ends when the token it was opened with is
revoked or expires. A cookie that names no live session counts as a failed authentication in
the address throttle (api.limits), like a wrong bearer token. Permission checks are the API's
own (`api.auth.check_brief_access`, ...).

CSRF: SameSite=Strict already keeps the cookie off cross-site requests; as a second line every
POST form carries a per-session token, HMAC-SHA256 keyed by the session id. It needs no more
server state, is the same in every API process, and reveals nothing about the session id.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from api.keys import POOL, SETTINGS
from api.limits import AUTHENTICATED, FAILED_AUTHENTICATION
from models import sessions
from models.accounts import Account

COOKIE = "mm_session"
PRE_COOKIE = "mm_presession"  # double-submit CSRF cookie for the sign-in form itself
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ACCOUNT: web.RequestKey[Account] = web.RequestKey("web_account", Account)
TOKEN: web.RequestKey[str] = web.RequestKey("web_session_id", str)  # keys the CSRF token
MAX_FORM_BYTES = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOME = {"buyer": "/buyer/briefs", "seller": "/seller", "admin": "/admin/rules"}


def csrf_for(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"marketplace-page-csrf", hashlib.sha256).hexdigest()


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies behind HTTPS: the public URL says so even when a proxy ends TLS."""
    public_url = request.app[SETTINGS].public_url or ""
    return request.secure or public_url.lower().startswith("https://")


def set_session(response: web.StreamResponse, request: web.Request, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
        path="/",
        max_age=sessions.SESSION_SECONDS,
    )


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


def new_presession() -> str:
    return secrets.token_urlsafe(24)


def redirect(location: str) -> web.Response:
    # Returned, not raised: a raised HTTPException would pass through the API's JSON error
    # middleware, and a 303 turns a form POST into a GET of the next page.
    return web.Response(status=303, headers={"Location": location})


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render with the page globals (signed-in account, its CSRF token, current path). Not an
    aiohttp-jinja2 context processor: those run before the handler has authenticated."""
    return aiohttp_jinja2.render_template(
        template, request, {**base_context(request), **context}, status=status
    )


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


async def current_account(request: web.Request) -> Account | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    async with request.app[POOL].acquire() as conn:
        account = await sessions.authenticate(conn, session_id)
    if account is None:
        request[FAILED_AUTHENTICATION] = True  # counted like a wrong token (api.limits)
        return None
    request[ACCOUNT] = account
    request[TOKEN] = session_id
    request[AUTHENTICATED] = True
    return account


async def form_data(request: web.Request) -> dict[str, Any] | None:
    """The posted form as a dict of str -> str | list[str] (repeated fields), or None when the
    body is too large or not a form."""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return None
    try:
        data = await request.post()
    except Exception:  # malformed or oversized bodies are a 400, never a 500
        return None
    out: dict[str, Any] = {}
    for key in data:
        values = [v for v in data.getall(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


def csrf_ok(request: web.Request, form: dict[str, Any] | None) -> bool:
    token = request.get(TOKEN)
    if not token:
        return False
    given = request.headers.get(CSRF_HEADER) or (form or {}).get(CSRF_FIELD) or ""
    return isinstance(given, str) and hmac.compare_digest(given, csrf_for(token))


FORM: web.RequestKey[dict[str, Any]] = web.RequestKey("web_form", dict)


def page(*roles: str) -> Callable[[Handler], Handler]:
    """Require a signed-in account with one of `roles`; on POST also a valid CSRF token. The
    parsed form is in `request[FORM]`."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            account = await current_account(request)
            if account is None:
                if request.method == "GET":
                    return redirect("/signin?next=" + quote(request.path_qs, safe=""))
                return error_page(request, 401, "Signed out", "Please sign in again.")
            if account.role not in roles:
                return error_page(
                    request, 403, "Not allowed", f"A {account.role} account cannot open this page."
                )
            if request.method == "POST":
                form = await form_data(request)
                if form is None:
                    return error_page(request, 400, "Bad form", "The form could not be read.")
                if not csrf_ok(request, form):
                    return error_page(
                        request,
                        403,
                        "Form expired",
                        "The form's security token is missing or wrong. Reload the page and "
                        "try again.",
                    )
                request[FORM] = form
            return await handler(request)

        return inner

    return wrap


def base_context(request: web.Request) -> dict[str, Any]:
    account = request.get(ACCOUNT)
    token = request.get(TOKEN)
    return {
        "account": account,
        "csrf_token": csrf_for(token) if token else "",
        "path": request.path,
    }
