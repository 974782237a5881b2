"""Row tables of the index held as numpy arrays, not as millions of Python objects.

At a million sellers a dict of seller id -> row, a list of row lists per buyer and per role and
a tuple of buyer names per row cost 250-300 bytes a seller in Python objects, are rebuilt one
object at a time when a snapshot loads (seconds), and live in each process's private heap.
Here each is a "base" of flat arrays (built in one numpy pass at `fit`, or mapped from a
snapshot file and so shared by every process that maps it) plus a small Python "tail" of the
changes since (sellers added, updated or removed one at a time), merged into a new base by
`freeze` (at fit and compaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

_EMPTY = np.empty(0, np.int32)


class RowMap:
    """Seller id -> row: sorted id / row arrays plus the ids added or removed since."""

    def __init__(self, ids: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        self.base_ids = ids if ids is not None else np.empty(0, np.int64)  # ascending
        self.base_rows = rows if rows is not None else np.empty(0, np.int64)
        self.added: dict[int, int] = {}
        self.removed: set[int] = set()  # base ids no longer here (an id may also be re-added)

    @classmethod
    def build(cls, ids: np.ndarray, first_row: int = 0) -> RowMap:
        """The map of `ids` at rows first_row, first_row + 1, ...; ValueError on a duplicate."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = np.ascontiguousarray(ids[order], np.int64)
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if len(dup):
            raise ValueError(f"duplicate seller id {int(sorted_ids[dup[0]])}")
        return cls(sorted_ids, (order + first_row).astype(np.int64))

    def _base_row(self, seller_id: int) -> int:
        ids = self.base_ids
        pos = int(np.searchsorted(ids, seller_id))
        if pos < len(ids) and ids[pos] == seller_id and seller_id not in self.removed:
            return int(self.base_rows[pos])
        return -1

    def get(self, seller_id: int, default: int | None = None) -> int | None:
        row = self.added.get(seller_id)
        if row is not None:
            return row
        if not isinstance(seller_id, int | np.integer):
            return default
        row = self._base_row(int(seller_id))
        return row if row >= 0 else default

    def __contains__(self, seller_id: object) -> bool:
        if not isinstance(seller_id, int | np.integer):
            return False
        return self.get(int(seller_id)) is not None

    def __getitem__(self, seller_id: int) -> int:
        row = self.get(seller_id)
        if row is None:
            raise KeyError(seller_id)
        return row

    def __setitem__(self, seller_id: int, row: int) -> None:
        if self._base_row(seller_id) >= 0:
            self.removed.add(seller_id)
        self.added[seller_id] = row

    def pop(self, seller_id: int, default: int | None = None) -> int | None:
        row = self.added.pop(seller_id, None)
        if row is not None:
            return row
        row = self._base_row(seller_id)
        if row < 0:
            return default
        self.removed.add(seller_id)
        return row

    def __len__(self) -> int:
        return len(self.base_ids) - len(self.removed) + len(self.added)

    def __iter__(self) -> Iterator[int]:
        removed = self.removed
        for seller_id in self.base_ids.tolist():
            if seller_id not in removed:
                yield seller_id
        yield from self.added

    def keys(self) -> Iterator[int]:
        return iter(self)

    def isdisjoint(self, ids: Iterable[int]) -> bool:
        return not any(i in self for i in ids)

    def live_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids ascending, rows) of every seller in the map (for a snapshot, or `freeze`)."""
        keep = np.ones(len(self.base_ids), np.bool_)
        if self.removed:
            keep &= ~np.isin(self.base_ids, np.fromiter(self.removed, np.int64))
        ids = np.concatenate([self.base_ids[keep], np.fromiter(self.added, np.int64)])
        rows = np.concatenate([self.base_rows[keep],
                               np.fromiter(self.added.values(), np.int64, len(self.added))])
        order = np.argsort(ids, kind="stable")
        return ids[order], rows[order]

    def freeze(self) -> None:
        if self.added or self.removed:
            self.base_ids, self.base_rows = self.live_arrays()
            self.added, self.removed = {}, set()


class RowLists:
    """Key id (0, 1, ...) -> rows, in the order appended: CSR arrays plus a tail of appends."""

    def __init__(self, ptr: np.ndarray | None = None, flat: np.ndarray | None = None) -> None:
        self.ptr = ptr if ptr is not None else np.zeros(1, np.int64)
        self.flat = flat if flat is not None else _EMPTY
        self.n_keys = len(self.ptr) - 1
        self.tail: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return self.n_keys

    def new_key(self) -> int:
        self.n_keys += 1
        return self.n_keys - 1

    def append(self, key: int, row: int) -> None:
        self.tail.setdefault(key, []).append(row)

    def count(self, key: int) -> int:
        n = int(self.ptr[key + 1] - self.ptr[key]) if key < len(self.ptr) - 1 else 0
        tail = self.tail.get(key)
        return n + (len(tail) if tail else 0)

    def __getitem__(self, key: int) -> np.ndarray:
        base = self.flat[self.ptr[key]: self.ptr[key + 1]] if key < len(self.ptr) - 1 else _EMPTY
        tail = self.tail.get(key)
        if tail:
            return np.concatenate([base, np.asarray(tail, np.int32)])
        return base

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(ptr, flat) with the tail merged in."""
        if not self.tail and len(self.ptr) - 1 == self.n_keys:
            return self.ptr, self.flat
        counts = np.zeros(self.n_keys, np.int64)
        base_n = len(self.ptr) - 1
        counts[:base_n] = np.diff(self.ptr)
        for key, rows in self.tail.items():
            counts[key] += len(rows)
        ptr = np.zeros(self.n_keys + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        flat = np.empty(int(ptr[-1]), np.int32)
        for key in range(self.n_keys):
            at = int(ptr[key])
            if key < base_n:
                base = self.flat[self.ptr[key]: self.ptr[key + 1]]
                flat[at: at + len(base)] = base
                at += len(base)
            appended = self.tail.get(key)
            if appended:
                flat[at: at + len(appended)] = appended
        return ptr, flat

    def freeze(self) -> None:
        self.ptr, self.flat = self.arrays()
        self.tail = {}


class KeyedRows:
    """Name -> rows (roles): a name table over `RowLists`; `get` gives an array or None."""

    def __init__(self, names: list[str] | None = None, lists: RowLists | None = None) -> None:
        self.names = names if names is not None else []
        self.key_id = {name: i for i, name in enumerate(self.names)}
        self.lists = lists if lists is not None else RowLists()

    def add(self, name: str, row: int) -> None:
        key = self.key_id.get(name)
        if key is None:
            key = self.key_id[name] = self.lists.new_key()
            self.names.append(name)
        self.lists.append(key, row)

    def get(self, name: str) -> np.ndarray | None:
        key = self.key_id.get(name)
        return None if key is None else self.lists[key]

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.key_id


class RowNames:
    """Per row, a tuple of names (a seller's buyers, for explanations): refs into one table."""

    def __init__(self, names: list[str] | None = None, ptr: np.ndarray | None = None,
                 refs: np.ndarray | None = None) -> None:
        self.names = names if names is not None else []
        self.name_id = {name: i for i, name in enumerate(self.names)}
        self.ptr = ptr if ptr is not None else np.zeros(1, np.int64)
        self.refs = refs if refs is not None else _EMPTY
        self.tail: list[tuple[int, ...]] = []  # rows appended since the base

    def append(self, names: Iterable[str]) -> None:
        table = self.name_id
        ids = []
        for name in names:
            ref = table.get(name)
            if ref is None:
                ref = table[name] = len(self.names)
                self.names.append(name)
            ids.append(ref)
        self.tail.append(tuple(ids))

    def __len__(self) -> int:
        return len(self.ptr) - 1 + len(self.tail)

    def __getitem__(self, row: int) -> tuple[str, ...]:
        base_n = len(self.ptr) - 1
        if row < base_n:
            refs = self.refs[self.ptr[row]: self.ptr[row + 1]].tolist()
        else:
            refs = list(self.tail[row - base_n])
        return tuple(self.names[i] for i in refs)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.tail:
            return self.ptr, self.refs
        counts = np.fromiter(map(len, self.tail), np.int64, len(self.tail))
        ptr = np.concatenate([self.ptr, self.ptr[-1] + np.cumsum(counts)])
        tail = np.fromiter((r for refs in self.tail for r in refs), np.int32, int(counts.sum()))
        return ptr, np.concatenate([self.refs.astype(np.int32, copy=False), tail])

    def freeze(self) -> None:
        self.ptr, self.refs = self.arrays()
        self.tail = []
