"""Persist a fitted `SellerIndex` and load it back: pure (de)serialisation, no database.

One file, `np.savez` (uncompressed, no pickle: `allow_pickle=False` on load): the numpy arrays
of the index as they are, plus one JSON document (the vocabularies, the string tables and the
caller's metadata) stored as a uint8 array. Loading is array reads plus rebuilding a few small
Python dicts, so a 100,000-seller index comes back in well under a second instead of a ~10 s
fit.

A snapshot is only valid for the code that wrote it: `FINGERPRINT` hashes the format number and
the source of every module that shapes the index (tokeniser, stemmer, skills, organisations), so
a changed matcher never serves a snapshot built by an older one; `load` raises `SnapshotError`
and the caller refits. Caches (raw token -> term, raw skill -> label, ...) are not stored: they
are derived and refill on use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp

from .index import SellerIndex, TextModel
from .orgs import OrgIndex
from .skills import SkillVocab
from .text import terms

FORMAT = 1
_SHAPING = ("index.py", "text.py", "tokenize.py", "skills.py", "orgs.py", "snapshot.py")


class SnapshotError(Exception):
    """The snapshot is missing, unreadable, corrupt or written by other code."""


def _fingerprint() -> str:
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    here = Path(__file__).resolve().parent
    for name in _SHAPING:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:32]


FINGERPRINT = _fingerprint()

# The per-row numpy arrays of the index (`_Grow` wrappers): stored up to n_rows.
_ROW_ARRAYS = ("ids", "alive", "active", "sme", "day_rate", "n_wins", "last_win",
               "cat_declared", "loc_mask", "has_locations", "skill_start", "skill_count")


def _flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, np.int64)
    np.cumsum([len(x) for x in lists], out=ptr[1:])
    flat = np.fromiter((v for x in lists for v in x), np.int64, int(ptr[-1]))
    return ptr, flat


def _unflatten(ptr: np.ndarray, flat: np.ndarray) -> list[list[int]]:
    values = flat.tolist()
    bounds = ptr.tolist()
    return [values[bounds[i]: bounds[i + 1]] for i in range(len(bounds) - 1)]


def to_arrays(index: SellerIndex, meta: dict[str, Any],
              extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The index as named arrays (what `write` stores), plus the caller's `extra` arrays.

    The index must have no delta (sellers added since fit and not compacted): snapshots are
    taken of freshly fitted indexes. Every Python structure is copied here; the numpy arrays
    are views, so `write` may run later in another thread while the index takes incremental
    changes (those only append rows beyond the views or clear `alive` flags, and a snapshot
    is always re-validated against the database when loaded).
    """
    if index.delta_rows:
        raise ValueError("compact the index before taking a snapshot")
    n = index.n_rows
    arrays: dict[str, np.ndarray] = {f"x_{k}": v for k, v in (extra or {}).items()}
    for name in _ROW_ARRAYS:
        arrays[name] = getattr(index, name).data[:n]
    arrays["cat_wins"] = index.cat_wins[:n]
    arrays["entry_sid"] = index.entry_sid.data[: index.n_entries]
    arrays["entry_row"] = index.entry_row.data[: index.n_entries]
    arrays["inv_order"] = index._inv_order
    arrays["inv_ptr"] = index._inv_ptr
    m = index.matrix
    arrays["m_data"], arrays["m_indices"], arrays["m_indptr"] = m.data, m.indices, m.indptr
    arrays["idf"] = index.text.idf
    arrays["org_ptr"], arrays["org_rows"] = _flatten(index.orgs.rows)
    roles = list(index.role_rows)
    arrays["role_ptr"], arrays["role_rows"] = _flatten([index.role_rows[r] for r in roles])
    # Organisation names per row (explanations): a string table and per-row references.
    table: dict[str, int] = {}
    per_row = [[table.setdefault(name, len(table)) for name in names] for names in index.row_orgs]
    arrays["row_org_ptr"], arrays["row_org_ids"] = _flatten(per_row)
    doc = {
        "format": FORMAT,
        "fingerprint": FINGERPRINT,
        "shape": list(m.shape),
        "n_rows": n,
        "n_main": index.n_main,
        "n_entries": index.n_entries,
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
        "roles": roles,
        "row_org_names": list(table),
        "meta": meta,
    }
    arrays["doc"] = np.frombuffer(orjson.dumps(doc), np.uint8)
    return arrays


def save(index: SellerIndex, path: str | os.PathLike[str], meta: dict[str, Any],
         extra: dict[str, np.ndarray] | None = None) -> int:
    """`to_arrays` then `write`."""
    return write(to_arrays(index, meta, extra), path)


