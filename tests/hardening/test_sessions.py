"""Web sessions are server-side: the cookie holds a random session id (never the API token),
which expires, is revoked by sign-out and by revoking the token, is counted like a wrong token
when it is guessed, and is Secure when the public URL is https."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import aiohttp

from api.limits import Limits
from tests.hardening.conftest import Serve, World

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


async def _sign_in(http: aiohttp.ClientSession, world: World, role: str
                   ) -> tuple[aiohttp.ClientResponse, SimpleCookie]:
    """The sign-in form by hand (cookies read from Set-Cookie: a Secure one is not replayed
    over http by a client jar)."""
    page = await http.get(world.url("/signin"))
    jar = SimpleCookie(page.headers.get("Set-Cookie", ""))
    csrf = _CSRF.search(await page.text())
    assert csrf
    r = await http.post(
        world.url("/signin"), allow_redirects=False,
        data={"csrf_token": csrf.group(1), "token": world.users[role].token},
        headers={"Cookie": f"mm_presession={jar['mm_presession'].value}"},
    )
    assert r.status == 303, await r.text()
    return r, SimpleCookie(r.headers.getall("Set-Cookie")[0])


async def _page(http: aiohttp.ClientSession, world: World, session: str) -> int:
    r = await http.get(world.url("/buyer/briefs"), allow_redirects=False,
                       headers={"Cookie": f"mm_session={session}"})
    return r.status


async def test_the_cookie_is_a_server_side_session(serve: Serve) -> None:
    async with serve(pages=True) as world, \
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        _, cookie = await _sign_in(http, world, "buyer")
        session = cookie["mm_session"].value
        assert session != world.users["buyer"].token
        assert cookie["mm_session"]["httponly"] and cookie["mm_session"]["samesite"] == "Strict"
        assert int(cookie["mm_session"]["max-age"]) == 12 * 3600
        assert not cookie["mm_session"]["secure"]  # plain http public URL
        assert await _page(http, world, session) == 200
        # The API token itself is no page session.
        assert await _page(http, world, world.users["buyer"].token) == 303
        # Sign-out revokes it on the server: a copied cookie is worthless afterwards.
        r = await http.post(world.url("/signout"), allow_redirects=False,
                            headers={"Cookie": f"mm_session={session}"})
        assert r.status == 303
        assert await _page(http, world, session) == 303
        # Expiry and token revocation end a session too.
        _, cookie = await _sign_in(http, world, "buyer")
        expiring = cookie["mm_session"].value
        _, cookie = await _sign_in(http, world, "buyer")
        revoked = cookie["mm_session"].value
        async with world.pool.acquire() as conn:
            await conn.execute("UPDATE web_sessions SET expires_at = now() - interval '1 s'"
                               " WHERE id = (SELECT min(id) FROM web_sessions"
                               "  WHERE revoked_at IS NULL)")
        assert await _page(http, world, expiring) == 303
        assert await _page(http, world, revoked) == 200
        async with world.pool.acquire() as conn:
            await conn.execute("UPDATE tokens SET revoked_at = now() WHERE token_hash ="
                               " (SELECT t.token_hash FROM tokens t JOIN web_sessions s"
                               "  ON s.token_id = t.id ORDER BY s.id DESC LIMIT 1)")
        assert await _page(http, world, revoked) == 303


async def test_guessed_session_cookies_are_throttled_like_tokens(serve: Serve) -> None:
    async with serve(pages=True, limits=Limits(rate_requests=100, rate_seconds=60)) as world, \
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        statuses = [await _page(http, world, f"guess-{i}") for i in range(11)]
        assert statuses == [303] * 10 + [429]


async def test_secure_cookies_when_the_public_url_is_https(serve: Serve) -> None:
    async with serve(pages=True, public_url="https://marketplace.example") as world, \
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        _, cookie = await _sign_in(http, world, "seller")
        assert cookie["mm_session"]["secure"]
