"""Past one host: two API hosts and two workers on one PostgreSQL and one Redis.

    python -m bench.multi_host [--database-url postgresql://root@127.0.0.1:5432/test]
                               [--redis-url redis://127.0.0.1:6379/13] [--sellers 2000]

Each "host" is its own process tree with its own DATA_DIR (its own index snapshot), as on
separate machines; all four share the database and the queue given (the ordinary servers of the
machine, not embedded ones). The benchmark creates a database of its own next to the one in
--database-url (dropped at the end) and empties the Redis database number it is given (before
and after). It then measures:

- edit on host A, visible on host B: a seller is changed through A's API so that it now fits a
  brief; the time until B's preview of that brief lists it (several edits);
- publish once, match once, deliver once: briefs are published through A and B in turn; each
  must be matched by exactly one of the two workers ("brief matched" log lines per brief), and
  every alert created must reach the webhook receiver exactly once (counted per
  Idempotency-Key) and be marked sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson
from aiohttp import web

from bench.corpus import generate_sellers, load_briefs
from bench.pgload import load_sellers
from bench.preview_load import draft_body
from bench.serving import HOST, percentile
from marketplace.embedded import free_port
from models.migrate import migrate
from models.types import Brief

ADMIN = "multi-host-bench-admin-token"
SECRET = "multi-host-bench-secret-key-shared-by-every-host"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def own_database(admin_url: str) -> AsyncIterator[str]:
    name = f"marketplace_multihost_{os.getpid()}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield _with_database(admin_url, name)
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


class Receiver:
    """A webhook endpoint that counts deliveries per Idempotency-Key."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.port = free_port(HOST)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.keys[request.headers.get("Idempotency-Key", "")] += 1
        return web.Response(status=204)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self.port)
        await site.start()
        try:
            yield f"http://{HOST}:{self.port}/hook"
        finally:
            await runner.cleanup()


class Host:
    """`marketplace serve` or `marketplace worker` with a DATA_DIR of its own."""

    def __init__(self, name: str, command: str, dsn: str, redis_url: str, root: Path) -> None:
        self.name, self.command = name, command
        self.port = free_port(HOST)
        self.data_dir = root / name
        self.data_dir.mkdir()
        self.log = root / f"{name}.log"
        self.env = {
            **os.environ,
            "MARKETPLACE_DATABASE_URL": dsn,
            "MARKETPLACE_REDIS_URL": redis_url,
            "MARKETPLACE_HOST": HOST,
            "MARKETPLACE_PORT": str(self.port),
            "MARKETPLACE_DATA_DIR": str(self.data_dir),
            "MARKETPLACE_ADMIN_TOKEN": ADMIN,
            "MARKETPLACE_SECRET_KEY": SECRET,  # every host signs and checks links alike
            "MARKETPLACE_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is on loopback
            "MARKETPLACE_RATE_LIMIT": "off",
        }
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        args = [sys.executable, "-m", "marketplace.cli", self.command]
        if self.command == "serve":
            args.append("--no-migrate")
        log = await asyncio.to_thread(open, self.log, "wb")
        try:
            self.proc = await asyncio.create_subprocess_exec(*args, env=self.env, stderr=log,
                                                             stdout=log)
        finally:
            log.close()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 40)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def matched(self) -> Counter[int]:
        """Briefs matched by this worker (its "brief matched" log lines)."""
        out: Counter[int] = Counter()
        for line in self.log.read_bytes().splitlines():
            if b"brief matched" in line:
                with contextlib.suppress(ValueError):
                    out[int(orjson.loads(line)["brief_id"])] += 1
        return out


