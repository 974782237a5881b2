"""Persist a fitted `SellerIndex` and map it back: pure (de)serialisation, no database.

One file: a small header (magic, then a JSON document with the vocabularies, the string tables,
the caller's metadata and where each array lies) followed by the index's numpy arrays as raw
bytes, each 64-byte aligned. `load` maps the file (mmap, copy-on-write) instead of reading it:
every process on a host that loads the same snapshot shares one copy of the arrays in the page
cache (the kernel reads a page the first time any of them touches it), and a process that
changes a seller (an `alive` flag cleared, a row appended into the headroom the file keeps
after the last row) gets a private copy of that page only. Loading is a few small Python
structures (vocabularies, skill labels, buyer names), so even a 1,000,000-seller index is
ready in well under a second instead of a minute's fit.

A snapshot is only valid for the code that wrote it: `FINGERPRINT` hashes the format number and
the source of every module that shapes the index (tokeniser, stemmer, skills, organisations, row
tables), so a changed matcher never serves a snapshot built by an older one; `load` raises
`SnapshotError` and the caller refits. Caches (raw token -> term, raw skill -> label, ...) are
not stored: they are derived and refill on use.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .index import SellerIndex, TextModel
from .orgs import OrgIndex
from .postings import TextPostings
from .rows import KeyedRows, RowLists, RowMap, RowNames
from .skills import SkillVocab
from .text import terms

FORMAT = 3
MAGIC = b"MATCHIDX"
_ALIGN = 64
_SHAPING = ("index.py", "text.py", "tokenize.py", "skills.py", "orgs.py", "rows.py",
            "postings.py", "snapshot.py")
# Rows (and skill entries, 8 a row) kept free after the last row: sellers added after the
# snapshot is mapped land there, touching a few private pages, instead of each process
# copying every per-row array into a bigger one of its own.
HEADROOM_SHARE = 0.02
HEADROOM_MIN = 4096


class SnapshotError(Exception):
    """The snapshot is missing, unreadable, corrupt or written by other code."""


def _fingerprint() -> str:
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    here = Path(__file__).resolve().parent
    for name in _SHAPING:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:32]


FINGERPRINT = _fingerprint()

# The per-row numpy arrays of the index (`_Grow` wrappers): n_rows of data, then headroom.
_ROW_ARRAYS = ("ids", "alive", "active", "sme", "day_rate", "n_wins", "last_win",
               "cat_declared", "loc_mask", "has_locations", "skill_start", "skill_count")


def headroom(n_rows: int) -> int:
    return max(HEADROOM_MIN, int(HEADROOM_SHARE * n_rows))


def _padded(data: np.ndarray, used: int, capacity: int, fill: float | int) -> np.ndarray:
    out = np.empty((capacity, *data.shape[1:]), data.dtype)
    out[:used] = data[:used]
    out[used:] = fill
    return out


def to_arrays(index: SellerIndex, meta: dict[str, Any],
              extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The index as named arrays (what `write` stores), plus the caller's `extra` arrays.

    The index must have no delta (sellers added since fit and not compacted): snapshots are
    taken of freshly fitted indexes. Per-row arrays are copied (with the headroom); the others
    are views, so `write` may run later in another thread while the index takes incremental
    changes (those only append rows beyond the copies, clear `alive` flags or add to the
    row tables' Python tails, and a snapshot is re-validated against the database on load).
    """
    if index.delta_rows:
        raise ValueError("compact the index before taking a snapshot")
    n = index.n_rows
    capacity = n + headroom(n)
    arrays: dict[str, np.ndarray] = {f"x_{k}": v for k, v in (extra or {}).items()}
    for name in _ROW_ARRAYS:
        grow = getattr(index, name)
        arrays[name] = _padded(grow.data, n, capacity, grow.fill)
    arrays["cat_wins"] = _padded(index.cat_wins, n, capacity, 0)
    n_entries = index.n_entries
    entry_capacity = n_entries + 8 * headroom(n)
    arrays["entry_sid"] = _padded(index.entry_sid.data, n_entries, entry_capacity, 0)
    arrays["entry_row"] = _padded(index.entry_row.data, n_entries, entry_capacity, 0)
    arrays["inv_order"] = index._inv_order
    arrays["inv_ptr"] = index._inv_ptr
    p = index.postings
    arrays["t_indptr"], arrays["t_lo"], arrays["t_tf"] = p.indptr, p.lo, p.tf
    arrays["t_blocks"], arrays["t_norms"] = p.blocks, p.norms
    arrays["idf"] = index.text.idf
    arrays["rowmap_ids"], arrays["rowmap_rows"] = index.row_of.live_arrays()
    arrays["org_ptr"], arrays["org_rows"] = index.orgs.rows.arrays()
    arrays["role_ptr"], arrays["role_rows"] = index.role_rows.lists.arrays()
    arrays["row_org_ptr"], arrays["row_org_ids"] = index.row_orgs.arrays()
    doc = {
        "format": FORMAT,
        "fingerprint": FINGERPRINT,
        "shape": list(p.shape),
        "max_tf": p.max_tf,
        "n_rows": n,
        "n_main": index.n_main,
        "n_entries": n_entries,
        "inv_n": index._inv_n,
        "n_transformed": index.n_transformed,
        "vocab": sorted(index.text.vocab, key=index.text.vocab.__getitem__),
        "terms": index.text.terms,
        "n_docs": index.text.n_docs,
        "category_code": index.category_code,
        "location_code": index.location_code,
        "skill_keys": sorted(index.skills.key_id, key=index.skills.key_id.__getitem__),
        "skill_names": index.skills.names,
        "org_keys": sorted(index.orgs.key_id, key=index.orgs.key_id.__getitem__),
        "org_names": index.orgs.names,
        "roles": list(index.role_rows.names),
        "row_org_names": list(index.row_orgs.names),
        "meta": meta,
    }
    arrays["doc"] = np.frombuffer(orjson.dumps(doc), np.uint8)
    return arrays


