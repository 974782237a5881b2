"""Vectorised tokenising of many documents at once (what makes `fit` fast at 100k sellers).

Per-token Python work (a regex match object, a dict lookup, a str per token) costs ~0.3 us and
a 100k-seller corpus has ~30M tokens. Here the documents are one byte buffer: character classes
and token boundaries come from numpy passes over the bytes, and each token is keyed by its own
bytes read as two little-endian 64-bit words (exact for tokens of up to 16 bytes; longer ones,
rare, are keyed by their text). Keys get ids through a hash table held in arrays, and only each
*distinct* token is decoded to a Python str (tens of thousands, not millions).

The token definition is the one of `matcher.text.TOKEN_RE` on lowercased text: maximal runs of
ASCII letters (with "+" and "#", for "c++" / "c#") or of digits; anything else separates. Queries
use the regex; both give the same tokens.
"""

from __future__ import annotations

import numpy as np

_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+#"
_DIGITS = b"0123456789"
# bytes.translate tables (C, a fraction of a numpy gather's time): the class of every byte
# (1 letter, 2 digit, 0 separator) and every byte lowercased, separators zeroed (keys never
# read past a token's end anyway).
_CLASS = bytes(1 if c in _LETTERS else 2 if c in _DIGITS else 0 for c in range(256))
_LOWER = bytes(c + 32 if 65 <= c <= 90 else c if c in _LETTERS or c in _DIGITS else 0
               for c in range(256))
_MASK = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], np.uint64)
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)
# Chunks of 256 KB of text: the dozen per-token arrays of one chunk (~35k tokens, 8 bytes
# each) stay in the L2 cache (2 MB here). 1 MB chunks took ~30 % longer, 128 KB ones ~15 %.
_CHUNK_BYTES = 1 << 18
_TABLE_BITS = 22
_PAD = 16  # zero bytes after a chunk, so that 8-byte reads past its end stay inside


def _keys(aligned: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Each token's first and second 8 bytes as little-endian uint64s (zero past its end), from
    three aligned words of `aligned` (the chunk read as uint64): gathers and shifts only."""
    q = starts >> 3
    shift = ((starts & 7) << 3).astype(np.uint64)
    back = np.uint64(64) - shift
    w0, w1, w2 = aligned[q], aligned[q + 1], aligned[q + 2]
    aligned_start = shift == 0  # numpy shifts by 64 are not 0: those words need no high part
    high1 = w1 << back
    high1[aligned_start] = 0
    high2 = w2 << back
    high2[aligned_start] = 0
    k1 = ((w0 >> shift) | high1) & _MASK[np.minimum(lengths, 8)]
    k2 = ((w1 >> shift) | high2) & _MASK[np.clip(lengths - 8, 0, 8)]
    return k1, k2


def tokenize_docs(docs: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All tokens of `docs`: (distinct raw tokens, raw id per token, document per token), the
    ids and documents as int32 (a 100k-seller corpus has ~37M tokens: half the memory traffic).

    Tokens come out in document order, so the document array is sorted.
    """
    size = 1 << _TABLE_BITS
    table_k1 = np.zeros(size, np.uint64)  # bucket -> key of its first token
    table_k2 = np.zeros(size, np.uint64)
    table_id = np.full(size, -1, np.int32)  # bucket -> raw id
    overflow: dict[tuple[int, int], int] = {}  # keys -> raw id, for bucket collisions (rare)
    long_ids: dict[bytes, int] = {}  # tokens over 16 bytes -> raw id
    raws: list[str] = []
    id_parts: list[np.ndarray] = []
    doc_parts: list[np.ndarray] = []
    start_doc = 0
    n = len(docs)
    while start_doc < n:
        # A chunk of whole documents of about _CHUNK_BYTES.
        encoded: list[bytes] = []
        chunk = 0
        end_doc = start_doc
        while end_doc < n and (chunk < _CHUNK_BYTES or not encoded):
            b = docs[end_doc].encode("utf-8", "replace")
            encoded.append(b)
            chunk += len(b) + 1
            end_doc += 1
        buf = b"\x00".join(encoded) + b"\x00"
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(b) + 1 for b in encoded], out=offsets[1:])
        cls = np.frombuffer(buf.translate(_CLASS), np.uint8)
        edge = np.empty(len(cls) + 1, np.bool_)  # the class changes between bytes i-1 and i
        edge[0] = edge[-1] = True
        np.not_equal(cls[1:], cls[:-1], out=edge[1:-1])
        is_tok = cls != 0
        starts = np.flatnonzero(edge[:-1] & is_tok)
        ends = np.flatnonzero(edge[1:] & is_tok) + 1
        lowered = buf.translate(_LOWER)
        aligned = np.frombuffer(lowered + bytes(_PAD + (-len(lowered)) % 8), "<u8")
        lengths = ends - starts
        k1, k2 = _keys(aligned, starts, lengths)
        with np.errstate(over="ignore"):
            # Multiply-shift: the top bits of a product depend on every bit of the key (the low
            # ones only on a token's first bytes, which "manage" and "manager" share).
            h = ((k1 * _MIX1) ^ k2) * _MIX2
        buckets = (h >> np.uint64(64 - _TABLE_BITS)).astype(np.int64)
        long = lengths > 16
        buckets[long] = -1  # never claims a bucket: keyed by its text below
        ids = table_id[buckets]
        fresh = (ids < 0) & ~long
        if fresh.any():
            # First sighting of these buckets: claim them (first token per bucket wins).
            fb = buckets[fresh]
            uniq_b, first = np.unique(fb, return_index=True)
            fresh_pos = np.flatnonzero(fresh)[first]
            table_id[uniq_b] = np.arange(len(raws), len(raws) + len(uniq_b), dtype=np.int32)
            table_k1[uniq_b] = k1[fresh_pos]
            table_k2[uniq_b] = k2[fresh_pos]
            for s, e in zip(starts[fresh_pos].tolist(), ends[fresh_pos].tolist(), strict=True):
                raws.append(buf[s:e].decode("ascii").lower())
            ids = table_id[buckets]
        clash = (table_k1[buckets] != k1) | (table_k2[buckets] != k2)
        for pos in np.flatnonzero(clash & ~long).tolist():
            key = (int(k1[pos]), int(k2[pos]))
            rid = overflow.get(key)
            if rid is None:
                rid = overflow[key] = len(raws)
                raws.append(buf[starts[pos]:ends[pos]].decode("ascii").lower())
            ids[pos] = rid
        for pos in np.flatnonzero(long).tolist():
            # Keys hold 16 bytes: a longer token is told apart by its whole text.
            text = buf[starts[pos]:ends[pos]].lower()
            rid = long_ids.get(text)
            if rid is None:
                rid = long_ids[text] = len(raws)
                raws.append(text.decode("ascii"))
            ids[pos] = rid
        id_parts.append(ids)
        # Tokens per document from where each document starts among the tokens (a search per
        # document, not per token).
        per_doc = np.diff(np.searchsorted(starts, offsets))
        doc_parts.append(np.repeat(np.arange(start_doc, end_doc, dtype=np.int32), per_doc))
        start_doc = end_doc
    if not id_parts:
        return raws, np.empty(0, np.int32), np.empty(0, np.int32)
    return raws, np.concatenate(id_parts), np.concatenate(doc_parts)