def write(arrays: dict[str, np.ndarray], path: str | os.PathLike[str]) -> int:
    """Write a snapshot atomically (temporary file in the same folder, fsync, rename), so a
    reader never sees half a file. Returns its size in bytes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target.stat().st_size


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The caller's metadata of a snapshot, without loading the arrays."""
    return dict(_open(path)[1]["meta"])


def _open(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    try:
        npz = np.load(path, allow_pickle=False)
        doc = orjson.loads(npz["doc"].tobytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, orjson.JSONDecodeError) as exc:
        raise SnapshotError(f"unreadable snapshot {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(f"snapshot {path} has format {doc.get('format')!r}, not {FORMAT}")
    if doc.get("fingerprint") != FINGERPRINT:
        raise SnapshotError(f"snapshot {path} was written by other matcher code")
    return npz, doc


def load(path: str | os.PathLike[str],
         ) -> tuple[SellerIndex, dict[str, Any], dict[str, np.ndarray]]:
    """(index, the caller's metadata, the caller's extra arrays). Raises FileNotFoundError when
    there is no snapshot and SnapshotError when it cannot be used (corrupt, truncated, other
    format or other matcher code)."""
    npz, doc = _open(path)
    try:
        extra = {name[2:]: npz[name] for name in npz.files if name.startswith("x_")}
        return _build(npz, doc), dict(doc["meta"]), extra
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"corrupt snapshot {path}: {exc}") from exc
    finally:
        npz.close()


def _build(npz: Any, doc: dict[str, Any]) -> SellerIndex:
    a = {name: npz[name] for name in npz.files if name != "doc" and not name.startswith("x_")}
    n = int(doc["n_rows"])
    vocab_list: list[str] = doc["vocab"]
    text = TextModel(
        vocab={t: i for i, t in enumerate(vocab_list)},
        terms=list(doc["terms"]),
        idf=a["idf"],
        n_docs=int(doc["n_docs"]),
    )
    shape = tuple(doc["shape"])
    matrix = sp.csc_matrix((a["m_data"], a["m_indices"], a["m_indptr"]), shape=shape)
    matrix.indices = matrix.indices.astype(np.int32, copy=False)  # as fit_text leaves it
    if len(text.terms) != shape[1] or len(text.idf) != shape[1] or len(vocab_list) != shape[1]:
        raise ValueError("vocabulary and matrix disagree")
    index = SellerIndex(text, matrix, n)
    index.n_main = int(doc["n_main"])
    index.n_rows = n
    for name in _ROW_ARRAYS:
        grow = getattr(index, name)
        if len(a[name]) != n:
            raise ValueError(f"array {name} has {len(a[name])} rows, not {n}")
        grow.data = np.concatenate([a[name], grow.data[n:]]) if len(grow.data) > n else a[name]
        if len(grow.data) < 16:
            grow.ensure(16)
    cat_wins = a["cat_wins"]
    index.cat_wins = np.zeros((max(n, 16), cat_wins.shape[1]), np.uint16)
    index.cat_wins[:n] = cat_wins
    ids = index.ids.data[:n]
    alive = index.alive.data[:n]
    live_rows = np.flatnonzero(alive)
    index.row_of = dict(zip(ids[live_rows].tolist(), live_rows.tolist(), strict=True))
    index.category_code = {str(k): int(v) for k, v in doc["category_code"].items()}
    index.location_code = {str(k): int(v) for k, v in doc["location_code"].items()}
    n_entries = int(doc["n_entries"])
    for name in ("entry_sid", "entry_row"):
        grow = getattr(index, name)
        grow.data = a[name].copy()
        grow.ensure(max(16, n_entries))
    index.n_entries = n_entries
    index._inv_order, index._inv_ptr = a["inv_order"], a["inv_ptr"]
    index._inv_n = int(doc["inv_n"])
    skills = SkillVocab()
    for key, name in zip(doc["skill_keys"], doc["skill_names"], strict=True):
        skills.add(key, name)
    index.skills = skills
    orgs = OrgIndex()
    org_rows = _unflatten(a["org_ptr"], a["org_rows"])
    for oid, (key, name) in enumerate(zip(doc["org_keys"], doc["org_names"], strict=True)):
        orgs.key_id[key] = oid
        orgs.names.append(name)
        counts = Counter(terms(key))
        orgs.org_terms.append(counts)
        orgs.df.update(counts.keys())
        orgs.rows.append(org_rows[oid])
    index.orgs = orgs
    index.role_rows = dict(zip(doc["roles"], _unflatten(a["role_ptr"], a["role_rows"]),
                               strict=True))
    names: list[str] = doc["row_org_names"]
    index.row_orgs = [tuple(names[i] for i in refs)
                      for refs in _unflatten(a["row_org_ptr"], a["row_org_ids"])]
    if len(index.row_orgs) != n:
        raise ValueError("organisation rows disagree with the row count")
    index.n_transformed = int(doc["n_transformed"])
    index.version += 1
    return index