def save(index: SellerIndex, path: str | os.PathLike[str], meta: dict[str, Any],
         extra: dict[str, np.ndarray] | None = None) -> int:
    """`to_arrays` then `write`."""
    return write(to_arrays(index, meta, extra), path)


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def write(arrays: dict[str, np.ndarray], path: str | os.PathLike[str]) -> int:
    """Write a snapshot atomically (temporary file in the same folder, fsync, rename), so a
    reader never sees half a file and a process that mapped the previous one keeps it intact.
    Returns its size in bytes."""
    arrays = dict(arrays)
    doc = orjson.loads(arrays.pop("doc").tobytes())
    table: dict[str, list[Any]] = {}
    offset = 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.hasobject:
            raise ValueError(f"array {name} holds Python objects")
        table[name] = [arr.dtype.str, list(arr.shape), offset]
        offset = _aligned(offset + arr.nbytes)
    doc["arrays"] = table
    header = orjson.dumps(doc)
    start = _aligned(len(MAGIC) + 8 + len(header))
    doc["data_start"] = start
    header = orjson.dumps(doc)
    start = _aligned(len(MAGIC) + 8 + len(header))
    if start != doc["data_start"]:  # the number's own digits moved the boundary
        doc["data_start"] = start
        header = orjson.dumps(doc)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header)
            for name, arr in arrays.items():
                f.seek(start + table[name][2])
                f.write(np.ascontiguousarray(arr).data.cast("B"))
            f.truncate(start + offset)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target.stat().st_size


