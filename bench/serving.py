"""The service under load for the HTTP benchmarks (bench.load, bench.preview_load).

`api_service` starts the real thing, `marketplace serve --processes K`, on loopback with the
rate limit off (the benchmarks' few tokens would otherwise be throttled by design), waits until
every API process answers and stops it cleanly afterwards; `percentile` is their latency
figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from marketplace.embedded import free_port

HOST = "127.0.0.1"  # loopback only


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of sorted latencies, rounded to 0.01; None when empty."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 2)


async def wait_all_ready(base: str, proc: Any, processes: int, limit: float,
                         snapshot: Path) -> float:
    """Until the index snapshot is on disk (written in the background after the first fit: not
    during the measurement), /health/ready has answered 200 from every API process (its
    index check names the process id) and then 50 fresh connections in a row get 200."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        ok = 0
        pids: set[int] = set()
        while time.perf_counter() - started < limit:
            if proc.returncode is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            if await asyncio.to_thread(snapshot.exists):
                try:
                    async with http.get(f"{base}/health/ready") as resp:
                        if resp.status == 200:
                            pids.add((await resp.json())["checks"]["index"]["pid"])
                            ok += 1
                        else:
                            ok = 0
                except aiohttp.ClientError:
                    ok = 0
                if len(pids) >= processes and ok >= 50:
                    return time.perf_counter() - started
                if len(pids) < processes:
                    await asyncio.sleep(0.05)
                continue
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the server was not ready within {limit:.0f} s")


@contextlib.asynccontextmanager
async def api_service(dsn: str, redis_url: str, processes: int, ready_timeout: float,
                      show_logs: bool = False, server: str = "marketplace",
                      ) -> AsyncIterator[tuple[str, float]]:
    """(base URL, seconds until ready) of `marketplace serve --processes K` on a free loopback
    port, its index snapshot in a temporary folder; stopped (SIGINT) on exit. `server=
    "gunicorn"`: the same API under gunicorn's aiohttp worker with K workers instead
    (bench/gunicorn_app.py; the workers accept on the shared socket themselves)."""
    port = free_port(HOST)
    data_dir = tempfile.TemporaryDirectory(prefix="marketplace-bench-api-")
    env = {
        **os.environ,
        "MARKETPLACE_DATABASE_URL": dsn,
        "MARKETPLACE_REDIS_URL": redis_url,
        "MARKETPLACE_HOST": HOST,
        "MARKETPLACE_PORT": str(port),
        "MARKETPLACE_DATA_DIR": data_dir.name,  # the index snapshot the processes share
        "MARKETPLACE_RATE_LIMIT": os.environ.get("MARKETPLACE_RATE_LIMIT", "off"),
    }
    started = time.perf_counter()
    if server == "gunicorn":
        args = [str(Path(sys.executable).with_name("gunicorn")), "bench.gunicorn_app:app",
                "--worker-class", "aiohttp.GunicornUVLoopWebWorker", "--workers",
                str(processes), "--bind", f"{HOST}:{port}", "--graceful-timeout", "20",
                "--timeout", "600"]
    else:
        args = [sys.executable, "-m", "marketplace.cli", "serve", "--no-migrate",
                "--processes", str(processes)]
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stderr=None if show_logs else asyncio.subprocess.DEVNULL,
    )
    base = f"http://{HOST}:{port}"
    try:
        snapshot = Path(data_dir.name) / "index" / "sellers.idx"
        await wait_all_ready(base, proc, processes, ready_timeout, snapshot)
        yield base, time.perf_counter() - started
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # stops every API process cleanly
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        data_dir.cleanup()
