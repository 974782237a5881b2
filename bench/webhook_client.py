"""Webhook client cost: the worker's hand-written HTTP/1.1 client (workers.http1) beside the
well-kept alternative, an aiohttp ClientSession whose resolver enforces the same address guard
(bench/aiohttp_client.py), to show whether the hand-written one earns its place.

A local receiver (its own process, a minimal asyncio protocol on uvloop, so it is never the
bottleneck) answers every POST 200 with keep-alive. Each client sends the same signed ~1.5 KB
alert body N times with C requests in flight, the way a delivery job does, on uvloop. Printed
per client: deliveries per second (wall) and the client process's CPU time per delivery (user +
system, from getrusage), the median of R alternating rounds.

    .venv/bin/python -m bench.webhook_client [--n 20000] [--concurrency 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Post = Callable[[str, bytes, dict[str, str]], Awaitable[int]]

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Receiver(asyncio.Protocol):
    """Counts complete requests in the stream (head, then Content-Length bytes) and answers
    each with 200."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(_RESPONSE)


def _serve(port_out: Any) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


def _body() -> bytes:
    from workers.delivery import alert_payload

    alert = {
        "id": 123456, "seller_id": 4242, "brief_id": 777, "score": 0.8123, "rank": 3,
        "title": "Discovery for a digital service to apply for a licence",
        "summary": "We need a team to run a discovery on a licensing service. " * 6,
        "organisation": "Department for Example", "category": "digital-outcomes",
        "role": "", "location": "London", "budget": 120000, "max_day_rate": 900,
        "closes_at": None, "published_at": None,
        "explanation": {"summary": "Matches 4 of 5 essential skills", "skills": ["a"] * 8},
    }
    return orjson.dumps(alert_payload(alert, "https://marketplace.example"))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _run(post: Post, url: str, body: bytes, n: int, concurrency: int) -> tuple[float, float]:
    from workers.delivery import sign

    sem = asyncio.Semaphore(concurrency)
    statuses: list[int] = []

    async def one(i: int) -> None:
        async with sem:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": str(i),
                "X-Marketplace-Signature": sign("s" * 32, body, int(time.time())),
                "X-Marketplace-Event": "opportunity.matched",
            }
            statuses.append(await post(url, body, headers))

    await asyncio.gather(*(one(i) for i in range(min(n, concurrency))))  # warm the pool
    statuses.clear()
    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert statuses.count(200) == n, "every delivery must succeed"
    return n / wall, cpu / n * 1e6


async def _round(kind: str, url: str, n: int, concurrency: int) -> tuple[float, float]:
    body = _body()
    if kind == "aiohttp":
        from bench.aiohttp_client import WebhookClient

        client: Any = WebhookClient(
            allow_private=True, timeout=10, connect_timeout=5, max_response_bytes=65536,
            max_connections=concurrency,
        )
    else:
        from workers.http1 import Http1Client

        client = Http1Client(
            allow_private=True, timeout=10, connect_timeout=5, max_response_bytes=65536,
            max_idle_per_origin=concurrency,
        )
    try:
        return await _run(client.post, url, body, n, concurrency)
    finally:
        await client.close()


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    receiver = ctx.Process(target=_serve, args=(ports,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=20)}/hook"
    results: dict[str, list[tuple[float, float]]] = {"http1": [], "aiohttp": []}
    try:
        for _ in range(args.rounds):
            for kind in results:
                results[kind].append(
                    uvloop.run(_round(kind, url, args.n, args.concurrency))
                )
    finally:
        receiver.terminate()
    print(f"webhook deliveries to a local receiver: n={args.n}, {args.concurrency} in flight, "
          f"median of {args.rounds} rounds, uvloop")
    print(f"{'client':<34}{'deliveries/s':>14}{'CPU µs/delivery':>18}")
    names = {"http1": "hand-written HTTP/1.1 (http1)", "aiohttp": "aiohttp.ClientSession+guard"}
    for kind, rounds in results.items():
        rate = statistics.median(r[0] for r in rounds)
        cpu = statistics.median(r[1] for r in rounds)
        print(f"{names[kind]:<34}{rate:>14,.0f}{cpu:>18,.0f}")


if __name__ == "__main__":
    main()
