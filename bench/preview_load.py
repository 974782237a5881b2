"""HTTP draft-preview throughput: the API at N sellers under 32 concurrent clients, on loopback.

    python -m bench.preview_load [--sellers 100000] [--clients 32] [--duration 30]

Loads N benchmark sellers into PostgreSQL with COPY (MARKETPLACE_DATABASE_URL/REDIS_URL, or the
embedded default in a temporary folder), starts the service (`api.app.create_app`) in its own
process (so the clients do not share its event loop), waits until /health/ready answers, then
32 aiohttp clients POST the 89 real briefs as drafts to `/api/v1/briefs/preview` with a buyer
token for a bounded time. Prints requests/s, latency p50/p99 and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import signal
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import asyncpg
import orjson
from tqdm import tqdm

from bench.corpus import DEFAULT_SEED, generate_sellers, load_briefs
from bench.pgload import load_sellers, service_urls
from marketplace.embedded import free_port
from models.migrate import migrate
from models.types import Brief

PREVIEW = "/api/v1/briefs/preview"
HOST = "127.0.0.1"  # loopback only


def draft_body(brief: Brief) -> dict[str, Any]:
    """A brief as the draft a buyer would send (skill lines cut to the API's 100 characters)."""

    def cut(lines: list[str]) -> list[str]:
        return [line[:100].strip() for line in lines if line.strip()][:100]

    return {
        "title": brief.title[:200],
        "summary": brief.summary[:20_000],
        "category": brief.category,
        "role": brief.role[:200],
        "location": brief.location[:200],
        "essential_skills": cut(brief.essential_skills),
        "nice_to_have_skills": cut(brief.nice_to_have_skills),
        "max_day_rate": brief.max_day_rate,
    }


async def prepare(dsn: str, n: int, seed: int | None) -> str:
    """Migrate, COPY N sellers, and issue a buyer token."""
    from models import accounts

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        stream = generate_sellers(n, seed=DEFAULT_SEED if seed is None else seed)
        sellers = tqdm(stream, total=n, desc="COPY sellers", file=sys.stderr, unit="seller")
        await load_sellers(conn, sellers)
        account = await accounts.create_account(
            conn, role="buyer", name="Bench buyer", organisation="Bench Department"
        )
        return await accounts.issue_token(conn, account)
    finally:
        await conn.close()


def serve(port: int) -> None:
    """The server process: the real app, on loopback, settings from the environment."""
    from aiohttp import web

    from api.app import create_app
    from marketplace.settings import Settings

    settings = Settings.from_env()
    web.run_app(create_app(settings), host=HOST, port=port, access_log=None, print=None)


async def wait_ready(session: aiohttp.ClientSession, base: str, proc: Any, limit: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if proc.returncode is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            async with session.get(f"{base}/health/ready") as resp:
                if resp.status == 200:
                    return time.perf_counter() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {limit:.0f} s")


async def load(
    base: str, token: str, briefs: list[Brief], clients: int, duration: float, warmup: float,
    unique: bool = False,
) -> dict[str, Any]:
    drafts = [draft_body(b) for b in briefs]
    seq = itertools.count()
    bodies = [orjson.dumps(d) for d in drafts]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(i: int, until: float, record: bool) -> None:
            k = i
            while time.perf_counter() < until:
                body = bodies[k % len(bodies)]
                if unique:  # a draft never sent before (as a buyer types): no cached preview
                    draft = drafts[k % len(drafts)]
                    body = orjson.dumps({**draft, "summary": f"{draft['summary']} v{next(seq)}"})
                k += clients
                t = time.perf_counter()
                try:
                    async with session.post(f"{base}{PREVIEW}", data=body, headers=headers) as r:
                        await r.read()
                        status = str(r.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                if record:
                    latencies.append((time.perf_counter() - t) * 1000)
                    statuses[status] += 1

        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(client(i, warm_until, False) for i in range(clients)))
        started = time.perf_counter()
        until = started + duration
        await asyncio.gather(*(client(i, until, True) for i in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.5), 2) if ordered else None,
        "p99_ms": round(pct(0.99), 2) if ordered else None,
        "errors": sum(v for k, v in statuses.items() if k != "200"),
        "statuses": dict(statuses),
    }


async def run(args: argparse.Namespace, dsn: str, redis_url: str) -> dict[str, Any]:
    token = await prepare(dsn, args.sellers, args.seed)
    port = free_port(HOST)
    env = {
        **os.environ,
        "MARKETPLACE_DATABASE_URL": dsn,
        "MARKETPLACE_REDIS_URL": redis_url,
        "MARKETPLACE_HOST": HOST,
        "MARKETPLACE_PORT": str(port),
        # One buyer token drives every client: the per-token rate limit would measure itself.
        "MARKETPLACE_RATE_LIMIT": os.environ.get("MARKETPLACE_RATE_LIMIT", "off"),
    }
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.preview_load", "--serve", str(port), env=env,
    )
    base = f"http://{HOST}:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, base, proc, args.ready_timeout)
        ready_s = time.perf_counter() - started
        print(f"[preview] server ready in {ready_s:.1f} s; {args.clients} clients for"
              f" {args.duration:.0f} s", file=sys.stderr)
        result = await load(base, token, load_briefs(), args.clients, args.duration, args.warmup,
                            args.unique)
        result.update(sellers=args.sellers, clients=args.clients, server_ready_s=round(ready_s, 2),
                      unique=args.unique)
        return result
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # aiohttp's run_app shuts down cleanly on SIGINT
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def render(r: dict[str, Any]) -> str:
    return "\n".join([
        f"draft preview POST {PREVIEW} · {r['sellers']:,} sellers · {r['clients']} clients"
        f" · {r['seconds']} s · loopback"
        + (" · every draft unique (no cached previews)" if r.get("unique") else
           " · the 89 briefs in turn"),
        f"{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'errors':>8}"
        f"{'ready s':>9}",
        f"{r['requests_per_s']:>12}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['requests']:>10}"
        f"{r['errors']:>8}{r['server_ready_s']:>9}",
        f"statuses: {r['statuses']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preview_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--unique", action="store_true",
                        help="make every draft unique (measures scoring, not the preview cache)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    with service_urls() as (dsn, redis_url):
        result = asyncio.run(run(args, dsn, redis_url))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
