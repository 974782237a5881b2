"""Security headers on every answer (API, pages, static files, errors): the pages load only our
own scripts and styles, cannot be framed, and no answer names the server software."""

from __future__ import annotations

from aiohttp import web

# The pages use no inline script or style and no third-party origin (the brief editor's
# preview is a same-origin fetch), so 'self' is all they need.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # aiohttp would otherwise send "Python/3.x aiohttp/3.x" (it only sets Server when unset).
    "Server": "marketplace",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers[name] = value


def setup_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
