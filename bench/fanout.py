"""Alert fan-out benchmark: one brief matching N sellers (default 10,000), webhooks to a local sink.

    python -m bench.fanout [--sellers 10000] [--json] [--skip-naive]
    (BENCH_TIMELINE=1 prints deliveries per half second; BENCH_PROFILE_DIR=dir profiles the worker)

One run, fresh embedded PostgreSQL and Valkey in a temporary folder, one worker process
(`python -m workers.main`), a local aiohttp sink in this process counting deliveries per
Idempotency-Key and checking every signature. For ours (batched claims, concurrent sends) and
then for the naive fan-out (one arq job per alert) it publishes one brief as the API does and
prints: time from publish to the first delivery, time until the sink has all N, deliveries
per second, and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    mode: str
    sellers: int
    first_alert_s: float
    all_delivered_s: float
    per_second: float
    duplicates: int
    bad_signatures: int


class Sink:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.keys: Counter[str] = Counter()
        self.times: list[float] = []
        self.bad = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.expected = 0
        self.done = asyncio.Event()

    def reset(self, expected: int) -> None:
        self.keys.clear()
        self.times = []
        self.bad = 0
        self.first_at = self.last_at = None
        self.expected = expected
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        from workers.delivery import verify_signature

        body = await request.read()
        now = time.perf_counter()
        if not verify_signature(
            self.secret, request.headers.get("X-Marketplace-Signature", ""), body
        ):
            self.bad += 1
        key = request.headers.get("Idempotency-Key", "")
        self.keys[key] += 1
        self.times.append(now)
        if self.first_at is None:
            self.first_at = now
        if len(self.keys) >= self.expected and not self.done.is_set():
            self.last_at = now
            self.done.set()
        return web.Response(text="ok")


async def _setup_data(database_url: str, n: int, hook_url: str, secret: str) -> None:
    from matcher import Rules
    from models import preferences, rules, sellers
    from models.db import connect
    from models.migrate import migrate

    conn = await connect(database_url)
    try:
        await migrate(conn)
        async with conn.transaction():
            version = await rules.create_version(
                conn, Rules(max_alerts_per_brief=n * 2).to_dict(), "fan-out bench", None
            )
            await rules.activate(conn, version)
        async with conn.transaction():
            for i in range(n):
                row = await sellers.create(
                    conn,
                    {
                        "name": f"Bench Seller {i:06d}",
                        "summary": "We build Python data pipelines and APIs on AWS with "
                        f"PostgreSQL for public services (team {i % 97})",
                        "categories": ["digital-outcomes"],
                        "skills": ["python", "postgresql", "aws"],
                        "locations": ["London"],
                    },
                )
                await preferences.upsert(
                    conn,
                    row["id"],
                    {"frequency": "instant", "webhook_url": hook_url, "webhook_secret": secret},
                )
    finally:
        await conn.close()


async def _publish(database_url: str, redis_url: str, title: str) -> float:
    """As the API publishes: one transaction, then enqueue after commit. Returns commit time."""
    from models import briefs, outbox
    from models.db import create_pool
    from workers.enqueue import create_queue, enqueue_outbox

    pool = await create_pool(database_url, max_size=2)
    redis = await create_queue(redis_url)
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                row = await briefs.create(
                    conn,
                    {
                        "title": title,
                        "summary": "Build data pipelines in Python with PostgreSQL on AWS",
                        "category": "digital-outcomes",
                        "location": "London",
                        "organisation": "Department for Benchmarks",
                        "essential_skills": ["python", "postgresql"],
                    },
                    buyer_account_id=None,
                )
                await briefs.publish(conn, row["id"])
                outbox_id = await outbox.add(conn, "match_brief", [row["id"]])
            committed = time.perf_counter()
        await enqueue_outbox(redis, pool, outbox_id, "match_brief", [row["id"]])
        return committed
    finally:
        await redis.aclose()
        await pool.close()


async def _worker_ready(redis_url: str, proc: subprocess.Popen[bytes], within: float) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the worker exited during start-up")
            if await redis.exists("arq:queue:health-check"):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the worker did not start in time")
    finally:
        await redis.aclose()


def _profile_args(mode: str) -> list[str]:
    """BENCH_PROFILE_DIR=... profiles the worker (cProfile) to find what limits throughput."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    return ["-m", "cProfile", "-o", f"{folder}/worker-{mode}.prof"] if folder else []


