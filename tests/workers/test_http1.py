"""The lean webhook client against real sockets: keep-alive reuse, chunked and oversized
answers, Connection: close, redirects not followed, a receiver closing idle connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from workers.http1 import Http1Client, HttpError

Responder = Callable[[int], bytes]


class RawServer:
    """An HTTP server written by hand so each test controls the exact bytes answered."""

    def __init__(self, respond: Responder, *, close_after: bool = False) -> None:
        self.respond = respond
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                writer.write(self.respond(len(self.requests)))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(respond: Responder, **kw: bool) -> RawServer:
        raw = RawServer(respond, **kw)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start  # type: ignore[misc]
    for s in servers:
        s.close()


def client(**kw: float) -> Http1Client:
    return Http1Client(
        allow_private=True,
        timeout=kw.get("timeout", 2.0),
        connect_timeout=1.0,
        max_response_bytes=int(kw.get("cap", 1000)),
    )


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_keep_alive_reuse_and_request_shape(serve) -> None:  # type: ignore[no-untyped-def]
    raw = await serve(lambda n: OK)
    c = client()
    try:
        for _ in range(5):
            assert (
                await c.post(f"http://127.0.0.1:{raw.port}/hook?a=1", b'{"x":1}', {"K": "v"}) == 200
            )
    finally:
        await c.close()
    assert raw.connections == 1 and len(raw.requests) == 5
    first = raw.requests[0]
    assert first.startswith(b"POST /hook?a=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{raw.port}\r\n".encode() in first
    assert b"K: v\r\n" in first and first.endswith(b'\r\n\r\n{"x":1}')


async def test_chunked_and_oversized_answers(serve) -> None:  # type: ignore[no-untyped-def]
    chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
    answers = {1: chunked, 2: chunked, 3: huge, 4: OK}
    raw = await serve(lambda n: answers[n])
    c = client(cap=1000)
    try:
        url = f"http://127.0.0.1:{raw.port}/"
        assert [await c.post(url, b"{}", {}) for _ in range(4)] == [201, 201, 200, 200]
    finally:
        await c.close()
    # The chunked answers were drained and the connection reused; the huge one was not read:
    # its connection was dropped.
    assert raw.connections == 2


async def test_connection_close_and_redirect(serve) -> None:  # type: ignore[no-untyped-def]
    redirect = (
        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    )
    raw = await serve(lambda n: redirect, close_after=True)
    c = client()
    try:
        url = f"http://127.0.0.1:{raw.port}/"
        assert await c.post(url, b"{}", {}) == 302  # returned, never followed
        assert await c.post(url, b"{}", {}) == 302
    finally:
        await c.close()
    assert raw.connections == 2 and len(raw.requests) == 2


async def test_stale_idle_connection_is_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    """The receiver closes the connection after answering (without saying so): the next
    request notices and goes out on a fresh connection."""
    raw = await serve(lambda n: OK, close_after=True)
    c = client()
    try:
        url = f"http://127.0.0.1:{raw.port}/"
        assert await c.post(url, b"{}", {}) == 200
        await asyncio.sleep(0.05)
        assert await c.post(url, b"{}", {}) == 200
    finally:
        await c.close()
    assert len(raw.requests) == 2


async def test_timeouts_and_refused_connections(serve) -> None:  # type: ignore[no-untyped-def]
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    c = client(timeout=0.3)
    try:
        with pytest.raises(HttpError, match="timed out"):
            await c.post(f"http://127.0.0.1:{port}/", b"{}", {})
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpError):
            await c.post(f"http://127.0.0.1:{port}/", b"{}", {})
        bad = await serve(lambda n: b"SMTP ready\r\n\r\n")
        with pytest.raises(HttpError, match="not an HTTP"):
            await c.post(f"http://127.0.0.1:{bad.port}/", b"{}", {})
    finally:
        await c.close()
