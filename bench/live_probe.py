"""The second process of the edit-to-visible benchmark: a fresh process that loads the sellers
from PostgreSQL, says when it is ready to match, then watches for edits.

Protocol (one line each, on stdin/stdout):
  -> "ready <n_sellers> <seconds since main() began> <snapshot|fit>"   when it can match
  <- "watch <seller_id> <brief_id>" -> "absent" | "present"; after "absent" it matches the brief
     every few ms and answers "seen" once the seller is in the top 50 (or "timeout" after 10 s)
  <- "quit"
`--mode live` uses workers.live_index.LiveMatcher (LISTEN/NOTIFY, incremental updates);
`--mode plain` (when that module is missing) loads and fits once, so only "ready" means anything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bench.corpus import load_briefs  # noqa: E402
from models.types import Brief  # noqa: E402

WATCH_TIMEOUT = 10.0


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main(dsn: str, mode: str, snapshot: str | None = None) -> None:
    began = time.perf_counter()
    from matcher import Matcher
    from models.db import connect, create_pool

    briefs: dict[int, Brief] = {b.id: b for b in load_briefs()}
    live = None
    pool = None
    if mode == "live":
        from live import LiveMatcher

        pool = await create_pool(dsn, min_size=1, max_size=2)
        live = LiveMatcher(pool, dsn, snapshot_path=snapshot)
        await live.start()

        def current() -> Matcher:
            return live.matcher
    else:
        from models.sellers import load_all

        conn = await connect(dsn)
        try:
            fitted = Matcher().fit(await load_all(conn))
        finally:
            await conn.close()

        def current() -> Matcher:
            return fitted

    source = getattr(live, "source", "") or "fit"
    _say(f"ready {len(current())} {time.perf_counter() - began:.3f} {source}")
    try:
        while True:
            line = (await _read_line()).strip()
            if not line or line == "quit":
                return
            _, seller_id, brief_id = line.split()
            sid, brief = int(seller_id), briefs[int(brief_id)]

            async def visible(sid: int = sid, brief: Brief = brief) -> bool:
                if live is not None and hasattr(live, "match"):
                    found = await live.match(brief, top_k=50)  # under its lock
                else:
                    found = current().match(brief, top_k=50)
                return any(m.seller_id == sid for m in found)

            if await visible():
                _say("present")
                continue
            _say("absent")
            deadline = time.monotonic() + WATCH_TIMEOUT
            while not await visible():
                if time.monotonic() > deadline:
                    _say("timeout")
                    break
                await asyncio.sleep(0.002)  # let the LISTEN handler run between probes
            else:
                _say("seen")
    finally:
        if live is not None:
            await live.stop()
        if pool is not None:
            await pool.close()


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--mode", choices=("live", "plain"), default="live")
    parser.add_argument("--snapshot", help="index snapshot file (LiveMatcher snapshot_path)")
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.mode, args.snapshot))


if __name__ == "__main__":
    run()
