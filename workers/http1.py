"""A lean HTTP/1.1 client for webhook POSTs, with keep-alive connection pools.

Why not aiohttp's client: its per-request machinery (request/response objects, tracing,
timers, header multidicts) costs about 2.4 times the CPU per webhook of this client
(bench/webhook_client.py, figures in bench/README.md), and delivery throughput is bounded by
the worker's CPU. A webhook needs far less: one POST with a small JSON body, the status code,
a bounded read of the answer, no redirects, no cookies. Each request is one write;
connections are reused per origin.

Address guard (models.netguard, the same policy as at save time): hostnames are resolved here
and the connection goes to the checked address (TLS still verifies the hostname), so a name
that resolves to an internal address, now or later (DNS rebinding), never reaches our network
unless private targets are allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

from models.netguard import is_public_address as is_public


class HttpError(Exception):
    """Any failure to get an answer (connect, timeout, protocol); the caller retries."""


class RefusedAddress(HttpError):
    """The target is loopback, private, link-local or reserved: no retry can help."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Http1Client:
    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        connect_timeout: float,
        max_response_bytes: int,
        max_idle_per_origin: int = 256,
        dns_ttl: float = 60.0,
        user_agent: str = "marketplace-matcher-alerts/1",
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self.max_idle = max_idle_per_origin
        self.dns_ttl = dns_ttl
        self.user_agent = user_agent
        self._idle: dict[Origin, list[_Conn]] = defaultdict(list)
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._ssl = ssl.create_default_context()
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    # -- addresses ----------------------------------------------------------------------------

    async def _addresses(self, origin: Origin) -> list[str]:
        try:
            ipaddress.ip_address(origin.host)
            literal = True
        except ValueError:
            literal = False
        if literal:
            addresses = [origin.host]
        else:
            key = (origin.host, origin.port)
            cached = self._dns.get(key)
            if cached is not None and cached[0] > time.monotonic():
                addresses = cached[1]
            else:
                loop = asyncio.get_running_loop()
                try:
                    infos = await loop.getaddrinfo(
                        origin.host, origin.port, type=socket.SOCK_STREAM
                    )
                except OSError as exc:
                    raise HttpError(f"cannot resolve {origin.host}: {exc}") from exc
                addresses = list(dict.fromkeys(str(i[4][0]) for i in infos))
                self._dns[key] = (time.monotonic() + self.dns_ttl, addresses)
        if not self.allow_private:
            addresses = [a for a in addresses if is_public(a)]
            if not addresses:
                raise RefusedAddress(f"{origin.host} is not a public address")
        return addresses

    async def _connect(self, origin: Origin) -> _Conn:
        last: Exception | None = None
        for address in await self._addresses(origin):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        address,
                        origin.port,
                        ssl=self._ssl if origin.scheme == "https" else None,
                        server_hostname=origin.host if origin.scheme == "https" else None,
                    ),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                last = exc
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _Conn(reader, writer)
        raise HttpError(f"cannot connect to {origin.host}:{origin.port}: {last}")

    # -- requests -----------------------------------------------------------------------------

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status code (redirects are not followed: a 3xx is returned)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RefusedAddress(f"invalid URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RefusedAddress("only http(s) URLs with a host")
        origin = Origin(
            parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {origin.host_header}",
            f"User-Agent: {self.user_agent}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if any(c in head[:-4] for c in (b"\n\n", b"\r\r")):
            raise RefusedAddress("header injection")
        request = head + body
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(origin, request)
        except TimeoutError as exc:
            raise HttpError("timed out") from exc

    async def _exchange(self, origin: Origin, request: bytes) -> int:
        idle = self._idle[origin]
        while idle:
            conn = idle.pop()
            if conn.reader.at_eof() or conn.writer.is_closing():
                conn.close()
                continue
            try:
                return await self._roundtrip(origin, conn, request)
            except _StaleConnection:
                continue  # the server closed it while idle: a fresh connection
        conn = await self._connect(origin)
        try:
            return await self._roundtrip(origin, conn, request)
        except _StaleConnection as exc:
            raise HttpError("connection closed by the receiver") from exc

    async def _roundtrip(self, origin: Origin, conn: _Conn, request: bytes) -> int:
        keep = False
        try:
            conn.writer.write(request)
            await conn.writer.drain()
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _StaleConnection from exc
                raise HttpError("incomplete response") from exc
            except asyncio.LimitOverrunError as exc:
                raise HttpError("response headers too large") from exc
            status, keep, length, chunked = _parse_head(head)
            if chunked:
                keep = await self._drain_chunked(conn) and keep
            elif length is not None:
                if length <= self.max_response_bytes:
                    await conn.reader.readexactly(length)
                else:
                    keep = False  # never read a huge answer: drop the connection instead
            else:
                keep = False
                await conn.reader.read(self.max_response_bytes)
            return status
        except (ConnectionError, OSError) as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        except asyncio.IncompleteReadError as exc:
            raise HttpError("incomplete response") from exc
        finally:
            idle = self._idle[origin]
            if keep and not self._closed and len(idle) < self.max_idle:
                idle.append(conn)
            else:
                conn.close()

    async def _drain_chunked(self, conn: _Conn) -> bool:
        """Read a chunked body up to the cap; False when it was too big (do not reuse)."""
        total = 0
        while True:
            size_line = await conn.reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise HttpError("bad chunked encoding") from exc
            if size == 0:  # then optional trailers, up to an empty line
                while (await conn.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return True
            total += size
            if total > self.max_response_bytes:
                return False
            await conn.reader.readexactly(size + 2)


class _StaleConnection(Exception):
    pass


def _parse_head(head: bytes) -> tuple[int, bool, int | None, bool]:
    """(status, keep-alive, content-length, chunked) from a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    try:
        status = int(parts[1])
    except ValueError as exc:
        raise HttpError("bad status line") from exc
    keep = parts[0] == "HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            try:
                length = int(value)
            except ValueError as exc:
                raise HttpError("bad Content-Length") from exc
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection":
            v = value.lower()
            keep = "close" not in v and (keep or "keep-alive" in v)
    if 100 <= status < 200 or status in (204, 304):
        length = 0
    return status, keep, length, chunked
