"""What the worker's webhook client would be with aiohttp: one `aiohttp.ClientSession`, with the
address guard in its resolver. Measured against workers.http1 by bench/webhook_client.py; not
used by the service (it costs about 2.4 times the CPU per delivery).

What a webhook POST needs from it: keep-alive connections per origin (most of webhook
throughput), no redirects (a 3xx could point inside our network), no cookies, a total
deadline, and a bounded read of the answer (a receiver cannot hold a worker with an endless
body).

Address guard (models.netguard): every name is resolved by `GuardedResolver`, which drops
non-public addresses, so the connection only ever goes to an address that was checked, also
when the name resolves somewhere else later (DNS rebinding). aiohttp does not pass literal
addresses to the resolver (and refuses non-canonical IPv4 forms such as 127.1 itself), so
literals are checked by `post` before the request.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from models.netguard import is_public_address

USER_AGENT = "marketplace-matcher-alerts/1"


class HttpError(Exception):
    """Any failure to get an answer (connect, timeout, protocol); the caller retries."""


class RefusedAddress(HttpError):
    """The target is loopback, private, link-local or reserved: no retry can help."""


class _Refused(OSError):
    """Raised inside the resolver; aiohttp wraps OSErrors from it in a connector error."""


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses (all of them when private targets are
    allowed: tests and local demos)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not self.allow_private:
            name = host.rstrip(".").lower()
            if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: loopback
                raise _Refused(f"{host} is loopback")
        found = await self._inner.resolve(host, port, family)
        if self.allow_private:
            return found
        public = [r for r in found if is_public_address(r["host"])]
        if not public:
            raise _Refused(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


class WebhookClient:
    """POSTs to webhook receivers; returns the status code (a 3xx is returned, not followed)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        connect_timeout: float,
        max_response_bytes: int,
        max_connections: int = 256,
    ) -> None:
        self.allow_private = allow_private
        self.max_response_bytes = max_response_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop (a ClientSession binds to it).
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allow_private=self.allow_private),
                limit=self._max_connections,
                limit_per_host=self._max_connections,
                ttl_dns_cache=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
                trust_env=False,  # no proxy from the environment between us and the check
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_literal(self, url: str) -> None:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError as exc:
            raise RefusedAddress(f"invalid URL: {exc}") from exc
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self.allow_private and not is_public_address(host):
            raise RefusedAddress(f"{host} is not a public address")

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self._check_literal(url)
        session = self._open()
        try:
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                # Read at most the cap; a longer answer is dropped with its connection.
                await response.content.read(self.max_response_bytes)
                if not response.content.at_eof():
                    response.close()
                return response.status
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _Refused) or isinstance(exc.__cause__, _Refused):
                raise RefusedAddress(str(exc.os_error or exc)) from exc
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.InvalidURL as exc:
            raise RefusedAddress(f"invalid URL: {exc}") from exc
        except TimeoutError as exc:
            raise HttpError("timed out") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
