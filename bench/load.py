"""Mixed load on loopback: shortlist reads, draft previews and publishes against N sellers.

    python -m bench.load [--sellers 100000] [--clients 64] [--duration 60] [--json]

Bounded and local: loads N benchmark sellers into PostgreSQL with COPY (bench.pgload; the
embedded PostgreSQL and Valkey in a temporary folder unless MARKETPLACE_DATABASE_URL and
MARKETPLACE_REDIS_URL are set -- the sellers table is REPLACED), starts the real API
(`marketplace serve --processes K`, bench.serving) on 127.0.0.1 with the rate limit off, waits
until every API process answers, seeds published briefs with stored shortlists (computed by
the live index through the preview endpoint), then runs `--clients` aiohttp clients for
`--duration` seconds, each request drawn from the mix:

- shortlist: GET /api/v1/briefs/{id}/shortlist of a published brief (stored shortlist, 50 rows)
- preview:   POST /api/v1/briefs/preview with one of the 89 real briefs as a draft
- publish:   POST /api/v1/briefs (a draft) then POST /api/v1/briefs/{id}/publish

and stops by itself. Prints requests/s, p50/p99 per kind and errors (any non-2xx or client
error). No worker runs: publishes queue their match jobs in Valkey, as with a worker that lags.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import aiohttp
import asyncpg
import orjson
from tqdm import tqdm

from bench.corpus import DEFAULT_SEED, generate_sellers, load_briefs
from bench.pgload import load_sellers, service_urls
from bench.preview_load import draft_body
from bench.serving import api_service, percentile
from models.migrate import migrate
from models.types import Brief

MIX: dict[str, float] = {"shortlist": 0.6, "preview": 0.3, "publish": 0.1}
BUYERS = 8
PUBLISHED_PER_BUYER = 5


async def prepare(dsn: str, n: int, seed: int | None) -> list[str]:
    """Migrate, COPY N sellers, and issue buyer tokens (one per buyer account)."""
    from models import accounts

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "TRUNCATE audit_events, outbox, alerts, matches, briefs, tokens, accounts CASCADE"
        )
        stream = generate_sellers(n, seed=DEFAULT_SEED if seed is None else seed)
        sellers = tqdm(stream, total=n, desc="COPY sellers", file=sys.stderr, unit="seller")
        await load_sellers(conn, sellers)
        tokens = []
        for i in range(BUYERS):
            account = await accounts.create_account(
                conn, role="buyer", name=f"Bench buyer {i}", organisation=f"Bench Department {i}"
            )
            tokens.append(await accounts.issue_token(conn, account))
        return tokens
    finally:
        await conn.close()


async def seed_published(
    session: aiohttp.ClientSession, base: str, dsn: str, tokens: list[str], briefs: list[Brief]
) -> dict[int, list[int]]:
    """Per buyer, published briefs whose stored shortlist is the live index's real top 50 (the
    worker's job, done here through the preview endpoint since no worker runs)."""
    from models import matches

    owned: dict[int, list[int]] = defaultdict(list)
    conn = await asyncpg.connect(dsn)
    try:
        for b, token in enumerate(tokens):
            headers = {"Authorization": f"Bearer {token}"}
            for k in range(PUBLISHED_PER_BUYER):
                body = draft_body(briefs[(b * PUBLISHED_PER_BUYER + k) % len(briefs)])
                async with session.post(f"{base}/api/v1/briefs", json=body, headers=headers) as r:
                    brief_id = (await r.json())["id"]
                async with session.post(f"{base}/api/v1/briefs/preview?limit=50", json=body,
                                        headers=headers) as r:
                    shortlist = (await r.json())["items"]
                async with session.post(f"{base}/api/v1/briefs/{brief_id}/publish",
                                        headers=headers) as r:
                    assert r.status == 201, await r.text()
                await matches.replace_shortlist(conn, brief_id, shortlist, 0)
                owned[b].append(brief_id)
    finally:
        await conn.close()
    return owned


