"""Prometheus metrics at /metrics. Each app has its own registry so that several apps in one
process (tests) never collide on metric names."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from api.keys import LIVE, METRICS, POOL, QUEUE
from api.routing import Ctx, Operation
from models import alerts

ALERT_STATUSES = ("pending", "sending", "sent", "failed")
_SCRAPE_DB_TIMEOUT = 1.0
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.match_latency = Histogram(
            "match_duration_seconds",
            "Time to score one brief against the live index (previews, what-if)",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.index_size = Gauge(
            "matcher_index_sellers", "Sellers in this process's live index", registry=self.registry
        )
        self.rules_version = Gauge(
            "matcher_rules_version", "Active rules version in this process (0 = defaults)",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "queue_depth", "Jobs waiting in the arq queue (-1 when unknown)", registry=self.registry
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled now", registry=self.registry
        )
        self.alerts = Gauge(
            "alerts_by_status",
            "Alerts (deliveries) by outcome: pending, sending, sent, failed; read from the "
            "database at scrape time, so every worker's deliveries count",
            ["status"],
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "metrics_scrape_errors_total",
            "Scrapes where a backing service could not be read (values kept from the last one)",
            ["source"],
            registry=self.registry,
        )
        self.publishes = Counter(
            "briefs_published_total",
            "Briefs published, by whether the job was enqueued at once",
            ["enqueued"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


async def _alert_counts(app: web.Application, m: Metrics) -> None:
    pool = app.get(POOL)
    if pool is None:
        return
    try:
        async with asyncio.timeout(_SCRAPE_DB_TIMEOUT), pool.acquire() as conn:
            counts = await alerts.counts_by_status(conn)
    except Exception:  # a scrape must answer even when the database does not
        m.scrape_errors.labels("database").inc()
        return
    for status in ALERT_STATUSES:
        m.alerts.labels(status).set(counts.get(status, 0))


async def metrics(ctx: Ctx) -> web.StreamResponse:
    app = ctx.app
    m = app[METRICS]
    live = app.get(LIVE)
    if live is not None:
        m.index_size.set(len(live.matcher))
        m.rules_version.set(live.rules_version)
    queue = app.get(QUEUE)
    depth = await queue.depth() if queue is not None else None
    m.queue_depth.set(-1 if depth is None else depth)
    await _alert_counts(app, m)
    response = web.Response(body=generate_latest(m.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


ROUTES = [
    Operation(
        "GET", "/metrics", metrics, "Read Prometheus metrics", "operations",
        roles=None, db=False, content_type="text/plain",
        response={"type": "string"},
    ),
]