def _read_header(f: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    start = f.read(len(MAGIC) + 8)
    if len(start) != len(MAGIC) + 8 or not start.startswith(MAGIC):
        raise SnapshotError(f"{path} is not an index snapshot (format {FORMAT})")
    size = int.from_bytes(start[len(MAGIC):], "little")
    if size > 1 << 30:
        raise SnapshotError(f"unreadable snapshot {path}: header of {size} bytes")
    try:
        doc = orjson.loads(f.read(size))
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"unreadable snapshot {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise SnapshotError(f"snapshot {path} has format {found!r}, not {FORMAT}")
    if doc.get("fingerprint") != FINGERPRINT:
        raise SnapshotError(f"snapshot {path} was written by other matcher code")
    return doc


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The caller's metadata of a snapshot, without mapping the arrays."""
    with open(path, "rb") as f:
        return dict(_read_header(f, path)["meta"])


def _map(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The header and every array as a view of one copy-on-write mapping of the file."""
    with open(path, "rb") as f:
        doc = _read_header(f, path)
        size = os.fstat(f.fileno()).st_size
        start = int(doc["data_start"])
        arrays: dict[str, np.ndarray] = {}
        table = doc["arrays"]
        end = start
        for dtype, shape, offset in table.values():
            count = int(np.prod(shape, dtype=np.int64))
            end = max(end, start + int(offset) + count * np.dtype(dtype).itemsize)
        if end > size:
            raise SnapshotError(f"truncated snapshot {path}: {size} bytes, {end} expected")
        # ACCESS_COPY = MAP_PRIVATE: pages come from the shared page cache until this process
        # writes one (then that page alone becomes its own); the file itself never changes.
        buf: mmap.mmap | bytes = b""
        if size:
            buf = mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            if hasattr(mmap, "MADV_WILLNEED"):
                # Read ahead now (the kernel, in the background) rather than fault page by page
                # through the first matches; nothing to do when the page cache has it already.
                mapped.madvise(mmap.MADV_WILLNEED)
    for name, (dtype, shape, offset) in table.items():
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(buf, np.dtype(dtype), count,
                                     start + int(offset)).reshape(shape)
    return arrays, doc


def load(path: str | os.PathLike[str],
         ) -> tuple[SellerIndex, dict[str, Any], dict[str, np.ndarray]]:
    """(index, the caller's metadata, the caller's extra arrays), the arrays mapped from the
    file. Raises FileNotFoundError when there is no snapshot and SnapshotError when it cannot
    be used (corrupt, truncated, other format or other matcher code)."""
    try:
        arrays, doc = _map(path)
    except (FileNotFoundError, SnapshotError):
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"unreadable snapshot {path}: {exc}") from exc
    try:
        extra = {name[2:]: arr for name, arr in arrays.items() if name.startswith("x_")}
        return _build(arrays, doc), dict(doc["meta"]), extra
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SnapshotError(f"corrupt snapshot {path}: {exc}") from exc


def _build(a: dict[str, np.ndarray], doc: dict[str, Any]) -> SellerIndex:
    n = int(doc["n_rows"])
    vocab_list: list[str] = doc["vocab"]
    text = TextModel(
        vocab={t: i for i, t in enumerate(vocab_list)},
        terms=list(doc["terms"]),
        idf=a["idf"],
        n_docs=int(doc["n_docs"]),
    )
    shape = tuple(doc["shape"])
    if len(text.terms) != shape[1] or len(text.idf) != shape[1] or len(vocab_list) != shape[1]:
        raise ValueError("vocabulary and matrix disagree")
    # The mapped arrays as they are (no copy), checked: compiled loops read them unchecked.
    postings = TextPostings(a["t_indptr"], a["t_lo"], a["t_tf"], a["t_blocks"], a["t_norms"],
                            int(shape[0]), int(doc["max_tf"]))
    if len(postings.indptr) != shape[1] + 1:
        raise ValueError("postings and vocabulary disagree")
    postings.check()
    index = SellerIndex(text, postings, 0)
    index.n_main = int(doc["n_main"])
    index.n_rows = n
    for name in _ROW_ARRAYS:
        if len(a[name]) < n:
            raise ValueError(f"array {name} has {len(a[name])} rows, fewer than {n}")
        getattr(index, name).data = a[name]
    if len(a["cat_wins"]) < n:
        raise ValueError("category wins have fewer rows than the index")
    index.cat_wins = a["cat_wins"]
    index.row_of = RowMap(a["rowmap_ids"], a["rowmap_rows"])
    if len(index.row_of) != int(np.count_nonzero(index.alive.data[:n])):
        raise ValueError("the id map disagrees with the live rows")
    index.category_code = {str(k): int(v) for k, v in doc["category_code"].items()}
    index.location_code = {str(k): int(v) for k, v in doc["location_code"].items()}
    n_entries = int(doc["n_entries"])
    for name in ("entry_sid", "entry_row"):
        if len(a[name]) < n_entries:
            raise ValueError(f"array {name} has fewer than {n_entries} entries")
        getattr(index, name).data = a[name]
    index.n_entries = n_entries
    index._inv_order, index._inv_ptr = a["inv_order"], a["inv_ptr"]
    index._inv_n = int(doc["inv_n"])
    skills = SkillVocab()
    for key, name in zip(doc["skill_keys"], doc["skill_names"], strict=True):
        skills.add(key, name)
    index.skills = skills
    orgs = OrgIndex()
    orgs.rows = RowLists(a["org_ptr"], a["org_rows"])
    if len(orgs.rows) != len(doc["org_keys"]):
        raise ValueError("organisation rows disagree with the organisations")
    for oid, (key, name) in enumerate(zip(doc["org_keys"], doc["org_names"], strict=True)):
        orgs.key_id[key] = oid
        orgs.names.append(name)
        counts = Counter(terms(key))
        orgs.org_terms.append(counts)
        orgs.df.update(counts.keys())
    index.orgs = orgs
    roles: list[str] = doc["roles"]
    index.role_rows = KeyedRows(list(roles), RowLists(a["role_ptr"], a["role_rows"]))
    if len(index.role_rows.lists) != len(roles):
        raise ValueError("role rows disagree with the roles")
    index.row_orgs = RowNames(list(doc["row_org_names"]), a["row_org_ptr"], a["row_org_ids"])
    if len(index.row_orgs) != n:
        raise ValueError("organisation rows disagree with the row count")
    index.n_transformed = int(doc["n_transformed"])
    index.version += 1
    return index
