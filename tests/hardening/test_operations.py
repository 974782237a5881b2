"""The operator's view: Prometheus metrics, request ids that follow a brief, health probes,
graceful shutdown of in-flight requests."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import orjson
from aiohttp import web

from api.app import create_app
from config.logs import JsonFormatter
from tests.api.conftest import settings_for
from tests.conftest import Servers
from tests.hardening.conftest import NO_LIMITS, Serve, free_port

METRICS = (
    "http_requests_total", "http_request_duration_seconds", "http_requests_in_flight",
    "match_duration_seconds", "matcher_index_sellers", "matcher_rules_version", "queue_depth",
    "alerts_by_status", "briefs_published_total", "metrics_scrape_errors_total",
)


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, f"{sample} not in metrics"
    return float(match.group(1))


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_metrics_cover_requests_matching_queue_deliveries_and_index(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = world.headers("buyer")
        r = await http.post(world.url("/api/v1/briefs/preview"), headers=h,
                            json={"title": "Python", "essential_skills": ["python"]})
        assert r.status == 200
        r = await http.post(world.url(f"/api/v1/briefs/{world.ids['draft']}/publish"), headers=h)
        assert r.status == 201
        await http.get(world.url("/api/v1/briefs/999999"), headers=h)
        r = await http.get(world.url("/metrics"))
        assert r.status == 200 and r.content_type == "text/plain"
        text = await r.text()
        for name in METRICS:
            assert f"# TYPE {name} " in text, name
        assert _value(text, 'http_requests_total{method="POST",route="/api/v1/briefs/preview",'
                            'status="200"}') == 1
        assert 'route="/api/v1/briefs/{id}",status="404"' in text
        assert _value(text, 'match_duration_seconds_count{kind="preview"}') >= 1
        assert _value(text, "matcher_index_sellers") == 3  # two sellers' companies + a spare
        assert _value(text, "queue_depth") == 1  # the publish's match job, no worker running
        assert _value(text, 'alerts_by_status{status="failed"}') == 1
        assert _value(text, 'alerts_by_status{status="sent"}') == 0
        assert _value(text, 'briefs_published_total{enqueued="yes"}') == 1
        assert _value(text, "http_requests_in_flight") == 1  # this scrape


async def test_request_id_is_echoed_logged_and_follows_a_publish(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        h = world.headers("buyer")
        r = await http.get(world.url("/api/v1/me"), headers=h)
        generated = r.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        r = await http.get(world.url("/api/v1/me"), headers={**h, "X-Request-Id": "bad id\u00e9"})
        assert r.headers["X-Request-Id"] != "bad id\u00e9"  # not echoed: replaced
        r = await http.get(world.url("/nope"), headers={"X-Request-Id": "abc-404"})
        assert r.status == 404 and r.headers["X-Request-Id"] == "abc-404"
        with json_logs() as logs:
            r = await http.post(world.url(f"/api/v1/briefs/{world.ids['draft']}/publish"),
                                headers={**h, "X-Request-Id": "trace-publish-1"})
        assert r.status == 201 and r.headers["X-Request-Id"] == "trace-publish-1"
        lines = [orjson.loads(line) for line in logs.getvalue().splitlines()]
        published = [x for x in lines if x["msg"].startswith("brief published")]
        assert published and published[0]["request_id"] == "trace-publish-1"
        assert published[0]["brief_id"] == world.ids["draft"]
        access = [x for x in lines if x["logger"] == "api.access"]
        assert access and access[-1]["request_id"] == "trace-publish-1"
        assert "/api/v1/briefs/{id}/publish 201" in access[-1]["msg"]
        async with world.pool.acquire() as conn:
            data = await conn.fetchval(
                "SELECT data FROM audit_events WHERE action = 'brief.published'"
                " AND entity_id = $1", str(world.ids["draft"]))
        assert data["request_id"] == "trace-publish-1"


async def test_liveness_and_readiness(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        live = await http.get(world.url("/health/live"))
        assert live.status == 200 and (await live.json())["status"] == "ok"
        ready = await (await http.get(world.url("/health/ready"))).json()
        assert ready["status"] == "ok"
        assert ready["checks"]["database"]["ok"] and ready["checks"]["index"]["sellers"] == 3


async def test_graceful_shutdown_finishes_in_flight_requests(clean_db: Servers) -> None:
    """What `marketplace serve` does on SIGTERM (runner.cleanup): stop accepting, let in-flight
    requests finish within shutdown_timeout, then close the pools."""
    app = create_app(settings_for(clean_db), limits=NO_LIMITS)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"finished": True})

    app.router.add_get("/api/v1/test-only/slow", slow)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as http:
        in_flight = asyncio.create_task(http.get(f"http://127.0.0.1:{port}/api/v1/test-only/slow"))
        await asyncio.sleep(0.3)
        start = time.perf_counter()
        await runner.cleanup()
        response = await in_flight
        assert response.status == 200 and (await response.json()) == {"finished": True}
        assert time.perf_counter() - start < 5
        try:
            await http.get(f"http://127.0.0.1:{port}/health/live")
            refused = False
        except aiohttp.ClientConnectionError:
            refused = True
        assert refused, "a stopped server accepts no new requests"
