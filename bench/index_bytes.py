"""Where an index's bytes go: per array of the fitted index and of its snapshot, per seller.

    python -m bench.index_bytes [--sellers 100000] [--top 15]

Fits N sellers of the benchmark corpus (`bench/corpus.py`) under tracemalloc and prints the heap
retained by the fit (what `bench.matching` reports as ours' bytes/seller), split into each numpy
array of the index (`nbytes`, and how much of it is used rows rather than growth capacity) and
the rest (Python objects: vocabularies, skill labels, names), with the source lines that
allocated the most of that rest; then the snapshot file's arrays and header. Deterministic:
byte counts, no timings.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import tracemalloc
from typing import Any

import numpy as np


def index_arrays(index: Any) -> dict[str, tuple[int, int, str]]:
    """name -> (nbytes, bytes of the used part, dtype) of every numpy array the index holds."""
    from matcher.index import _Grow

    n, entries = index.n_rows, index.n_entries
    out: dict[str, tuple[int, int, str]] = {}
    seen: set[int] = set()

    def put(name: str, arr: np.ndarray, used: int | None = None) -> None:
        if id(arr) in seen or not isinstance(arr, np.ndarray):
            return
        seen.add(id(arr))
        per = arr.nbytes // max(1, len(arr)) if arr.ndim else arr.nbytes
        out[name] = (arr.nbytes, arr.nbytes if used is None else used * per, str(arr.dtype))

    p = index.postings
    for name in ("indptr", "lo", "tf", "blocks", "norms"):
        put(f"postings.{name}", getattr(p, name))
    put("text.idf", index.text.idf)
    for name, value in vars(index).items():
        if isinstance(value, _Grow):
            used = entries if name.startswith("entry_") else n
            put(name, value.data, used)
        elif isinstance(value, np.ndarray):
            put(name, value, n if name == "cat_wins" else None)
    put("row_of.base_ids", index.row_of.base_ids)
    put("row_of.base_rows", index.row_of.base_rows)
    put("role_rows.ptr", index.role_rows.lists.ptr)
    put("role_rows.flat", index.role_rows.lists.flat)
    put("orgs.rows.ptr", index.orgs.rows.ptr)
    put("orgs.rows.flat", index.orgs.rows.flat)
    put("row_orgs.ptr", index.row_orgs.ptr)
    put("row_orgs.refs", index.row_orgs.refs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sellers", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=15, help="source lines of the Python rest")
    args = parser.parse_args()

    from bench.corpus import generate_sellers
    from matcher import Matcher, Rules
    from matcher import snapshot as snapshots

    n = args.sellers
    sellers = list(generate_sellers(n))
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    matcher = Matcher(Rules()).fit(sellers)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - base
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    index = matcher.index_
    arrays = index_arrays(index)
    array_total = sum(b for b, _, _ in arrays.values())
    nnz = index.postings.nnz
    print(f"{n:,} sellers, {nnz:,} postings ({nnz / n:.1f} a seller), "
          f"{len(index.text.terms):,} terms, {index.n_entries:,} skill entries, "
          f"{len(index.skills):,} skill labels")
    print(f"heap retained by fit: {retained:,} B = {retained / n:,.1f} B/seller")
    print(f"\n{'index array':<24}{'dtype':>9}{'bytes':>15}{'B/seller':>10}{'used B/s':>10}")
    for name, (nbytes, used, arr_dtype) in sorted(arrays.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<24}{arr_dtype:>9}{nbytes:>15,}{nbytes / n:>10.1f}{used / n:>10.1f}")
    rest = retained - array_total
    print(f"{'arrays':<33}{array_total:>15,}{array_total / n:>10.1f}")
    print(f"{'the rest (Python objects)':<33}{rest:>15,}{rest / n:>10.1f}")
    print("\nlargest allocations retained by fit, by source line (arrays included):")
    stats = after.compare_to(before, "lineno")
    for stat in stats[: args.top]:
        frame = stat.traceback[0]
        where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
        print(f"  {stat.size_diff / n:>9.1f} B/seller  {stat.count_diff:>10,} blocks  {where}")

    with tempfile.TemporaryDirectory(prefix="index-bytes-") as folder:
        path = os.path.join(folder, "sellers.idx")
        size = snapshots.save(index, path, {"sellers": n})
        stored = snapshots.to_arrays(index, {"sellers": n})
    print(f"\nsnapshot file: {size:,} B = {size / n:,.1f} B/seller")
    print(f"{'snapshot array':<24}{'dtype':>9}{'bytes':>15}{'B/seller':>10}")
    for name, arr in sorted(stored.items(), key=lambda kv: -kv[1].nbytes):
        print(f"{name:<24}{arr.dtype.str:>9}{arr.nbytes:>15,}{arr.nbytes / n:>10.1f}")


if __name__ == "__main__":
    sys.exit(main())
