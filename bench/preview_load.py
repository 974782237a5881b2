"""HTTP draft-preview throughput: the API at N sellers under 32 concurrent clients, on loopback.

    python -m bench.preview_load [--sellers 100000] [--clients 32] [--duration 30]
                                 [--processes K] [--mode both|cached|unique]

Loads N benchmark sellers into PostgreSQL with COPY (MARKETPLACE_DATABASE_URL/REDIS_URL, or the
embedded default in a temporary folder), starts the service as `marketplace serve --processes K`
(K API processes behind the port, connections dealt in turn; the load generator runs in this
process, on the same machine), waits until every API process answers, then 32 aiohttp clients POST
drafts to `/api/v1/briefs/preview` with a buyer token for a bounded time, once per mode:

- cached: the 89 real briefs in turn; identical drafts are answered from the live index's
  per-generation preview cache after their first scoring;
- unique: every draft is new: three words drawn at random from real vocabulary (the briefs' own
  text and ESCO skill labels, which the seller texts are made of) are appended to its summary,
  so no cache, not even one keyed on the processed query, could answer it.

Prints requests/s, latency p50/p99 and errors per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import asyncpg
import orjson
from tqdm import tqdm

from bench.corpus import DEFAULT_SEED, generate_sellers, load_briefs, load_esco
from bench.pgload import load_sellers, service_urls
from bench.serving import api_service, percentile
from models.migrate import migrate
from models.types import Brief

PREVIEW = "/api/v1/briefs/preview"


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


def vocabulary(briefs: list[Brief]) -> list[str]:
    """Real words for unique drafts: from the briefs' text and the ESCO skill labels (seller
    texts are built from ESCO), 4+ letters, no English stop words; sorted (reproducible)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    texts = [f"{b.title} {b.summary} {' '.join(b.essential_skills)}" for b in briefs]
    texts += [e.label for e in load_esco("esco-skills.csv")]
    words = {w for t in texts for w in re.findall(r"[a-z]{4,}", t.lower())}
    return sorted(words - ENGLISH_STOP_WORDS)


async def prepare(dsn: str, n: int, seed: int | None) -> str:
    """Migrate, COPY N sellers, and issue a buyer token."""
    from models import accounts

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        stream = generate_sellers(n, seed=DEFAULT_SEED if seed is None else seed)
        sellers = tqdm(stream, total=n, desc="COPY sellers", file=sys.stderr, unit="seller")
        await load_sellers(conn, sellers)
        # Now, not during the measurement: autovacuum would analyse the fresh table then.
        await conn.execute("VACUUM ANALYZE sellers")
        account = await accounts.create_account(
            conn, role="buyer", name="Bench buyer", organisation="Bench Department"
        )
        return await accounts.issue_token(conn, account)
    finally:
        await conn.close()


async def load(
    base: str, token: str, briefs: list[Brief], clients: int, duration: float, warmup: float,
    unique: bool = False, seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    drafts = [draft_body(b) for b in briefs]
    bodies = [orjson.dumps(d) for d in drafts]
    words = vocabulary(briefs) if unique else []
    rng = random.Random(seed)
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
                    extra = " ".join(rng.choice(words) for _ in range(3))
                    body = orjson.dumps({**draft, "summary": f"{draft['summary']} {extra}"})
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
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(ordered, 0.5),
        "p99_ms": percentile(ordered, 0.99),
        "errors": sum(v for k, v in statuses.items() if k != "200"),
        "statuses": dict(statuses),
        "mode": "unique" if unique else "cached",
    }


async def run(args: argparse.Namespace, dsn: str, redis_url: str) -> dict[str, Any]:
    # One buyer token drives every client: the per-token rate limit is off (bench.serving).
    token = await prepare(dsn, args.sellers, args.seed)
    modes = ["cached", "unique"] if args.mode == "both" else [args.mode]
    async with api_service(dsn, redis_url, args.processes, args.ready_timeout,
                           args.server_logs, args.server) as (base, ready_s):
        runs = []
        for mode in modes:
            print(f"[preview] server ready in {ready_s:.1f} s; {mode}: {args.clients} clients"
                  f" for {args.duration:.0f} s", file=sys.stderr)
            runs.append(await load(base, token, load_briefs(), args.clients, args.duration,
                                   args.warmup, mode == "unique", args.seed or DEFAULT_SEED))
    return {"sellers": args.sellers, "clients": args.clients, "processes": args.processes,
            "server": args.server,
            "server_ready_s": round(ready_s, 2), "runs": runs,
            "errors": sum(r["errors"] for r in runs)}


def render(r: dict[str, Any]) -> str:
    lines = [
        f"draft preview POST {PREVIEW} · {r['sellers']:,} sellers · {r['clients']} clients"
        f" · {r['processes']} API process(es) ({r.get('server', 'marketplace')})"
        f" · loopback · server ready in"
        f" {r['server_ready_s']} s",
        f"{'mode':<8}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}"
        f"{'errors':>8}{'seconds':>9}",
    ]
    for run in r["runs"]:
        lines.append(f"{run['mode']:<8}{run['requests_per_s']:>12}{run['p50_ms']!s:>10}"
                     f"{run['p99_ms']!s:>10}{run['requests']:>10}{run['errors']:>8}"
                     f"{run['seconds']:>9}")
    lines.append("cached: the 89 real briefs in turn (preview cache per index generation);"
                 " unique: every draft new (3 random real words appended)")
    bad = {run["mode"]: run["statuses"] for run in r["runs"] if run["errors"]}
    if bad:
        lines.append(f"statuses with errors: {bad}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preview_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--processes", type=int, default=1,
                        help="API server processes behind the port (marketplace serve"
                        " --processes K)")
    parser.add_argument("--mode", choices=["both", "cached", "unique"], default="both",
                        help="cached: the 89 briefs in turn; unique: every draft new;"
                        " both (default): one after the other on the same server")
    parser.add_argument("--unique", action="store_true", help="same as --mode unique")
    parser.add_argument("--server-logs", action="store_true", help="show the server's logs")
    parser.add_argument("--server", choices=["marketplace", "gunicorn"], default="marketplace",
                        help="marketplace serve --processes K (default), or gunicorn's aiohttp"
                        " worker with K workers (bench/gunicorn_app.py)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.unique:
        args.mode = "unique"
    with service_urls() as (dsn, redis_url):
        result = asyncio.run(run(args, dsn, redis_url))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