async def _run_mode(
    mode: str, n: int, env: dict[str, str], sink: Sink, redis_url: str, database_url: str
) -> Result:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    await redis.delete("arq:queue:health-check")
    await redis.aclose()
    # The naive fan-out is bench/naive_worker.py; ours is the production worker.
    worker = "bench.naive_worker" if mode == "per_alert" else "workers.main"
    log = tempfile.NamedTemporaryFile(prefix=f"fanout-{mode}-", suffix=".log", delete=False)
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting the worker is a one-off
        [sys.executable, *_profile_args(mode), "-m", worker],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await _worker_ready(redis_url, proc, 120)
        sink.reset(n)
        published = await _publish(database_url, redis_url, f"Python data pipelines ({mode})")
        await asyncio.wait_for(sink.done.wait(), 900)
        assert sink.first_at is not None and sink.last_at is not None
        total = sink.last_at - published
        if os.environ.get("BENCH_TIMELINE"):
            buckets = Counter(int((t - published) / 0.5) for t in sink.times)
            print(mode, [buckets.get(i, 0) for i in range(max(buckets) + 1)], file=sys.stderr)
        return Result(
            mode=mode,
            sellers=n,
            first_alert_s=sink.first_at - published,
            all_delivered_s=total,
            per_second=n / total,
            duplicates=sum(v - 1 for v in sink.keys.values()),
            bad_signatures=sink.bad,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink(missing_ok=True)  # noqa: ASYNC240


async def _main(args: argparse.Namespace) -> list[Result]:
    from marketplace.embedded import EmbeddedServices

    secret = "bench-secret"
    sink = Sink(secret)
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook_url = f"http://127.0.0.1:{port}/hook"

    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        services = EmbeddedServices(Path(tmp))
        database_url, redis_url = services.start()
        try:
            print(f"creating {args.sellers} sellers with webhook preferences...", file=sys.stderr)
            await _setup_data(database_url, args.sellers, hook_url, secret)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "MARKETPLACE_DATABASE_URL": database_url,
                "MARKETPLACE_REDIS_URL": redis_url,
                "MARKETPLACE_WEBHOOK_ALLOW_PRIVATE": "1",
                "MARKETPLACE_SECRET_KEY": "bench",
            }
            results = []
            for mode in ["batch"] + ([] if args.skip_naive else ["per_alert"]):
                print(f"fan-out: {mode}...", file=sys.stderr)
                results.append(
                    await _run_mode(mode, args.sellers, env, sink, redis_url, database_url)
                )
        finally:
            services.stop()
            await runner.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    try:  # the receiver should not be the bottleneck we measure
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sellers", type=int, default=10_000)
    parser.add_argument("--skip-naive", action="store_true", help="only our batched fan-out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = asyncio.run(_main(args))
    if args.json:
        print(orjson.dumps([r.__dict__ for r in results]).decode())
        return 0
    names = {"batch": "ours (batched, concurrent)", "per_alert": "naive (1 arq job per alert)"}
    print(f"\nOne brief matching {args.sellers:,} sellers, one worker process, local sink\n")
    print(f"| fan-out | first alert | all {args.sellers:,} delivered | deliveries/s | duplicates |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {names[r.mode]} | {r.first_alert_s:.2f} s | {r.all_delivered_s:.2f} s"
            f" | {r.per_second:,.0f} | {r.duplicates} |"
        )
    if len(results) == 2:
        print(f"\nours / naive throughput: {results[0].per_second / results[1].per_second:.1f}x")
    bad = sum(r.bad_signatures for r in results)
    print(f"bad signatures: {bad}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
