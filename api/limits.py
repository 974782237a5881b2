"""Limits that keep one caller from starving the others: a rate limit per token (or per address
without one), a cap on failed authentications per address, a deadline per request and one for
reading the body.

Settings come from the environment through config.settings (read once, in `create_app`):
MARKETPLACE_RATE_LIMIT per token, default 3000/60: far above any person using the pages or a
client integrating honestly, low enough that one runaway script cannot take the process over;
MARKETPLACE_REQUEST_TIMEOUT (503 after it) and MARKETPLACE_BODY_TIMEOUT (408 after it: a client
trickling bytes holds a connection, never a worker).

The counters live in Redis/Valkey (the `limits` library's sliding-window counter, one round
trip per check), shared by every API process: a caller gets the limit once whatever the number
of processes. If Redis cannot be reached, each process falls back to the same limits in its own
memory until it can (the API keeps serving: the queue is optional by design).

A request without any credential is never held by the failed-authentication throttle and is
not counted in it: it gets its 401 (a client that forgot its token is told so), while repeated
wrong credentials from an address get 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from api.errors import ApiError
from config.settings import limit_settings

# Probes and scrapes must answer even when a client is being throttled or the process is slow.
EXEMPT_PREFIXES = ("/health", "/metrics", "/static/")
# Whole-database exports stream for as long as the client reads (a large OCDS package over a
# slow link takes minutes): they get a deadline of their own, not the API's.
EXPORT_PREFIXES = ("/open-data/",)
EXPORT_TIMEOUT = 900.0
_MAX_KEYS = 100_000  # known callers kept; the least recently used go first
T = TypeVar("T")
log = logging.getLogger(__name__)


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


class RateLimits:
    """Sliding-window limits by key, on shared storage with a per-process fallback."""

    def __init__(self, limits: Limits, redis_url: str | None) -> None:
        seconds = max(1, math.ceil(limits.rate_seconds))
        self.requests = RateLimitItemPerSecond(limits.rate_requests, seconds)
        # Failed authentications per address: random tokens would otherwise each get a fresh
        # window, so guessing is capped separately (a tenth of the rate, at least 10).
        self.failures = RateLimitItemPerSecond(max(10, limits.rate_requests // 10), seconds)
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: SlidingWindowCounterRateLimiter | None = None
        self._storage: RedisStorage | None = None
        if redis_url:
            uri = "async+" + redis_url if redis_url.startswith(("redis:", "rediss:")) else ""
            if uri:
                self._storage = RedisStorage(
                    uri, implementation="redispy", key_prefix="marketplace:limits",
                    wrap_exceptions=True, socket_timeout=1, socket_connect_timeout=1,
                )
                self._shared = SlidingWindowCounterRateLimiter(self._storage)
        self._warned_at = 0.0

    async def _run(self, call: Callable[[SlidingWindowCounterRateLimiter], Awaitable[T]]) -> T:
        if self._shared is not None:
            try:
                return await call(self._shared)
            except Exception as exc:  # Redis away: limit in this process until it is back
                if time.monotonic() - self._warned_at > 30:
                    self._warned_at = time.monotonic()
                    log.warning("rate limits kept in this process (Redis: %s)", exc)
        return await call(self._local)

    async def hit(self, item: RateLimitItem, key: str) -> float:
        """Count one request; 0 when allowed, else the seconds until one would be."""
        if await self._run(lambda limiter: limiter.hit(item, key)):
            return 0.0
        return await self.wait(item, key)

    async def wait(self, item: RateLimitItem, key: str) -> float:
        """Seconds until `key` may spend one more of `item` (0: now), spending nothing."""
        if await self._run(lambda limiter: limiter.test(item, key)):
            return 0.0
        stats = await self._run(lambda limiter: limiter.get_window_stats(item, key))
        return max(1.0, stats.reset_time - time.time())


LIMITS: web.AppKey[Limits] = web.AppKey("limits", Limits)
RATE_LIMITS: web.AppKey[RateLimits] = web.AppKey("rate_limits", RateLimits)
AUTHENTICATED: web.RequestKey[bool] = web.RequestKey("authenticated", bool)  # set by routing
# Set by the pages when a session cookie names no live session (they answer with a redirect to
# the sign-in page, not a 401): counted as a failed authentication all the same.
FAILED_AUTHENTICATION: web.RequestKey[bool] = web.RequestKey("failed_authentication", bool)
KNOWN_CALLERS: web.AppKey[OrderedDict[str, None]] = web.AppKey("known_callers")


def setup_limits(app: web.Application, limits: Limits, redis_url: str | None = None) -> None:
    app[LIMITS] = limits
    if limits.rate_requests > 0:
        app[RATE_LIMITS] = RateLimits(limits, redis_url)
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


def _has_credential(request: web.Request) -> bool:
    return "Authorization" in request.headers or bool(request.cookies.get("mm_session"))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limits = request.app.get(RATE_LIMITS)
    if limits is None or _exempt(request):
        return await handler(request)
    known = request.app[KNOWN_CALLERS]
    address = "ip:" + (request.remote or "unknown")
    key = _caller_key(request)
    credential = _has_credential(request)
    # An address that keeps failing to authenticate is throttled, except for callers that
    # authenticated fine before (a guesser behind the same NAT must not lock colleagues out)
    # and for requests with no credential at all (they get their 401).
    if credential and key not in known:
        wait = await limits.wait(limits.failures, address)
        if wait > 0:
            raise _too_many(wait, "failed authentications from this address")
    wait = await limits.hit(limits.requests, key)
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
        if credential and (status == 401 or request.get(FAILED_AUTHENTICATION)):
            await asyncio.shield(limits.hit(limits.failures, address))
        elif request.get(AUTHENTICATED):
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
    if request.path.startswith(EXPORT_PREFIXES):
        limit = max(limit, EXPORT_TIMEOUT)
    try:
        async with asyncio.timeout(limit):
            return await handler(request)
    except TimeoutError as exc:
        raise Timeout(
            f"the request took longer than {limit:g} s and was abandoned",
            headers={"Retry-After": "1"},
        ) from exc


