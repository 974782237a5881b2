"""Cost of a rate-limit check: the API's limiter (api.limits.RateLimits, the `limits` library's
sliding-window counter) on Redis/Valkey (shared by every API process) beside the same limiter in
process memory (the fallback, and what per-process limiting costs). Starts an embedded Valkey in
a temporary folder. Prints, per storage: microseconds per check one at a time (latency) and
checks per second with 32 at once (what a busy API process needs), on uvloop.

    .venv/bin/python -m bench.rate_limits [--checks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from api.limits import Limits, RateLimits


async def _measure(limits: RateLimits, n: int) -> tuple[float, float]:
    keys = [f"t:{i % 500}" for i in range(n)]
    t0 = time.perf_counter()
    for key in keys[: n // 4]:
        await limits.hit(limits.requests, key)
    one_at_a_time = (time.perf_counter() - t0) / (n // 4) * 1e6
    sem = asyncio.Semaphore(32)

    async def one(key: str) -> None:
        async with sem:
            await limits.hit(limits.requests, key)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    return one_at_a_time, n / (time.perf_counter() - t0)


def main() -> None:
    import uvloop

    from marketplace.embedded import EmbeddedValkey

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=20000)
    args = parser.parse_args()
    limits = Limits(rate_requests=10**9, rate_seconds=60)  # never refuses: the cost of a check
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        valkey = EmbeddedValkey(Path(tmp))
        url = valkey.start()
        try:
            rows = [
                ("Redis (shared, the API's)", uvloop.run(_measure(RateLimits(limits, url),
                                                                  args.checks))),
                ("process memory (fallback)", uvloop.run(_measure(RateLimits(limits, None),
                                                                  args.checks))),
            ]
        finally:
            valkey.stop()
    print(f"rate-limit checks (limits {RateLimits.__module__}), {args.checks} checks, uvloop")
    print(f"{'storage':<30}{'µs/check, one at a time':>26}{'checks/s, 32 at once':>24}")
    for name, (latency, rate) in rows:
        print(f"{name:<30}{latency:>26,.0f}{rate:>24,.0f}")


if __name__ == "__main__":
    main()
