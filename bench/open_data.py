"""Open data exports at scale: `/open-data/opportunities.csv` and `/open-data/ocds.json` from the
real server (`marketplace serve`) at N published briefs (default 100,000).

    .venv/bin/python -m bench.open_data [--briefs 100000] [--runs 3] [--json]

The database is filled with COPY: N published briefs whose texts cycle through the 89 real
Digital Marketplace briefs in marketplace/demo, a quarter of them awarded to one of 5,000
sellers (an award time each), and three "applied" responses on every fifth brief (so the
applicant columns are counted). Then, for each export, `--runs` full downloads by a streaming
client, and one revalidation with If-None-Match. Printed per export: size, time to the first
byte and to the last (best and median of the runs), the server's resident memory (RSS of the
serving process, sampled every 5 ms) before and at its peak during the downloads, and the 304
time. Uses MARKETPLACE_DATABASE_URL / MARKETPLACE_REDIS_URL when both are set (briefs, sellers
and responses are **replaced**), else the embedded PostgreSQL and Valkey in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from bench.pgload import migrated_connection, service_urls
from bench.serving import api_service

DEMO_BRIEFS = Path(__file__).resolve().parents[1] / "marketplace" / "demo"
DEMO_BRIEFS = DEMO_BRIEFS / "briefs-2019-2020.jsonl"
SELLERS = 5_000
EXPORTS = ("/open-data/opportunities.csv", "/open-data/ocds.json")


def _texts() -> list[dict[str, Any]]:
    out = []
    for line in DEMO_BRIEFS.read_text().splitlines():
        if line.strip():
            b = json.loads(line)
            out.append({
                "title": b.get("title", ""),
                "organisation": b.get("Organisation the work is for", ""),
                "summary": b.get("Summary of the work", ""),
                "location": b.get("Location", ""),
                "role": (b.get("Specialist role") or "").lower(),
            })
    return out


async def fill(conn: asyncpg.Connection, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    await conn.execute("TRUNCATE briefs, sellers, responses RESTART IDENTITY CASCADE")
    texts = _texts()
    await conn.copy_records_to_table(
        "sellers", columns=["name", "name_key", "summary", "sme"],
        records=[(f"Seller {i} Ltd", f"seller{i}", texts[i % len(texts)]["summary"], i % 3 == 0)
                 for i in range(1, SELLERS + 1)],
    )
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = []
    for i in range(1, n + 1):
        t = texts[i % len(texts)]
        published = start + timedelta(minutes=10 * i)
        awarded = i % 4 == 0
        records.append((
            i, t["title"], t["organisation"], t["summary"],
            "digital-specialists" if t["role"] else "digital-outcomes", t["role"], t["location"],
            ["python", "user research", "accessibility"], ["aws"],
            "awarded" if awarded else "published", published,
            (published + timedelta(days=14)).date(),
            rng.randint(1, SELLERS) if awarded else None,
            published + timedelta(days=30) if awarded else None,
        ))
    await conn.copy_records_to_table(
        "briefs", records=records,
        columns=["id", "title", "organisation", "summary", "category", "role", "location",
                 "essential_skills", "nice_to_have_skills", "status", "published_at",
                 "closes_at", "winner_seller_id", "awarded_at"],
    )
    await conn.execute("SELECT setval('briefs_id_seq', $1)", n)
    responses = {
        (i, rng.randint(1, SELLERS)) for i in range(5, n + 1, 5) for _ in range(3)
    }
    await conn.copy_records_to_table(
        "responses", columns=["brief_id", "seller_id", "response"],
        records=[(b, s, "applied") for b, s in responses],
    )
    await conn.execute("VACUUM ANALYZE briefs")
    await conn.execute("VACUUM ANALYZE sellers")
    await conn.execute("VACUUM ANALYZE responses")


def _server_processes() -> list[psutil.Process]:
    """The `marketplace serve` process under this one and its children (not PostgreSQL or
    Valkey, which the embedded default also starts under this one)."""
    out: list[psutil.Process] = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("marketplace.cli" in part for part in p.cmdline()):
                out += [p, *p.children(recursive=True)]
        except psutil.Error:
            continue
    return list({p.pid: p for p in out}.values())


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


async def _sample_peak(procs: list[psutil.Process], stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, _rss(procs))
        await asyncio.sleep(0.005)
    return max(peak, _rss(procs))


async def _download(http: aiohttp.ClientSession, url: str) -> tuple[int, float, float, str]:
    started = time.perf_counter()
    first = 0.0
    size = 0
    async with http.get(url) as resp:
        resp.raise_for_status()
        etag = resp.headers.get("ETag", "")
        async for chunk in resp.content.iter_chunked(256 * 1024):
            if not first:
                first = time.perf_counter() - started
            size += len(chunk)
    return size, first, time.perf_counter() - started, etag


async def measure(base: str, runs: int) -> list[dict[str, Any]]:
    procs = _server_processes()
    rows = []
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for path in EXPORTS:
            before = _rss(procs)
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_peak(procs, stop))
            results = [await _download(http, base + path) for _ in range(runs)]
            stop.set()
            peak = await sampler
            etag = results[-1][3]
            started = time.perf_counter()
            async with http.get(base + path, headers={"If-None-Match": etag}) as resp:
                await resp.read()
                status = resp.status
            revalidate = time.perf_counter() - started
            totals = sorted(r[2] for r in results)
            rows.append({
                "export": path.rsplit("/", 1)[-1],
                "bytes": results[-1][0],
                "first_byte_s": round(min(r[1] for r in results), 3),
                "best_s": round(totals[0], 2),
                "median_s": round(statistics.median(totals), 2),
                "rss_before_mb": round(before / 2**20, 1),
                "rss_peak_mb": round(peak / 2**20, 1),
                "rss_growth_mb": round((peak - before) / 2**20, 1),
                "revalidate_status": status,
                "revalidate_ms": round(revalidate * 1000, 1),
            })
        # The dashboard's figures over the same briefs: the first request computes them (the
        # process then serves them from its one-minute cache).
        started = time.perf_counter()
        async with http.get(base + "/api/v1/performance") as resp:
            resp.raise_for_status()
            await resp.read()
        figures = time.perf_counter() - started
        started = time.perf_counter()
        async with http.get(base + "/api/v1/performance") as resp:
            await resp.read()
        cached = time.perf_counter() - started
        rows.append({"export": "performance (JSON)", "bytes": 0, "first_byte_s": 0.0,
                     "best_s": round(figures, 2), "median_s": round(figures, 2),
                     "rss_before_mb": 0.0, "rss_peak_mb": 0.0, "rss_growth_mb": 0.0,
                     "revalidate_status": 0, "revalidate_ms": round(cached * 1000, 1)})
    return rows


def _table(n: int, rows: list[dict[str, Any]]) -> str:
    head = (f"{'export':<18} {'briefs':>8} {'MB':>7} {'1st byte s':>10} {'best s':>7} "
            f"{'median s':>8} {'RSS before MB':>13} {'RSS peak MB':>11} {'growth MB':>9} "
            f"{'304 ms':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["export"].startswith("performance"):
            lines.append(f"{r['export']:<18} {n:>8,}  figures computed in {r['best_s']:.2f} s,"
                         f" then {r['revalidate_ms']:.1f} ms from the one-minute cache")
            continue
        lines.append(
            f"{r['export']:<18} {n:>8,} {r['bytes'] / 2**20:>7.1f} {r['first_byte_s']:>10.3f} "
            f"{r['best_s']:>7.2f} {r['median_s']:>8.2f} {r['rss_before_mb']:>13.1f} "
            f"{r['rss_peak_mb']:>11.1f} {r['rss_growth_mb']:>9.1f} "
            f"{r['revalidate_ms'] if r['revalidate_status'] == 304 else 'no 304':>7}"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    with service_urls() as (dsn, redis_url):
        async with migrated_connection(dsn) as conn:
            started = time.perf_counter()
            await fill(conn, args.briefs)
            print(f"filled {args.briefs:,} briefs in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
        async with api_service(dsn, redis_url, 1, 300) as (base, _ready):
            rows = await measure(base, args.runs)
    if args.json:
        print(json.dumps({"briefs": args.briefs, "runs": args.runs, "exports": rows}, indent=2))
    else:
        print(_table(args.briefs, rows))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--briefs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
