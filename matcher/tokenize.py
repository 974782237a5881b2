"""Tokenising and counting whole corpora at once (what makes `fit` fast at a million sellers).

Per-token Python work (a regex match object, a dict lookup, a str per token) costs ~0.3 us and
a 1,000,000-seller corpus has ~300M tokens. Here the documents are encoded into byte buffers a
few megabytes at a time and a compiled loop (numba) walks the bytes once: character classes and
lowercasing from 256-entry tables, a 64-bit FNV-1a hash per token, and an open-addressing table
of the distinct tokens (compared byte for byte, so hashes may collide harmlessly). Only each
*distinct* token is decoded to a Python str (tens of thousands, not hundreds of millions).
`term_counts` then counts terms per document and sorts them term-major (two counting passes),
which is what `fit_text` builds its postings from.

The token definition is the one of `matcher.text.TOKEN_RE` on lowercased text: maximal runs of
ASCII letters (with "+" and "#", for "c++" / "c#") or of digits; anything else separates. Queries
use the regex; both give the same tokens (tests/test_matcher.py compares).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np

_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+#"
_DIGITS = b"0123456789"
# The class of every byte (1 letter, 2 digit, 0 separator) and every byte lowercased.
_CLASS = np.frombuffer(bytes(1 if c in _LETTERS else 2 if c in _DIGITS else 0
                             for c in range(256)), np.uint8)
_LOWER = np.frombuffer(bytes(c + 32 if 65 <= c <= 90 else c for c in range(256)), np.uint8)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
# Documents per compiled call: about this many bytes (the token arrays of one chunk stay small).
_CHUNK_BYTES = 1 << 22


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _scan(buf: np.ndarray, doc_ends: np.ndarray, cls: np.ndarray, lower: np.ndarray,
          table: np.ndarray, id_hash: np.ndarray, pool: np.ndarray, pool_start: np.ndarray,
          pool_len: np.ndarray, state: np.ndarray, out_ids: np.ndarray,
          doc_tokens: np.ndarray) -> None:  # pragma: no cover - compiled
    """Tokens of one chunk from byte state[2] on: their ids into out_ids (new distinct tokens
    appended to the pool), tokens per document into doc_tokens. state = [distinct tokens, pool
    bytes used, byte position, document, tokens so far]. Stops early (a token boundary) when
    the table is half full, for the caller to grow it and call again; the caller leaves room
    in the other arrays for a whole chunk."""
    mask = np.uint64(table.shape[0] - 1)
    limit = table.shape[0] // 2
    n = buf.shape[0]
    n_ids, used, i, d, n_tok = state[0], state[1], state[2], state[3], state[4]
    end = doc_ends[d]
    in_doc = 0  # tokens of document d counted since the last write
    while i < n and n_ids < limit:  # locals, not `state`: numba would reload it each token
        c = cls[buf[i]]
        if c == 0:
            i += 1
            continue
        s = i
        h = _FNV_OFFSET
        while i < n and cls[buf[i]] == c:
            h = (h ^ np.uint64(lower[buf[i]])) * _FNV_PRIME
            i += 1
        length = i - s
        if s >= end:
            doc_tokens[d] += in_doc
            in_doc = 0
            while doc_ends[d] <= s:
                d += 1
            end = doc_ends[d]
        slot = h & mask
        while True:
            tid = table[slot]
            if tid < 0:  # a token first seen here
                tid = n_ids
                n_ids += 1
                for k in range(length):
                    pool[used + k] = lower[buf[s + k]]
                pool_start[tid] = used
                pool_len[tid] = length
                id_hash[tid] = h
                used += length
                table[slot] = tid
                break
            if id_hash[tid] == h and pool_len[tid] == length:
                at = pool_start[tid]
                same = True
                for k in range(length):
                    if pool[at + k] != lower[buf[s + k]]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + np.uint64(1)) & mask
        out_ids[n_tok] = tid
        in_doc += 1
        n_tok += 1
    doc_tokens[d] += in_doc
    state[0], state[1], state[2], state[3], state[4] = n_ids, used, i, d, n_tok


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _rehash(id_hash: np.ndarray, n_ids: int, table: np.ndarray) -> None:  # pragma: no cover
    mask = np.uint64(table.shape[0] - 1)
    for tid in range(n_ids):
        slot = id_hash[tid] & mask
        while table[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = tid


class _Tokens:
    """The distinct tokens seen so far (ids in order of first sighting) and their table."""

    def __init__(self) -> None:
        # The table is kept at most half full, so small (in cache) for a corpus of ~100,000
        # distinct tokens; _scan stops when it fills up (see `grow`).
        self.table = np.full(1 << 16, -1, np.int32)
        self.id_hash = np.zeros(1 << 12, np.uint64)
        self.pool_start = np.zeros(1 << 12, np.int64)
        self.pool_len = np.zeros(1 << 12, np.int32)
        self.pool = np.zeros(1 << 16, np.uint8)
        self.state = np.zeros(5, np.int64)  # see _scan

    def room(self, n_bytes: int) -> None:
        """Room for a chunk of n_bytes (at most n_bytes tokens, "a1b2" is 4, all of them new;
        the arrays are zero-filled, so memory is committed only where ids are written)."""
        n_ids, used = int(self.state[0]), int(self.state[1])
        most = n_ids + n_bytes + 1
        if most > len(self.id_hash):
            size = max(most, 2 * len(self.id_hash))
            for name in ("id_hash", "pool_start", "pool_len"):
                old = getattr(self, name)
                new = np.zeros(size, old.dtype)
                new[:n_ids] = old[:n_ids]
                setattr(self, name, new)
        if used + n_bytes > len(self.pool):
            pool = np.zeros(max(used + n_bytes, 2 * len(self.pool)), np.uint8)
            pool[:used] = self.pool[:used]
            self.pool = pool

    def grow(self) -> None:
        """Double the table (rehashing every token seen)."""
        self.table = np.full(2 * len(self.table), -1, np.int32)
        _rehash(self.id_hash, int(self.state[0]), self.table)

    def strings(self) -> list[str]:
        pool = self.pool.tobytes()
        return [pool[s: s + n].decode("ascii") for s, n in zip(
            self.pool_start[: self.state[0]].tolist(), self.pool_len[: self.state[0]].tolist(),
            strict=True)]


def _byte_length(doc: str) -> int:
    return len(doc) if doc.isascii() else len(doc.encode("utf-8", "replace"))


def tokenize(docs: Sequence[str]) -> tuple[list[str], list[tuple[np.ndarray, int]], np.ndarray]:
    """All tokens of `docs`: (distinct raw tokens, per chunk of documents the raw id of each of
    its tokens (int32, in document order) and its number of documents, tokens per document).

    Each document is read once, in order, and only a chunk's worth is held at a time: `docs`
    may make its texts as it is read (a million texts at once are ~3 GB of fresh memory)."""
    tokens = _Tokens()
    n = len(docs)
    per_doc = np.zeros(n, np.int64)
    parts: list[tuple[np.ndarray, int]] = []
    scratch = np.empty(0, np.int32)
    start = 0
    while start < n:
        chunk: list[str] = []
        lengths: list[int] = []
        size = 0
        end = start
        while end < n and (size < _CHUNK_BYTES or not chunk):
            doc = docs[end]
            chunk.append(doc)
            lengths.append(_byte_length(doc))
            size += lengths[-1] + 1
            end += 1
        # Documents end with a NUL (a separator): no token runs from one into the next.
        buf = np.frombuffer(("\x00".join(chunk) + "\x00").encode("utf-8", "replace"), np.uint8)
        del chunk
        doc_ends = np.cumsum(np.asarray(lengths, np.int64) + 1)
        tokens.room(len(buf))
        if len(scratch) < len(buf):  # at most one token a byte ("a1b2" is four)
            scratch = np.empty(max(len(buf), _CHUNK_BYTES + (_CHUNK_BYTES >> 2)), np.int32)
        tokens.state[2:] = 0
        while True:
            _scan(buf, doc_ends, _CLASS, _LOWER, tokens.table, tokens.id_hash, tokens.pool,
                  tokens.pool_start, tokens.pool_len, tokens.state, scratch, per_doc[start:end])
            if tokens.state[2] >= len(buf):
                break
            tokens.grow()
        parts.append((scratch[: tokens.state[4]].copy(), end - start))
        start = end
    return tokens.strings(), parts, per_doc


def tokenize_docs(docs: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(distinct raw tokens, raw id per token, document per token), ids and documents int32."""
    raws, parts, per_doc = tokenize(docs)
    ids = np.concatenate([p for p, _ in parts]) if parts else np.empty(0, np.int32)
    return raws, ids, np.repeat(np.arange(len(docs), dtype=np.int32), per_doc)


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _distinct(raw_ids: np.ndarray, per_doc: np.ndarray, raw_term: np.ndarray, last: np.ndarray,
              first_doc: int, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Distinct terms of each document of a chunk (`last`: the document a term was last
    counted in, across chunks)."""
    k = 0
    for i in range(per_doc.shape[0]):
        d = first_doc + i
        distinct = 0
        for _ in range(per_doc[i]):
            t = raw_term[raw_ids[k]]
            k += 1
            if t >= 0 and last[t] != d:
                last[t] = d
                distinct += 1
        out[i] = distinct


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _fill(raw_ids: np.ndarray, per_doc: np.ndarray, raw_term: np.ndarray, last: np.ndarray,
          slot: np.ndarray, first_doc: int, indptr: np.ndarray, terms: np.ndarray,
          counts: np.ndarray) -> None:  # pragma: no cover - compiled
    """Each document's distinct terms (in order of first use) and their counts."""
    k = 0
    for i in range(per_doc.shape[0]):
        d = first_doc + i
        at = indptr[d]
        for _ in range(per_doc[i]):
            t = raw_term[raw_ids[k]]
            k += 1
            if t < 0:
                continue
            if last[t] != d:
                last[t] = d
                slot[t] = at
                terms[at] = t
                at += 1
            counts[slot[t]] += 1


def _doc_terms(parts: list[tuple[np.ndarray, int]], per_doc: np.ndarray, raw_term: np.ndarray,
               n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document its distinct terms and their counts (CSR), chunk by chunk."""
    n_docs = len(per_doc)
    last = np.full(n_terms, -1, np.int64)
    indptr = np.zeros(n_docs + 1, np.int64)
    first = 0
    for ids, count in parts:
        _distinct(ids, per_doc[first: first + count], raw_term, last, first,
                  indptr[first + 1: first + count + 1])
        first += count
    np.cumsum(indptr, out=indptr)
    terms = np.empty(indptr[-1], np.int32)
    counts = np.zeros(indptr[-1], np.int32)
    slot = np.empty(n_terms, np.int64)
    last[:] = -1
    first = 0
    for ids, count in parts:
        _fill(ids, per_doc[first: first + count], raw_term, last, slot, first, indptr, terms,
              counts)
        first += count
    return indptr, terms, counts


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _term_major(doc_ptr: np.ndarray, terms: np.ndarray, counts: np.ndarray, n_terms: int,
                block_bits: int, low: np.ndarray, tf: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """CSR (documents x terms) to term-major postings (a counting sort, documents ascending in
    each term): each document's low bits into `low`, counts into `tf` (both written once, in
    their final compact types); returns the term pointers and per term and row block where
    its postings start (see matcher/postings.py)."""
    n_docs = doc_ptr.shape[0] - 1
    n_blocks = max(1, (n_docs + (1 << block_bits) - 1) >> block_bits)
    indptr = np.zeros(n_terms + 1, np.int64)
    blocks = np.zeros((n_terms, n_blocks + 1), np.int32)
    for d in range(n_docs):
        h = (d >> block_bits) + 1
        for k in range(doc_ptr[d], doc_ptr[d + 1]):
            indptr[terms[k] + 1] += 1
            blocks[terms[k], h] += 1
    for t in range(n_terms):
        indptr[t + 1] += indptr[t]
        for h in range(n_blocks):
            blocks[t, h + 1] += blocks[t, h]
    fill = indptr[:-1].copy()
    mask = (1 << block_bits) - 1
    for d in range(n_docs):
        for k in range(doc_ptr[d], doc_ptr[d + 1]):
            t = terms[k]
            low[fill[t]] = d & mask
            tf[fill[t]] = counts[k]
            fill[t] += 1
    return indptr, blocks


def term_counts(parts: list[tuple[np.ndarray, int]], per_doc: np.ndarray, raw_term: np.ndarray,
                n_terms: int, block_bits: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(term pointers, documents' low bits, counts, row blocks, largest count): for each term
    the documents that use it (ascending) and how often, from `tokenize`'s output and each raw
    token's term (-1: none)."""
    doc_ptr, terms, counts = _doc_terms(parts, per_doc, raw_term, n_terms)
    max_tf = int(counts.max()) if len(counts) else 1
    tf_type = np.uint8 if max_tf <= 255 else np.uint16 if max_tf <= 65535 else np.uint32
    low = np.empty(len(terms), np.uint16)
    tf = np.empty(len(terms), tf_type)
    indptr, blocks = _term_major(doc_ptr, terms, counts, n_terms, block_bits, low, tf)
    return indptr, low, tf, blocks, max_tf
