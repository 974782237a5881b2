"""What a browser is told: sign-in redirects only to local paths, and every answer carries the
security headers (no framing, no sniffing, our own scripts only) and no server software name."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import Market, csrf_of, sign_in

OFF_SITE = [
    "/\\evil.example/x", "//evil.example/x", "/\\/evil.example", "https://evil.example/",
    "/\t/evil.example", "/x\r\nSet-Cookie: a=b", "/x\nLocation: //evil.example",
    "javascript:alert(1)", "/%0d%0aX: y\r\n", "\\\\evil.example", "/\u2028/evil.example",
]


@pytest.mark.parametrize("nxt", OFF_SITE)
async def test_signin_redirects_only_to_local_paths(
    client: TestClient, market: Market, nxt: str
) -> None:
    html = await (await client.get("/signin")).text()
    resp = await client.post(
        "/signin", data={"csrf_token": csrf_of(html), "token": market.buyer_token, "next": nxt},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/buyer/briefs"


async def test_signin_keeps_a_local_next(client: TestClient, market: Market) -> None:
    html = await (await client.get("/signin")).text()
    resp = await client.post(
        "/signin",
        data={"csrf_token": csrf_of(html), "token": market.buyer_token,
              "next": "/buyer/briefs?page=2"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/buyer/briefs?page=2"


@pytest.mark.parametrize(
    "path", ["/signin", "/api/v1/sellers", "/static/site.css", "/no/such/page", "/health"]
)
async def test_every_answer_carries_the_security_headers(client: TestClient, path: str) -> None:
    resp = await client.get(path, allow_redirects=False)
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "object-src 'none'" in csp
    assert resp.headers.get("X-Frame-Options") == "DENY"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    server = resp.headers.get("Server", "")
    assert "aiohttp" not in server.lower() and "python" not in server.lower()


async def test_a_webhook_needs_a_secret_on_the_settings_page(
    client: TestClient, market: Market
) -> None:
    sign_in(client, market.seller_token)
    csrf = csrf_of(await (await client.get("/seller/settings")).text())
    form = {"csrf_token": csrf, "frequency": "instant", "min_score": "0",
            "webhook_url": "http://127.0.0.1:9/hook"}
    bad = await client.post("/seller/settings", data=form, allow_redirects=False)
    assert bad.status == 422
    assert "every delivery is signed with it" in await bad.text()
    ok = await client.post("/seller/settings", data={**form, "webhook_secret": "s" * 20},
                           allow_redirects=False)
    assert ok.status == 303
    # The stored secret is kept when the field is left empty.
    again = await client.post("/seller/settings", data=form, allow_redirects=False)
    assert again.status == 303
