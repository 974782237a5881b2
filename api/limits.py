"""Limits that keep one caller from starving the others: a rate limit per token (or per address
without one), a cap on failed authentications per address, a deadline per request and one for
reading the body.

Settings come from the environment through config.settings (read once, in `create_app`):
MARKETPLACE_RATE_LIMIT per token, default 3000/60: far above any person using the pages or a
client integrating honestly, low enough that one runaway script cannot take the process over;
MARKETPLACE_REQUEST_TIMEOUT (503 after it) and MARKETPLACE_BODY_TIMEOUT (408 after it: a client
trickling bytes holds a connection, never a worker).

The buckets live in memory, per process: with several API processes a caller gets the limit once
per process, which is fine for protecting each process (the goal here), not for billing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import ApiError
from config.settings import limit_settings

# Probes and scrapes must answer even when a client is being throttled or the process is slow.
EXEMPT_PREFIXES = ("/health", "/metrics", "/static/")
_MAX_KEYS = 100_000  # buckets kept; the least recently used go first (a full bucket is the default)


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"


class RequestTimeout(ApiError):
    status = 408
    code = "request_timeout"


class Timeout(ApiError):
    status = 503
    code = "timeout"


@dataclass(frozen=True, slots=True)
class Limits:
    rate_requests: int = 3000  # 0: no rate limit
    rate_seconds: float = 60.0
    request_timeout: float = 30.0
    body_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        given = limit_settings(env)
        return cls(
            rate_requests=given.rate_requests,
            rate_seconds=given.rate_seconds,
            request_timeout=given.request_timeout,
            body_timeout=given.body_timeout,
        )


class TokenBuckets:
    """Token buckets by key: `capacity` requests at once, refilled at capacity/period per second."""

    def __init__(
        self, capacity: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost`; return 0 when allowed, else the seconds until it would be."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > _MAX_KEYS:
            self._buckets.popitem(last=False)
        return wait

    def peek(self, key: str) -> float:
        """Seconds until one unit is available for `key` (0: now), spending nothing."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


LIMITS: web.AppKey[Limits] = web.AppKey("limits", Limits)
BUCKETS: web.AppKey[TokenBuckets] = web.AppKey("rate_buckets", TokenBuckets)
AUTH_FAILURES: web.AppKey[TokenBuckets] = web.AppKey("auth_failure_buckets", TokenBuckets)
AUTHENTICATED: web.RequestKey[bool] = web.RequestKey("authenticated", bool)  # set by routing
KNOWN_CALLERS: web.AppKey[OrderedDict[str, None]] = web.AppKey("known_callers")


def setup_limits(app: web.Application, limits: Limits) -> None:
    app[LIMITS] = limits
    if limits.rate_requests > 0:
        app[BUCKETS] = TokenBuckets(limits.rate_requests, limits.rate_seconds)
        # Failed authentications per address: random tokens would otherwise each get a fresh
        # bucket, so guessing is capped separately (a tenth of the rate, at least 10 at once).
        app[AUTH_FAILURES] = TokenBuckets(
            max(10, limits.rate_requests // 10), limits.rate_seconds
        )
        app[KNOWN_CALLERS] = OrderedDict()


def _caller_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        # A digest, not the token: the key table must not become a list of live secrets.
        return "t:" + hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).hexdigest()
    cookie = request.cookies.get("mm_session")
    if cookie:
        return "c:" + hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()
    return "ip:" + (request.remote or "unknown")


def _too_many(wait: float, what: str) -> TooManyRequests:
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(
        f"too many {what}; retry after {seconds} s",
        details={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def _exempt(request: web.Request) -> bool:
    return request.path.startswith(EXEMPT_PREFIXES)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    buckets = request.app.get(BUCKETS)
    if buckets is None or _exempt(request):
        return await handler(request)
    failures = request.app[AUTH_FAILURES]
    known = request.app[KNOWN_CALLERS]
    address = "ip:" + (request.remote or "unknown")
    key = _caller_key(request)
    wait = failures.peek(address)
    # An address that keeps failing to authenticate is throttled, except for callers that
    # authenticated fine before (a guesser behind the same NAT must not lock colleagues out).
    if wait > 0 and key not in known:
        raise _too_many(wait, "failed authentications from this address")
    wait = buckets.take(key)
    if wait > 0:
        raise _too_many(wait, "requests for this token")
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except ApiError as exc:
        status = exc.status
        raise
    finally:
        if status == 401:
            failures.take(address)
        elif key.startswith("t:") and request.get(AUTHENTICATED):
            known[key] = None
            known.move_to_end(key)
            if len(known) > _MAX_KEYS:
                known.popitem(last=False)
    return response


@web.middleware
async def timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that takes longer than the deadline is cancelled (its transaction rolls back)
    and answered 503 with Retry-After, so no client waits on a stuck handler forever."""
    if _exempt(request):
        return await handler(request)
    limit = request.app[LIMITS].request_timeout
    try:
        async with asyncio.timeout(limit):
            return await handler(request)
    except TimeoutError as exc:
        raise Timeout(
            f"the request took longer than {limit:g} s and was abandoned",
            headers={"Retry-After": "1"},
        ) from exc


