"""Vectorised tokenising of many documents at once (what makes `fit` fast at 100k sellers).

Per-token Python work (a regex match object, a dict lookup, a str per token) costs ~0.3 us and
a 100k-seller corpus has ~30M tokens. Here the documents are one byte buffer: character classes,
token boundaries and a 64-bit polynomial hash of every token come from numpy passes, tokens are
given ids through a hash table held in an array, and only each *distinct* token is decoded to a
Python str (tens of thousands, not millions).

The token definition is the one of `matcher.text.TOKEN_RE` on lowercased text: maximal runs of
ASCII letters (with "+" and "#", for "c++" / "c#") or of digits; anything else separates. Queries
use the regex; both give the same tokens.
"""

from __future__ import annotations

import numpy as np

_CLASS = np.zeros(256, np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+#":
    _CLASS[_c] = 1
for _c in b"0123456789":
    _CLASS[_c] = 2
_LOWER = np.arange(256, dtype=np.uint64)
_LOWER[65:91] += 32

_P = np.uint64(1_000_003)  # odd, so it has an inverse modulo 2**64
_P_INV = np.uint64(pow(1_000_003, -1, 2**64))
_CHUNK_BYTES = 1 << 20
_TABLE_BITS = 22


def _powers(base: np.uint64, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(out, dtype=np.uint64)


class _Powers:
    def __init__(self) -> None:
        self.size = 0
        self.pw = np.empty(0, np.uint64)
        self.inv = np.empty(0, np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > self.size:
            self.size = max(n, _CHUNK_BYTES * 2)
            self.pw = _powers(_P, self.size)
            self.inv = _powers(_P_INV, self.size)
        return self.pw[:n], self.inv[:n]


_POWERS = _Powers()


def tokenize_docs(docs: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All tokens of `docs`: (distinct raw tokens, raw id per token, document per token).

    Tokens come out in document order, so the document array is sorted.
    """
    table = np.zeros(1 << _TABLE_BITS, np.uint64)  # bucket -> full hash of its first token
    table_id = np.full(1 << _TABLE_BITS, -1, np.int64)  # bucket -> raw id
    overflow: dict[int, int] = {}  # full hash -> raw id, for bucket collisions (rare)
    raws: list[str] = []
    id_parts: list[np.ndarray] = []
    doc_parts: list[np.ndarray] = []
    mask = np.uint64((1 << _TABLE_BITS) - 1)
    start_doc = 0
    n = len(docs)
    while start_doc < n:
        # A chunk of whole documents of about _CHUNK_BYTES.
        encoded: list[bytes] = []
        size = 0
        end_doc = start_doc
        while end_doc < n and (size < _CHUNK_BYTES or not encoded):
            b = docs[end_doc].encode("utf-8", "replace")
            encoded.append(b)
            size += len(b) + 1
            end_doc += 1
        buf = b"\x00".join(encoded) + b"\x00"
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) + 1 for b in encoded], out=offsets[1:])
        raw_bytes = np.frombuffer(buf, np.uint8)
        cls = _CLASS[raw_bytes]
        prev = np.empty_like(cls)
        prev[0] = 0
        prev[1:] = cls[:-1]
        nxt = np.empty_like(cls)
        nxt[-1] = 0
        nxt[:-1] = cls[1:]
        is_tok = cls != 0
        starts = np.flatnonzero(is_tok & (cls != prev))
        ends = np.flatnonzero(is_tok & (cls != nxt)) + 1
        pw, inv = _POWERS.get(len(raw_bytes))
        with np.errstate(over="ignore"):
            prefix = np.zeros(len(raw_bytes) + 1, np.uint64)
            np.cumsum(_LOWER[raw_bytes] * pw, out=prefix[1:])
            hashes = (prefix[ends] - prefix[starts]) * inv[starts]
            hashes ^= (ends - starts).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        buckets = (hashes & mask).astype(np.int64)
        ids = table_id[buckets]
        fresh = ids < 0
        if fresh.any():
            # First sighting of these buckets: claim them (first token per bucket wins).
            fb = buckets[fresh]
            uniq_b, first = np.unique(fb, return_index=True)
            fresh_pos = np.flatnonzero(fresh)[first]
            new_ids = np.arange(len(raws), len(raws) + len(uniq_b), dtype=np.int64)
            table_id[uniq_b] = new_ids
            table[uniq_b] = hashes[fresh_pos]
            for s, e in zip(starts[fresh_pos].tolist(), ends[fresh_pos].tolist(), strict=True):
                raws.append(buf[s:e].decode("ascii").lower())
            ids = table_id[buckets]
        clash = table[buckets] != hashes
        if clash.any():
            for pos in np.flatnonzero(clash).tolist():
                h = int(hashes[pos])
                rid = overflow.get(h)
                if rid is None:
                    rid = overflow[h] = len(raws)
                    raws.append(buf[starts[pos]:ends[pos]].decode("ascii").lower())
                ids[pos] = rid
        id_parts.append(ids)
        doc_parts.append(
            (np.searchsorted(offsets, starts, side="right") - 1 + start_doc).astype(np.int32)
        )
        start_doc = end_doc
    if not id_parts:
        return raws, np.empty(0, np.int64), np.empty(0, np.int32)
    return raws, np.concatenate(id_parts), np.concatenate(doc_parts)