async def _ready(http: aiohttp.ClientSession, host: Host, limit: float = 300.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        assert host.proc is not None
        if host.proc.returncode is not None:
            raise RuntimeError(f"{host.name} exited with {host.proc.returncode}: see {host.log}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{host.base}/health/ready") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{host.name} not ready within {limit:.0f} s")


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str,
                body: Any = None) -> Any:
    async with http.request(method, url, json=body,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
        return data


async def edit_to_visible(http: aiohttp.ClientSession, a: Host, b: Host, buyer: str,
                          briefs: list[Brief], trials: int) -> list[float]:
    """Per trial: a fresh seller (created through A, unrelated text) is changed through A to
    describe a brief's work; milliseconds until B's preview of the brief lists it."""
    out = []
    for i, brief in enumerate(briefs[:trials]):
        created = await _call(http, "POST", f"{a.base}/api/v1/sellers", ADMIN, {
            "name": f"Edited {i}", "summary": "Office catering and event food.",
            "categories": [brief.category], "skills": [], "locations": ["Offsite"]})
        seller_id = created["id"]
        body = draft_body(brief)
        url = f"{b.base}/api/v1/briefs/preview?limit=50"
        before = await _call(http, "POST", url, buyer, body)
        if any(item["seller_id"] == seller_id for item in before["items"]):
            raise RuntimeError("the unrelated seller is already in the preview: no evidence")
        text = " ".join([brief.title, brief.summary, *brief.essential_skills])
        started = time.perf_counter()
        await _call(http, "PATCH", f"{a.base}/api/v1/sellers/{seller_id}", ADMIN, {
            "summary": text[:5000], "skills": [s[:100] for s in brief.essential_skills][:20]})
        while True:
            found = await _call(http, "POST", url, buyer, body)
            if any(item["seller_id"] == seller_id for item in found["items"]):
                out.append((time.perf_counter() - started) * 1000)
                break
            if time.perf_counter() - started > 10:
                raise RuntimeError(f"seller {seller_id} not visible on {b.name} after 10 s")
            await asyncio.sleep(0.01)
    return out


async def publish_and_deliver(http: aiohttp.ClientSession, hosts: list[Host], workers: list[Host],
                              buyer: str, hook: str, receiver: Receiver, n_briefs: int,
                              dsn: str) -> dict[str, Any]:
    # Sellers who want every opportunity at once, by webhook, and fit every brief below.
    topic = ("Kubernetes platform engineering, cloud hosting migration, DevOps pipelines and "
             "site reliability for government digital services")
    for i in range(20):
        host = hosts[i % 2]
        seller = await _call(http, "POST", f"{host.base}/api/v1/sellers", ADMIN, {
            "name": f"Alerted {i}", "summary": topic, "categories": ["digital-outcomes"],
            "skills": ["Kubernetes", "DevOps", "Cloud migration"], "locations": ["Offsite"]})
        await _call(http, "PUT", f"{hosts[1 - i % 2].base}/api/v1/sellers/{seller['id']}"
                    "/alert-preferences", ADMIN, {
                        "frequency": "instant", "webhook_url": hook,
                        "webhook_secret": "multi-host-bench-webhook-secret", "min_score": 0.0})
    await asyncio.sleep(1.5)  # the new sellers reach both hosts' indexes (well within this)
    published: list[int] = []
    started = time.perf_counter()
    for i in range(n_briefs):
        host = hosts[i % 2]
        brief = await _call(http, "POST", f"{host.base}/api/v1/briefs", buyer, {
            "title": f"Kubernetes platform and cloud migration, lot {i}",
            "summary": topic + f". Lot {i}.", "category": "digital-outcomes",
            "location": "Offsite", "essential_skills": ["Kubernetes", "DevOps"],
            "closes_at": str(date.today() + timedelta(days=14))})
        await _call(http, "POST", f"{host.base}/api/v1/briefs/{brief['id']}/publish", buyer)
        published.append(brief["id"])
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.perf_counter() + 120
        while True:
            alerts = await conn.fetch(
                "SELECT id, brief_id, status, channel FROM alerts WHERE brief_id = ANY($1)",
                published)
            matched = Counter[int]()
            for w in workers:
                matched.update(w.matched())
            done = all(matched[b] >= 1 for b in published)
            webhook = [r for r in alerts if r["channel"] == "webhook"]
            if done and webhook and all(r["status"] in ("sent", "failed") for r in webhook):
                await asyncio.sleep(2.0)  # any duplicate run or delivery would show up now
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"not done in 120 s: matched {dict(matched)}, "
                                   f"{Counter(r['status'] for r in webhook)}")
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        alerts = await conn.fetch(
            "SELECT id, brief_id, status, channel FROM alerts WHERE brief_id = ANY($1)", published)
    finally:
        await conn.close()
    per_worker = {w.name: sum(w.matched()[b] for b in published) for w in workers}
    matched = Counter[int]()
    for w in workers:
        matched.update(w.matched())
    webhook_ids = {str(r["id"]) for r in alerts if r["channel"] == "webhook"}
    received = {k: v for k, v in receiver.keys.items() if k in webhook_ids}
    return {
        "briefs": len(published),
        "matched_once": sum(1 for b in published if matched[b] == 1),
        "matched_twice_or_more": sum(1 for b in published if matched[b] > 1),
        "matched_per_worker": per_worker,
        "webhook_alerts": len(webhook_ids),
        "sent": sum(1 for r in alerts if r["channel"] == "webhook" and r["status"] == "sent"),
        "delivered_once": sum(1 for v in received.values() if v == 1),
        "delivered_more_than_once": sum(1 for v in received.values() if v > 1),
        "never_delivered": len(webhook_ids - set(received)),
        "publish_to_all_delivered_s": round(elapsed, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    await _flush_redis(args.redis_url)
    async with own_database(args.database_url) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            await load_sellers(conn, generate_sellers(args.sellers))
        finally:
            await conn.close()
        root = Path(tempfile.mkdtemp(prefix="bench-multi-host-"))
        apis = [Host(f"api-{x}", "serve", dsn, args.redis_url, root) for x in "ab"]
        workers = [Host(f"worker-{x}", "worker", dsn, args.redis_url, root) for x in "ab"]
        receiver = Receiver()
        result: dict[str, Any] = {"sellers": args.sellers}
        try:
            async with receiver.running() as hook, aiohttp.ClientSession() as http:
                for h in apis + workers:
                    await h.start()
                for h in apis:
                    await _ready(http, h)
                await asyncio.sleep(3.0)  # the workers load their indexes too
                buyer = (await _call(http, "POST", f"{apis[0].base}/api/v1/tokens", ADMIN, {
                    "role": "buyer", "name": "Bench buyer", "organisation": "Bench Dept"}))[
                        "token"]
                briefs = [b for b in load_briefs() if b.category][:]
                random.Random(7).shuffle(briefs)
                lat = await edit_to_visible(http, apis[0], apis[1], buyer, briefs, args.edits)
                lat.sort()
                result["edit_on_a_visible_on_b_ms"] = {
                    "p50": percentile(lat, 0.5), "max": round(lat[-1], 1), "n": len(lat)}
                result.update(await publish_and_deliver(
                    http, apis, workers, buyer, hook, receiver, args.briefs, dsn))
        finally:
            for h in apis + workers:
                await h.stop()
            if not args.keep_logs:
                await asyncio.to_thread(shutil.rmtree, root, True)
            else:
                print(f"[bench] logs kept in {root}", file=sys.stderr)
            await _flush_redis(args.redis_url)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://root@127.0.0.1:5432/test",
                        help="a server where this may create (and drop) a database of its own")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13",
                        help="a Redis database number of its own (emptied before and after)")
    parser.add_argument("--sellers", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--briefs", type=int, default=20)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    edit = result["edit_on_a_visible_on_b_ms"]
    print(f"two API hosts + two workers, one PostgreSQL + one Redis, {result['sellers']:,} sellers")
    print(f"edit through host A -> in host B's preview: p50 {edit['p50']} ms, "
          f"max {edit['max']} ms ({edit['n']} edits)")
    print(f"{result['briefs']} briefs published (A and B in turn): matched once "
          f"{result['matched_once']}, more than once {result['matched_twice_or_more']} "
          f"(per worker {result['matched_per_worker']})")
    print(f"webhook alerts {result['webhook_alerts']}: sent {result['sent']}, received once "
          f"{result['delivered_once']}, more than once {result['delivered_more_than_once']}, "
          f"never {result['never_delivered']}; all delivered "
          f"{result['publish_to_all_delivered_s']} s after the first publish")
    ok = (result["matched_once"] == result["briefs"] and result["delivered_more_than_once"] == 0
          and result["never_delivered"] == 0 and edit["max"] < 1000)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
