"""Middlewares: request ids, metrics, and the one place where errors become JSON."""

from __future__ import annotations

import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import ApiError, error_body
from api.keys import METRICS
from api.routing import json_response
from config.logs import request_id

log = logging.getLogger(__name__)
access = logging.getLogger("api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


def _route_label(request: web.Request) -> str:
    # The route template, never the raw path: ids in label values would explode the series.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    token = request_id.set(rid)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        status = exc.status
        raise
    finally:
        # One structured line per request (JSON via config.logs), carrying the request id.
        access.info(
            "%s %s %s %.1fms", request.method, _route_label(request), status,
            (time.perf_counter() - start) * 1000,
        )
        request_id.reset(token)
    response.headers["X-Request-Id"] = rid
    return response


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if metrics is not None:
            metrics.in_flight.dec()
            metrics.observe_request(
                request.method, _route_label(request), status, time.perf_counter() - start
            )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.body(), exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        # aiohttp's own: unknown route (404), wrong method (405), body too large (413), ...
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        code = _HTTP_CODES.get(exc.status, "http_error")
        details = None
        if exc.status == 405:
            details = {"allowed": sorted(getattr(exc, "allowed_methods", ()))}
        return json_response(error_body(code, exc.reason, details), exc.status, headers=headers)
    except Exception:
        # A last resort: every exception reaching here is a bug to fix, never an expected path.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(
            error_body("internal_error", "an unexpected error occurred; it has been logged"), 500
        )
