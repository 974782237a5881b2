"""One index per host: the memory of K matching processes that load the same index snapshot.

    python -m bench.shared_index [--sellers 1000000] [--processes 1,2,4] [--snapshot PATH]

Fits N sellers (the benchmark corpus) once and writes the snapshot (or uses --snapshot PATH when
it exists: a 1,000,000-seller fit takes a minute), then for each K starts K fresh processes
that each load the snapshot and answer the 89 real briefs (every page a match reads is then
resident), and reports the proportional set size (PSS: each shared page counted 1/K in each
process) summed over the K, beside the same processes holding private copies of the arrays
(what every API process had before: K copies). Also: the time from spawning a process to its
first answered match (ready within), and the match latency in those processes.
Needs psutil; Linux (PSS comes from /proc/PID/smaps_rollup).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import orjson  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def child(path: str, private: bool, spawned: float) -> None:
    """Load, match every brief once, report, then wait to be measured (until stdin closes)."""

    from bench.corpus import load_briefs
    from matcher import Matcher
    from matcher import snapshot as snapshots

    if private:
        # What a process that reads (or fits) its own index holds: the file read into its own
        # heap (no mapping: the page cache is not shared with it), every array a view of that.
        def read_all(fileno: int, length: int, access: int = 0) -> bytearray:
            buf = bytearray(os.fstat(fileno).st_size)
            with os.fdopen(os.dup(fileno), "rb") as f:  # shares the offset: rewind
                f.seek(0)
                f.readinto(buf)
            return buf

        snapshots.mmap = SimpleNamespace(mmap=read_all, ACCESS_COPY=0)  # type: ignore[assignment]
    index = snapshots.load(path)[0]
    matcher = Matcher()
    matcher.index_ = index
    briefs = load_briefs()
    first = matcher.match(briefs[0], top_k=50)
    ready = time.time() - spawned
    if not first:
        raise SystemExit("the first brief matched nothing")
    gc.collect()
    lat = []
    for brief in briefs:
        t = time.perf_counter()
        matcher.match(brief, top_k=50)
        lat.append((time.perf_counter() - t) * 1000)
    sys.stdout.write(orjson.dumps({"ready_s": ready, "lat_ms": lat}).decode() + "\n")
    sys.stdout.flush()
    sys.stdin.read()


def _start(path: Path, private: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "bench.shared_index", "--child", str(path),
            "--spawned", repr(time.time())]
    if private:
        args.append("--private")
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def measure(path: Path, k: int, private: bool) -> dict[str, Any]:
    import psutil

    procs = [_start(path, private) for _ in range(k)]
    try:
        reports = []
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"a child exited with {p.wait()}")
            reports.append(orjson.loads(line))
        infos = [psutil.Process(p.pid).memory_full_info() for p in procs]
        lat = [x for r in reports for x in r["lat_ms"]]
        return {
            "k": k, "private": private,
            "pss_total_mb": sum(i.pss for i in infos) / 1e6,
            "rss_total_mb": sum(i.rss for i in infos) / 1e6,
            "uss_total_mb": sum(i.uss for i in infos) / 1e6,
            "ready_s_max": max(r["ready_s"] for r in reports),
            "p50_ms": _percentile(lat, 0.5), "p99_ms": _percentile(lat, 0.99),
        }
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def build(n: int, path: Path) -> tuple[float, int]:
    from bench.corpus import generate_sellers
    from matcher import Matcher
    from matcher import snapshot as snapshots

    sellers = list(generate_sellers(n))
    t = time.perf_counter()
    matcher = Matcher().fit(sellers)
    fit_s = time.perf_counter() - t
    del sellers
    size = snapshots.save(matcher.index_, path, {"sellers": n})
    return fit_s, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--snapshot", help="use (or write) the snapshot here")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--private", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.private, args.spawned)
        return 0
    from matcher import snapshot as snapshots

    folder = None
    if args.snapshot:
        path = Path(args.snapshot)
    else:
        folder = tempfile.mkdtemp(prefix="bench-shared-")
        path = Path(folder) / "sellers.idx"
    fit_s = None
    if path.exists():
        n = int(snapshots.read_meta(path)["sellers"])
        size = path.stat().st_size
    else:
        print(f"[bench] fitting {args.sellers:,} sellers", file=sys.stderr)
        n = args.sellers
        fit_s, size = build(n, path)
    rows = []
    try:
        for k in (int(x) for x in args.processes.split(",")):
            for private in (False, True):
                print(f"[bench] K={k} {'private copies' if private else 'shared snapshot'}",
                      file=sys.stderr)
                rows.append(measure(path, k, private))
    finally:
        if folder is not None:
            path.unlink(missing_ok=True)
            os.rmdir(folder)
    if args.json:
        print(orjson.dumps({"sellers": n, "snapshot_bytes": size, "fit_s": fit_s,
                            "rows": rows}).decode())
        return 0
    print(f"N = {n:,} sellers; snapshot {size / 1e6:,.0f} MB ({size / n:,.0f} bytes a seller)"
          + (f"; fit {fit_s:.1f} s" if fit_s is not None else ""))
    print(f"{'K':>2} {'index':<16} {'PSS total':>10} {'PSS/proc':>9} {'RSS total':>10} "
          f"{'ready (max)':>11} {'p50':>7} {'p99':>7}")
    for r in rows:
        kind = "private copies" if r["private"] else "shared snapshot"
        print(f"{r['k']:>2} {kind:<16} {r['pss_total_mb']:>8,.0f}MB "
              f"{r['pss_total_mb'] / r['k']:>7,.0f}MB {r['rss_total_mb']:>8,.0f}MB "
              f"{r['ready_s_max']:>10.2f}s {r['p50_ms']:>5.1f}ms {r['p99_ms']:>5.1f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
