"""Webhooks cannot be turned against us: private targets are refused when saved (API, via
api.netguard) and when sent (workers.delivery: resolver that drops non-public addresses), no
redirect is followed, and a receiver cannot hold the worker with a huge or endless answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from api.netguard import UnsafeUrl, check_webhook_target, is_public_address
from config.settings import WorkerConfig
from tests.hardening.conftest import Serve
from workers import delivery
from workers.delivery import DeliveryError, send_webhook

REFUSED = [
    "http://127.0.0.1/hook", "http://localhost:8080/x", "http://127.1/", "http://2130706433/",
    "http://0x7f000001/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://10.0.0.1/",
    "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/", "http://[fe80::1]/", "http://100.64.0.1/", "http://224.0.0.1/",
    "http://localhost./", "http://user:secret@93.184.215.14/", "ftp://93.184.215.14/x",
    "file:///etc/passwd", "http:///nohost", "http://93.184.215.14:99999/",
]
# IPv6 forms that carry an IPv4 address are judged by it; site-local is private space.
TRANSITION_FORMS = [
    "http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b:1::a9fe:a9fe]/", "http://[2002:7f00:1::]/", "http://[2002:a00:1::1]/",
    "http://[fec0::1]/", "http://[::ffff:0:7f00:1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[2606:4700::5efe:7f00:1]/",  # ISATAP interface id around 127.0.0.1
]
# Never deliverable as typed: refused at save with the encoded form to use instead.
UNENCODED = [
    "https://93.184.215.14/a b", "https://hooks.example.invalid/caf\u00e9",
    "https://b\u00fccher.example.invalid/hook", "https://93.184.215.14/x\u2028y",
    "https://93.184.215.14/x\ty", " https://93.184.215.14/x", "https://93.184.215.14/\u00a0",
]
ACCEPTED = ["https://93.184.215.14/hook", "http://[2606:2800:220:1::]/x",
            "https://hooks.example.invalid/never-resolves"]


@pytest.mark.parametrize("url", REFUSED)
async def test_netguard_refuses_private_and_malformed_targets(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_webhook_target(url, allow_private=False)


@pytest.mark.parametrize("url", TRANSITION_FORMS)
async def test_netguard_judges_ipv6_transition_forms_by_their_ipv4_address(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="non-public"):
        await check_webhook_target(url, allow_private=False)


@pytest.mark.parametrize("url", UNENCODED)
async def test_netguard_refuses_urls_that_would_fail_every_send(url: str) -> None:
    with pytest.raises(UnsafeUrl) as info:
        await check_webhook_target(url, allow_private=True)
    if "\u00fc" in url:  # the host's IDNA form is suggested
        assert "https://xn--bcher-kva.example.invalid/hook" in str(info.value)


def test_public_transition_forms_stay_public() -> None:
    for address in ("64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "8.8.8.8",
                    "2606:2800:220:1::"):
        assert is_public_address(address), address


@pytest.mark.parametrize("url", ACCEPTED)
async def test_netguard_accepts_public_targets(url: str) -> None:
    await check_webhook_target(url, allow_private=False)


async def test_netguard_allow_private_still_checks_the_shape() -> None:
    await check_webhook_target("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(UnsafeUrl):
        await check_webhook_target("gopher://127.0.0.1/", allow_private=True)
    assert not is_public_address("::ffff:10.0.0.1") and is_public_address("8.8.8.8")


async def test_api_refuses_private_webhooks_at_save_time(serve: Serve) -> None:
    async with serve(webhook_allow_private=False) as world, aiohttp.ClientSession() as http:
        url = world.url(f"/api/v1/sellers/{world.ids['seller']}/alert-preferences")
        h = world.headers("seller")
        for hook in REFUSED[:12]:
            r = await http.put(url, json={"frequency": "instant", "webhook_url": hook,
                                          "webhook_secret": "s" * 20}, headers=h)
            assert r.status == 422, hook
            details = (await r.json())["error"]["details"]
            assert [d["field"] for d in details] == ["webhook_url"], hook
        for hook in [*TRANSITION_FORMS, *UNENCODED]:
            r = await http.put(url, json={"frequency": "instant", "webhook_url": hook,
                                          "webhook_secret": "s" * 20}, headers=h)
            assert r.status == 422, hook
        r = await http.put(url, json={"frequency": "instant", "webhook_url": ACCEPTED[0],
                                      "webhook_secret": "s" * 20}, headers=h)
        assert r.status == 200
    async with serve(webhook_allow_private=True) as world, aiohttp.ClientSession() as http:
        url = world.url(f"/api/v1/sellers/{world.ids['seller']}/alert-preferences")
        r = await http.put(url, json={"frequency": "instant", "webhook_url": REFUSED[0],
                                      "webhook_secret": "s" * 20},
                           headers=world.headers("seller"))
        assert r.status == 200  # tests and local demos only


async def test_api_requires_a_secret_for_a_webhook(serve: Serve) -> None:
    async with serve(webhook_allow_private=True) as world, aiohttp.ClientSession() as http:
        url = world.url(f"/api/v1/sellers/{world.ids['seller']}/alert-preferences")
        h = world.headers("seller")
        hook = {"frequency": "instant", "webhook_url": "http://127.0.0.1:9/hook"}
        for body in (hook, {**hook, "webhook_secret": None}):
            r = await http.put(url, json=body, headers=h)
            assert r.status == 422, body
            details = (await r.json())["error"]["details"]
            assert [d["field"] for d in details] == ["webhook_secret"]
        r = await http.put(url, json={**hook, "webhook_secret": "s" * 20}, headers=h)
        assert r.status == 200 and (await r.json())["webhook_secret_set"] is True
        r = await http.put(url, json=hook, headers=h)  # omitted: the stored secret is kept
        assert r.status == 200 and (await r.json())["webhook_secret_set"] is True
        r = await http.put(url, json={**hook, "webhook_secret": None}, headers=h)
        assert r.status == 422  # clearing the secret of a webhook


async def test_a_webhook_without_a_secret_is_sent_unsigned() -> None:
    """Rows saved before secrets were required: no signature under an empty key."""
    seen: list[dict[str, str]] = []
    app = web.Application()

    async def hook(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    app.router.add_post("/hook", hook)
    async with receiver(app) as (port, _):
        session = delivery.make_http_client(CONFIG, allow_private=True)
        try:
            for secret in (None, "", "s" * 20):
                alert = {"id": 7, "webhook_url": f"http://127.0.0.1:{port}/hook",
                         "webhook_secret": secret}
                await send_webhook(session, alert, b"{}", config=CONFIG, allow_private=True)
        finally:
            await session.close()
    assert ["X-Marketplace-Signature" in h for h in seen] == [False, False, True]
    assert all(h["Idempotency-Key"] == "7" for h in seen)


# ---- send time (workers.delivery, owned by WORKERS; checked here against a real receiver) ----


@asynccontextmanager
async def receiver(app: web.Application) -> AsyncIterator[tuple[int, dict[str, int]]]:
    hits: dict[str, int] = {}

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        hits[request.path] = hits.get(request.path, 0) + 1
        return await handler(request)

    app.middlewares.append(count)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


def _ok_app() -> web.Application:
    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/internal"})

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100_000):  # ~6 GB if anyone read it all
            await response.write(b"x" * 65536)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(text="late")

    app.router.add_post("/hook", ok)
    app.router.add_post("/internal", ok)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/endless", endless)
    app.router.add_post("/slow", slow)
    return app


CONFIG = WorkerConfig(http_timeout=1.0, connect_timeout=1.0, max_response_bytes=65536)


async def _send(url: str, *, allow_private: bool) -> None:
    # WORKERS' client factory: make_http_client (own HTTP/1 client) or, before it, an aiohttp
    # session from make_http_session; both are closed with `await .close()`.
    found = vars(delivery)
    factory = found.get("make_http_client") or found["make_http_session"]
    session = factory(CONFIG, allow_private=allow_private)
    alert = {"id": 1, "webhook_url": url, "webhook_secret": "s" * 20}
    try:
        await send_webhook(session, alert, b'{"a": 1}', config=CONFIG,
                           allow_private=allow_private)
    finally:
        await session.close()


async def test_send_time_refuses_names_that_resolve_to_private_addresses() -> None:
    async with receiver(_ok_app()) as (port, hits):
        await _send(f"http://127.0.0.1:{port}/hook", allow_private=True)
        assert hits == {"/hook": 1}
        for host in ("127.0.0.1", "localhost", "127.1", "localhost.", "2130706433"):
            with pytest.raises(DeliveryError):
                await _send(f"http://{host}:{port}/hook", allow_private=False)
        assert hits == {"/hook": 1}  # nothing reached the private receiver


async def test_send_follows_no_redirects_and_caps_size_and_time() -> None:
    async with receiver(_ok_app()) as (port, hits):
        with pytest.raises(DeliveryError, match="307"):
            await _send(f"http://127.0.0.1:{port}/redirect", allow_private=True)
        assert "/internal" not in hits
        start = time.perf_counter()
        await _send(f"http://127.0.0.1:{port}/endless", allow_private=True)  # 2xx: delivered
        assert time.perf_counter() - start < 3  # read 64 KiB, then hung up
        start = time.perf_counter()
        with pytest.raises(DeliveryError, match="timed out"):
            await _send(f"http://127.0.0.1:{port}/slow", allow_private=True)
        assert time.perf_counter() - start < 3
