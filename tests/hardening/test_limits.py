"""Limits and hostile input: body size, page sizes, lengths, rate limits, deadlines, slow and
huge clients; malformed JSON, wrong types, unknown fields, bad enums, bad UTF-8, control
characters, SQL and HTML injection. Each gets a clear 4xx; legitimate text containing the same
characters is stored verbatim and rendered escaped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web

from api.limits import Limits
from tests.hardening.conftest import Serve, World

BRIEF = {
    "title": "Accessible Python service", "summary": "Build it", "category": "digital-outcomes",
    "location": "London", "essential_skills": ["python"],
}


async def _error(r: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert r.status == status, (r.status, await r.text())
    assert r.content_type == "application/json"
    error: dict[str, Any] = (await r.json())["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def _fields(error: dict[str, Any]) -> set[str]:
    return {d["field"] for d in error["details"]}


async def test_body_size_is_capped_with_413(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = {**world.headers("buyer"), "Content-Type": "application/json"}
        big = b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        error = await _error(await http.post(world.url("/api/v1/briefs"), data=big, headers=h),
                             413)
        assert error["code"] == "payload_too_large"

        async def chunks() -> Any:  # no Content-Length: the cap holds for streamed bodies too
            yield b'{"title": "'
            for _ in range(64):
                yield b"y" * 65536

        r = await http.post(world.url("/api/v1/briefs"), data=chunks(), headers=h)
        assert (await _error(r, 413))["code"] == "payload_too_large"


async def test_page_sizes_and_lengths(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = world.headers("admin")
        for query in ("limit=201", "limit=0", "offset=-1", "limit=abc", "limit=10&limit=20",
                      "nonsense=1"):
            r = await http.get(world.url(f"/api/v1/briefs?{query}"), headers=h)
            assert (await _error(r, 422))["code"] == "validation_error", query
        assert (await http.get(world.url("/api/v1/briefs?limit=200"), headers=h)).status == 200
        too_long: list[tuple[str, Any]] = [
            ("title", "t" * 201), ("summary", "s" * 20_001),
            ("essential_skills", ["python"] * 101), ("essential_skills", ["p" * 101]),
            ("location", "l" * 201),
        ]
        for field, value in too_long:
            r = await http.post(world.url("/api/v1/briefs"), json={**BRIEF, field: value},
                                headers=world.headers("buyer"))
            assert {f.split(".")[0] for f in _fields(await _error(r, 422))} == {field}, field
        r = await http.post(world.url("/api/v1/briefs"),
                            json={**BRIEF, "title": "t" * 200, "summary": "s" * 20_000},
                            headers=world.headers("buyer"))
        assert r.status == 201  # the limits themselves are allowed


async def test_malformed_and_wrong_input_gets_clear_4xx(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        url, h = world.url("/api/v1/briefs"), world.headers("buyer")
        json_h = {**h, "Content-Type": "application/json"}
        cases: list[tuple[bytes, int, str]] = [
            (b'{"title": "x",', 400, "bad_json"),                # truncated
            (b"{'title': 'x'}", 400, "bad_json"),                # not JSON
            (b'{"title": "\xff\xfe"}', 400, "bad_json"),          # bad UTF-8
            (b'{"title": "\\ud800"}', 400, "bad_json"),           # lone surrogate
            (b"", 400, "bad_json"),                               # empty
            (b'["title"]', 422, "validation_error"),              # not an object
            (b'{"title": 5}', 422, "validation_error"),           # wrong type
            (b'{"title": "x", "owner": 1}', 422, "validation_error"),  # unknown field
            (b'{"title": "x", "category": "cheese"}', 422, "validation_error"),  # bad enum
            (b'{"title": "a\\u0000b"}', 422, "validation_error"),  # NUL
            (b'{"title": "a\\u001bb"}', 422, "validation_error"),  # escape character
            (b'{"title": "x", "max_day_rate": -1}', 422, "validation_error"),
            (b'{"title": "x", "max_day_rate": 1e999}', 400, "bad_json"),  # infinity
        ]
        for body, status, code in cases:
            r = await http.post(url, data=body, headers=json_h)
            assert (await _error(r, status))["code"] == code, body
        r = await http.post(url, json={"title": "x", "owner": 1}, headers=h)
        assert _fields(await _error(r, 422)) == {"owner"}
        r = await http.post(url, data=b"title=x", headers={
            **h, "Content-Type": "application/x-www-form-urlencoded"})
        assert (await _error(r, 415))["code"] == "unsupported_media_type"
        r = await http.post(url, json={"title": "x", "category": "cheese"}, headers=h)
        assert _fields(await _error(r, 422)) == {"category"}


async def test_injection_attempts_are_inert_and_stored_verbatim(serve: Serve) -> None:
    hostile = "<script>alert('x')</script> Robert'); DROP TABLE briefs; -- \" & é 😀"
    async with serve(pages=True) as world, aiohttp.ClientSession() as http:
        h = world.headers("buyer")
        r = await http.post(world.url("/api/v1/briefs"), json={**BRIEF, "title": hostile,
                            "summary": hostile, "essential_skills": [hostile]}, headers=h)
        assert r.status == 201
        brief_id = (await r.json())["id"]
        got = await (await http.get(world.url(f"/api/v1/briefs/{brief_id}"), headers=h)).json()
        assert got["title"] == hostile and got["essential_skills"] == [hostile]
        async with world.pool.acquire() as conn:
            assert await conn.fetchval("SELECT title FROM briefs WHERE id = $1", brief_id) \
                == hostile
            assert await conn.fetchval("SELECT count(*) FROM briefs") > 0  # still there
        # SQL in query strings and paths: plain data, never syntax.
        for q in ("' OR '1'='1", "%' OR 1=1 --", "\\", "'; DROP TABLE sellers; --"):
            r = await http.get(world.url("/api/v1/sellers"), params={"q": q},
                               headers=world.headers("admin"))
            assert r.status == 200 and (await r.json())["items"] == [], q
        r = await http.get(world.url("/api/v1/briefs/1%20OR%201=1"), headers=h)
        assert r.status == 404
        r = await http.get(world.url("/api/v1/audit-events"), headers=world.headers("admin"),
                           params={"entity": "brief' OR 'x'='x"})
        assert r.status == 200 and (await r.json())["items"] == []
        # The page renders the same text escaped: no live <script> reaches a browser.
        r = await http.get(world.url(f"/buyer/briefs/{brief_id}"),
                           cookies={"mm_session": await world.page_session("buyer")})
        html = await r.text()
        assert r.status == 200, html[:500]
        assert "<script>alert(" not in html
        assert "&lt;script&gt;alert(" in html
        assert "DROP TABLE briefs" in html


async def test_rate_limit_per_token_with_retry_after(serve: Serve) -> None:
    async with serve(limits=Limits(rate_requests=5, rate_seconds=60)) as world, \
            aiohttp.ClientSession() as http:
        me = world.url("/api/v1/me")
        statuses = [(await http.get(me, headers=world.headers("buyer"))).status for _ in range(5)]
        assert statuses == [200] * 5
        r = await http.get(me, headers=world.headers("buyer"))
        error = await _error(r, 429)
        assert error["code"] == "too_many_requests"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["X-Request-Id"]
        # Per token: another caller is unaffected; probes and scrapes are never throttled.
        assert (await http.get(me, headers=world.headers("other_buyer"))).status == 200
        for path in ("/health/live", "/health/ready", "/metrics"):
            assert (await http.get(world.url(path), headers=world.headers("buyer"))).status == 200
        metrics = await (await http.get(world.url("/metrics"))).text()
        assert 'route="/api/v1/me",status="429"' in metrics


async def test_failed_authentications_are_throttled_per_address(serve: Serve) -> None:
    async with serve(limits=Limits(rate_requests=100, rate_seconds=60)) as world, \
            aiohttp.ClientSession() as http:
        me = world.url("/api/v1/me")
        # A known-good caller first (it stays served while the address is throttled).
        assert (await http.get(me, headers=world.headers("seller"))).status == 200
        statuses = []
        for i in range(12):  # capacity: max(10, 100 // 10) = 10 failures
            r = await http.get(me, headers={"Authorization": f"Bearer guess-{i}"})
            statuses.append(r.status)
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        r = await http.get(me, headers={"Authorization": "Bearer another-guess"})
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        assert (await http.get(me, headers=world.headers("seller"))).status == 200


def test_limits_from_env() -> None:
    assert Limits.from_env({}).rate_requests == 3000
    assert Limits.from_env({"MARKETPLACE_RATE_LIMIT": "off"}).rate_requests == 0
    limits = Limits.from_env({"MARKETPLACE_RATE_LIMIT": "20/1", "MARKETPLACE_REQUEST_TIMEOUT": "2"})
    assert (limits.rate_requests, limits.rate_seconds, limits.request_timeout) == (20, 1.0, 2.0)


def _slow_route(app: web.Application) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True})

    app.router.add_get("/api/v1/test-only/slow", slow)


async def test_slow_handler_times_out_with_503_json(serve: Serve) -> None:
    limits = Limits(rate_requests=0, request_timeout=0.5)
    async with serve(limits=limits, setup=_slow_route) as world, aiohttp.ClientSession() as http:
        start = time.perf_counter()
        slow = asyncio.create_task(http.get(world.url("/api/v1/test-only/slow")))
        # Others are served meanwhile.
        r = await http.get(world.url("/api/v1/me"), headers=world.headers("buyer"))
        assert r.status == 200 and time.perf_counter() - start < 0.5
        r = await slow
        error = await _error(r, 503)
        assert error["code"] == "timeout" and r.headers["Retry-After"] == "1"
        assert time.perf_counter() - start < 2


async def _trickle(world: World, stop: asyncio.Event) -> bytes:
    """A slow client: announces a body, then sends it a byte at a time."""
    port = int(world.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    token = world.users["buyer"].token
    writer.write(
        f"POST /api/v1/briefs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
    )
    await writer.drain()
    try:
        while not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                continue
        return b""
    finally:
        writer.close()


async def test_slow_and_huge_clients_cannot_starve_others(serve: Serve) -> None:
    limits = Limits(rate_requests=0, body_timeout=1.0, request_timeout=5.0)
    async with serve(limits=limits) as world, aiohttp.ClientSession() as http:
        stop = asyncio.Event()
        slow_clients = [asyncio.create_task(_trickle(world, stop)) for _ in range(20)]

        async def huge() -> int:
            async def body() -> Any:
                for _ in range(800):  # 50 MB offered
                    yield b"z" * 65536

            r = await http.post(world.url("/api/v1/briefs"), data=body(), headers={
                **world.headers("buyer"), "Content-Type": "application/json"})
            return r.status

        huge_tasks = [asyncio.create_task(huge()) for _ in range(3)]
        await asyncio.sleep(0.2)
        latencies = []
        for _ in range(10):
            start = time.perf_counter()
            r = await http.get(world.url("/api/v1/briefs"), headers=world.headers("other_buyer"))
            latencies.append(time.perf_counter() - start)
            assert r.status == 200
        assert max(latencies) < 0.5, latencies
        answers = await asyncio.wait_for(asyncio.gather(*slow_clients), 5)
        stop.set()
        # Each slow client got a 408 (body too slow) once the body deadline passed.
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:1]
        assert b'"request_timeout"' in answers[0]
        assert set(await asyncio.gather(*huge_tasks)) <= {413}


async def test_deep_nesting_huge_numbers_and_huge_headers(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = {**world.headers("buyer"), "Content-Type": "application/json"}
        url = world.url("/api/v1/briefs")
        deep = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert (await _error(await http.post(url, data=deep, headers=h), 400))["code"] \
            == "bad_json"
        for body in (b'{"title": "x", "max_day_rate": 1e308}',
                     b'{"title": "x", "budget": 123456789012345678901234567890}'):
            assert (await http.post(url, data=body, headers=h)).status == 422
        r = await http.get(world.url("/api/v1/me"), headers={**h, "X-Junk": "j" * 20_000})
        assert 400 <= r.status < 500  # refused by the HTTP parser, never a 5xx


async def test_a_timed_out_preview_keeps_the_index_locked_until_scoring_ends(
    serve: Serve,
) -> None:
    from api.keys import LIVE

    limits = Limits(rate_requests=0, request_timeout=0.2)
    async with serve(limits=limits) as world, aiohttp.ClientSession() as http:
        live = world.app[LIVE]
        matcher = live.matcher
        real_match = matcher.match

        def slow_match(*args: Any, **kwargs: Any) -> Any:  # a brief that takes long to score
            time.sleep(0.8)
            return real_match(*args, **kwargs)

        matcher.match = slow_match  # type: ignore[method-assign]
        try:
            r = await http.post(world.url("/api/v1/briefs/preview"), json={"title": "Python"},
                                headers=world.headers("buyer"))
            assert (await _error(r, 503))["code"] == "timeout"
            # The request is gone, the thread is not: the index stays locked until it ends, so
            # no incremental update can change the index under it.
            assert live._lock.locked()
            await asyncio.sleep(1.0)
            assert not live._lock.locked()
        finally:
            matcher.match = real_match  # type: ignore[method-assign]