async def api_pids(base: str, processes: int) -> list[int]:
    """The API processes' ids (each answers /health/ready with its own; connections are dealt
    in turn, so fresh connections reach them all)."""
    pids: set[int] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for _ in range(50 * processes):
            async with http.get(f"{base}/health/ready") as r:
                pids.add((await r.json())["checks"]["index"]["pid"])
            if len(pids) >= processes:
                break
    return sorted(pids)


class CpuMeter:
    """CPU seconds over the measured window: this process (the load generator), the API
    processes, and the whole machine (the rest is PostgreSQL, Valkey and anything else)."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = [psutil.Process(pid) for pid in pids]
        self.psutil = psutil

    def _now(self) -> tuple[float, float, float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        api = sum(sum(p.cpu_times()[:2]) for p in self.procs)
        machine = self.psutil.cpu_times()
        busy = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return time.perf_counter(), own.ru_utime + own.ru_stime, api, busy

    def start(self) -> None:
        self.first = self._now()

    def stop(self) -> dict[str, float]:
        t, gen, api, busy = (b - a for a, b in zip(self.first, self._now(), strict=True))
        return {"cores": float(self.psutil.cpu_count() or 1),
                "load_generator_cores": round(gen / t, 2), "api_cores": round(api / t, 2),
                "machine_busy_cores": round(busy / t, 2)}


async def profile(pids: list[int], seconds: float, folder: str) -> list[asyncio.subprocess.Process]:
    """py-spy sampling each API process for the measured window (raw collapsed stacks)."""
    os.makedirs(folder, exist_ok=True)
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return [await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
        "--format", "raw", "--nonblocking", "--output", os.path.join(folder, f"api-{pid}.txt"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL) for pid in pids]


async def load(
    base: str, tokens: list[str], owned: dict[int, list[int]], briefs: list[Brief],
    clients: int, duration: float, warmup: float, seed: int,
    meter: CpuMeter | None = None, spy_folder: str | None = None,
) -> dict[str, Any]:
    bodies = [orjson.dumps(draft_body(b)) for b in briefs]
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    kinds, weights = list(MIX), list(MIX.values())
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def call(kind: str, method: str, path: str, headers: dict[str, str],
                       body: bytes | None, record: bool) -> Any:
            t = time.perf_counter()
            data = None
            try:
                async with session.request(method, base + path, data=body,
                                           headers=headers) as r:
                    raw = await r.read()
                    status = str(r.status)
                    if r.status < 300 and kind == "create":
                        data = orjson.loads(raw)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if record:
                latencies[kind].append((time.perf_counter() - t) * 1000)
                statuses[kind][status] += 1
            return data

        async def client(i: int, until: float, record: bool) -> None:
            rng = random.Random(seed * 1000 + i + (0 if record else 500))
            buyer = i % len(tokens)
            auth = {"Authorization": f"Bearer {tokens[buyer]}"}
            json_auth = {**auth, "Content-Type": "application/json"}
            while time.perf_counter() < until:
                kind = rng.choices(kinds, weights)[0]
                body = bodies[rng.randrange(len(bodies))]
                if kind == "shortlist":
                    brief_id = rng.choice(owned[buyer])
                    await call(kind, "GET", f"/api/v1/briefs/{brief_id}/shortlist?limit=50",
                               auth, None, record)
                elif kind == "preview":
                    await call(kind, "POST", "/api/v1/briefs/preview", json_auth, body, record)
                else:
                    created = await call("create", "POST", "/api/v1/briefs", json_auth, body,
                                         record)
                    if created:
                        await call(kind, "POST", f"/api/v1/briefs/{created['id']}/publish",
                                   auth, None, record)

        warm_until = time.perf_counter() + warmup
        await asyncio.gather(*(client(i, warm_until, False) for i in range(clients)))
        spies = (await profile([p.pid for p in meter.procs], duration, spy_folder)
                 if meter is not None and spy_folder else [])
        if meter is not None:
            meter.start()
        started = time.perf_counter()
        until = started + duration
        await asyncio.gather(*(client(i, until, True) for i in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = meter.stop() if meter is not None else {}
        for spy in spies:
            await spy.wait()
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in ("shortlist", "preview", "create", "publish"):
        ordered = sorted(latencies[kind])
        ok = {"200", "201"}
        per_kind[kind] = {
            "requests": len(ordered),
            "requests_per_s": round(len(ordered) / elapsed, 1),
            "p50_ms": percentile(ordered, 0.5),
            "p99_ms": percentile(ordered, 0.99),
            "errors": sum(v for k, v in statuses[kind].items() if k not in ok),
            "statuses": dict(statuses[kind]),
        }
    total = sum(k["requests"] for k in per_kind.values())
    return {
        "cpu": cpu,
        "seconds": round(elapsed, 2),
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "errors": sum(k["errors"] for k in per_kind.values()),
        "kinds": per_kind,
    }


async def run(args: argparse.Namespace, dsn: str, redis_url: str) -> dict[str, Any]:
    tokens = await prepare(dsn, args.sellers, args.seed)
    briefs = load_briefs()
    async with api_service(dsn, redis_url, args.processes, args.ready_timeout,
                           server=args.server) as (base, ready_s):
        async with aiohttp.ClientSession() as session:
            owned = await seed_published(session, base, dsn, tokens, briefs)
        print(f"[load] server ready in {ready_s:.1f} s; {args.clients} clients for"
              f" {args.duration:.0f} s", file=sys.stderr)
        meter = CpuMeter(await api_pids(base, args.processes))
        result = await load(base, tokens, owned, briefs, args.clients, args.duration,
                            args.warmup, args.seed or DEFAULT_SEED, meter, args.py_spy)
    result.update(sellers=args.sellers, clients=args.clients, processes=args.processes,
                  server=args.server,
                  server_ready_s=round(ready_s, 2))
    return result


def render(r: dict[str, Any]) -> str:
    lines = [
        f"mixed load · {r['sellers']:,} sellers · {r['clients']} clients"
        f" · {r.get('processes', 1)} API process(es)"
        f" ({r.get('server', 'marketplace')}) · {r['seconds']} s"
        f" · loopback · server ready in {r['server_ready_s']} s",
        f"{'kind':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}",
    ]
    for kind, k in r["kinds"].items():
        lines.append(f"{kind:<10}{k['requests']:>10}{k['requests_per_s']:>9}"
                     f"{k['p50_ms']!s:>9}{k['p99_ms']!s:>9}{k['errors']:>8}")
    lines.append(f"{'total':<10}{r['requests']:>10}{r['requests_per_s']:>9}{'':>18}"
                 f"{r['errors']:>8}")
    cpu = r.get("cpu")
    if cpu:
        lines.append(f"CPU (cores of {cpu['cores']:.0f}): load generator "
                     f"{cpu['load_generator_cores']}, API processes {cpu['api_cores']}, whole "
                     f"machine {cpu['machine_busy_cores']} (the rest: PostgreSQL, Valkey, others)")
    bad = {kind: k["statuses"] for kind, k in r["kinds"].items() if k["errors"]}
    if bad:
        lines.append(f"statuses with errors: {bad}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--processes", type=int, default=1,
                        help="API server processes behind the port (marketplace serve"
                        " --processes K)")
    parser.add_argument("--ready-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--server", choices=["marketplace", "gunicorn"], default="marketplace",
                        help="marketplace serve --processes K (default), or gunicorn's aiohttp"
                        " worker with K workers (bench/gunicorn_app.py)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--py-spy", metavar="DIR",
                        help="sample every API process with py-spy during the measured window"
                        " (raw collapsed stacks into DIR; needs py-spy installed)")
    args = parser.parse_args(argv)
    with service_urls() as (dsn, redis_url):
        result = asyncio.run(run(args, dsn, redis_url))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
