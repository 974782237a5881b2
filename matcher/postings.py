"""The text index: per term, the rows whose text has it and how often, in 3 bytes a posting.

A seller's text has ~150 distinct terms, so postings are most of an index's bytes. A float32
tf-idf weight plus an int32 row (scipy's CSC) cost 8 bytes each: 1,200 bytes a seller. Here a
posting is its row's low 16 bits (uint16) and the term's count in that row (uint8, uint16 when
a count passes 255); a column's rows are ascending, so its high bits come from per-column
block offsets (`blocks[t, h]`: where rows h * 65536 and up start), 4 bytes per term and block.
The weight is recomputed when a query reads the posting, with the same float32 operations,
in the same order, that `fit` used to compute it:

    weight = float32(float32(tf_weight[tf] * idf[term]) / norm[row])

so every score is bit for bit what stored float32 weights gave (tests/test_matcher_postings.py
compares). The loops that read postings are compiled (numba): one pass over a query's
postings instead of numpy's several, faster than slicing a scipy matrix was.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np
import scipy.sparse as sp

BLOCK_BITS = 16
_LOW = (1 << BLOCK_BITS) - 1


@lru_cache(maxsize=8)
def tf_weights(max_tf: int) -> np.ndarray:
    """float32 1 + log(tf) for tf = 0 .. max_tf (index 0 unused): sublinear tf, computed once
    per count rather than once per posting (the same float32 `log`, so the same values)."""
    counts = np.arange(max(max_tf, 1) + 1, dtype=np.float32)
    counts[0] = 1.0
    out = np.float32(1.0) + np.log(counts)
    out[0] = 0.0
    out.flags.writeable = False  # shared by every caller
    return out  # type: ignore[no-any-return]


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _accumulate(indptr: np.ndarray, lo: np.ndarray, tf: np.ndarray, blocks: np.ndarray,
                lut: np.ndarray, norms: np.ndarray, cols: np.ndarray, w: np.ndarray,
                out: np.ndarray) -> None:  # pragma: no cover - compiled
    # Column by column in query order, rows ascending: scipy's CSC mat-vec order, so the
    # float32 sums are the ones it gave.
    n_blocks = blocks.shape[1] - 1
    for j in range(cols.shape[0]):
        c = cols[j]
        a = indptr[c]
        wj = w[j]
        for h in range(n_blocks):
            base = h << BLOCK_BITS
            for k in range(a + blocks[c, h], a + blocks[c, h + 1]):
                r = base + lo[k]
                v = lut[j, tf[k]] / norms[r]
                out[r] += v * wj


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _mark(indptr: np.ndarray, lo: np.ndarray, blocks: np.ndarray, cols: np.ndarray,
          out: np.ndarray) -> None:  # pragma: no cover - compiled
    n_blocks = blocks.shape[1] - 1
    for j in range(cols.shape[0]):
        c = cols[j]
        a = indptr[c]
        for h in range(n_blocks):
            base = h << BLOCK_BITS
            for k in range(a + blocks[c, h], a + blocks[c, h + 1]):
                out[base + lo[k]] = True


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _lookup(indptr: np.ndarray, lo: np.ndarray, tf: np.ndarray, blocks: np.ndarray,
            lut: np.ndarray, norms: np.ndarray, cols: np.ndarray, rows: np.ndarray,
            out: np.ndarray, found: np.ndarray) -> None:  # pragma: no cover - compiled
    n_blocks = blocks.shape[1] - 1
    for j in range(cols.shape[0]):
        c = cols[j]
        a = indptr[c]
        for i in range(rows.shape[0]):
            r = rows[i]
            h = r >> BLOCK_BITS
            if h >= n_blocks:
                continue
            low = r & _LOW
            s = a + blocks[c, h]
            e = a + blocks[c, h + 1]
            while s < e:  # binary search of the row's low bits in its block
                mid = (s + e) >> 1
                if lo[mid] < low:
                    s = mid + 1
                else:
                    e = mid
            if s < a + blocks[c, h + 1] and lo[s] == low:
                out[i, j] = lut[j, tf[s]] / norms[r]
                found[i, j] = True


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _block_counts(indptr: np.ndarray, rows: np.ndarray, blocks: np.ndarray,
                  ) -> None:  # pragma: no cover - compiled
    for c in range(indptr.shape[0] - 1):
        for k in range(indptr[c], indptr[c + 1]):
            blocks[c, (rows[k] >> BLOCK_BITS) + 1] += 1


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _square_sums(indptr: np.ndarray, lo: np.ndarray, tf: np.ndarray, blocks: np.ndarray,
                 weights: np.ndarray, idf: np.ndarray, out: np.ndarray,
                 ) -> None:  # pragma: no cover - compiled
    # Per row, the float64 squares of its float32 weights summed in term order: what numpy's
    # bincount over the term-major weights did (so the norms are the same to the bit).
    n_blocks = blocks.shape[1] - 1
    for c in range(indptr.shape[0] - 1):
        a = indptr[c]
        w_idf = idf[c]
        for h in range(n_blocks):
            base = h << BLOCK_BITS
            for k in range(a + blocks[c, h], a + blocks[c, h + 1]):
                w = np.float64(weights[tf[k]] * w_idf)
                out[base + lo[k]] += w * w


def l2_norms(indptr: np.ndarray, lo: np.ndarray, tf: np.ndarray, blocks: np.ndarray,
             max_tf: int, idf: np.ndarray, n_rows: int) -> np.ndarray:
    """float32 l2 norm of each row's sublinear tf-idf weights (1 for a row without terms)."""
    n_blocks = blocks.shape[1] - 1
    sq = np.zeros(max(n_blocks << BLOCK_BITS, n_rows), np.float64)
    if len(lo):
        _square_sums(indptr, lo, tf, blocks, tf_weights(max_tf), idf, sq)
    norms = np.sqrt(sq[:n_rows]).astype(np.float32)
    norms[norms == 0] = 1.0
    return norms  # type: ignore[no-any-return]


@dataclass
class TextPostings:
    """Term-major postings of the rows present at the last fit or compaction (see module)."""

    indptr: np.ndarray  # int64, per term: where its postings start
    lo: np.ndarray  # uint16, per posting: row & 0xFFFF
    tf: np.ndarray  # uint8 (uint16 when a count passes 255), per posting
    blocks: np.ndarray  # int32 (terms, blocks + 1): posting offsets of each row block
    norms: np.ndarray  # float32, per row: the l2 norm its weights are divided by
    n_rows: int
    max_tf: int  # the largest count (the length of the per-query weight tables)

    @classmethod
    def build(cls, indptr: np.ndarray, rows: np.ndarray, tf: np.ndarray, norms: np.ndarray,
              n_rows: int) -> TextPostings:
        """From CSC arrays (rows ascending within each term) and integer counts."""
        indptr = np.ascontiguousarray(indptr, np.int64)
        n_terms = len(indptr) - 1
        n_blocks = max(1, -(-n_rows // (1 << BLOCK_BITS)))
        blocks = np.zeros((n_terms, n_blocks + 1), np.int32)
        if len(rows):
            _block_counts(indptr, np.ascontiguousarray(rows), blocks)
        np.cumsum(blocks, axis=1, out=blocks)
        max_tf = int(tf.max()) if len(tf) else 1
        tf_type = np.uint8 if max_tf <= 255 else np.uint16 if max_tf <= 65535 else np.uint32
        return cls.from_parts(indptr, rows.astype(np.uint16), tf.astype(tf_type), blocks, norms,
                              n_rows, max_tf)

    @classmethod
    def from_parts(cls, indptr: np.ndarray, lo: np.ndarray, tf: np.ndarray, blocks: np.ndarray,
                   norms: np.ndarray, n_rows: int, max_tf: int) -> TextPostings:
        """From arrays already in their compact form (`fit_text`: no copies)."""
        n_blocks = blocks.shape[1] - 1
        # Norms (1.0 past the last row) for whole blocks: a posting can never read past them.
        padded = np.ones(n_blocks << BLOCK_BITS, np.float32)
        padded[:n_rows] = norms[:n_rows]
        return cls(np.ascontiguousarray(indptr, np.int64), lo, tf, blocks, padded, n_rows,
                   max_tf)

    @classmethod
    def empty(cls, n_terms: int = 0) -> TextPostings:
        return cls.build(np.zeros(n_terms + 1, np.int64), np.empty(0, np.int32),
                         np.empty(0, np.uint8), np.empty(0, np.float32), 0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.lo)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.indptr, self.lo, self.tf, self.blocks, self.norms))

    def _lut(self, idf: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Per query column, float32 tf weight x idf for every count (fit's first product)."""
        # uint8 counts: a table of all 256, so no count can read past it.
        width = 255 if self.tf.dtype == np.uint8 else self.max_tf
        return tf_weights(width)[None, :] * idf[cols][:, None]  # type: ignore[no-any-return]

    def dot(self, idf: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float32 scores of every row: the sum over `cols` of weight x the row's tf-idf."""
        out = np.zeros(len(self.norms), np.float32)  # whole blocks (see build)
        if len(cols) and self.nnz:
            cols = np.ascontiguousarray(cols, np.int64)
            _accumulate(self.indptr, self.lo, self.tf, self.blocks, self._lut(idf, cols),
                        self.norms, cols, np.ascontiguousarray(weights, np.float32), out)
        return out[: self.n_rows]

    def mark(self, cols: np.ndarray) -> np.ndarray:
        """Per row (n_rows): has it a posting in one of `cols`?"""
        out = np.zeros(len(self.norms), np.bool_)
        if len(cols) and self.nnz:
            _mark(self.indptr, self.lo, self.blocks, np.ascontiguousarray(cols, np.int64), out)
        return out[: self.n_rows]

    def lookup(self, idf: np.ndarray, cols: np.ndarray, rows: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray]:
        """(weights, found): the tf-idf weight of each of `rows` (< n_rows) in each of `cols`."""
        out = np.zeros((len(rows), len(cols)), np.float32)
        found = np.zeros((len(rows), len(cols)), np.bool_)
        if len(cols) and len(rows) and self.nnz:
            cols = np.ascontiguousarray(cols, np.int64)
            _lookup(self.indptr, self.lo, self.tf, self.blocks, self._lut(idf, cols),
                    self.norms, cols, np.ascontiguousarray(rows, np.int64), out, found)
        return out, found

    def rows(self) -> np.ndarray:
        """Every posting's full row (int32), term-major (for compaction)."""
        n_terms = len(self.indptr) - 1
        n_blocks = self.blocks.shape[1] - 1
        counts = np.diff(self.blocks, axis=1).ravel()
        high = np.tile(np.arange(n_blocks, dtype=np.int32) << BLOCK_BITS, n_terms)
        return np.repeat(high, counts) | self.lo.astype(np.int32)

    def weights(self, idf: np.ndarray) -> np.ndarray:
        """Every posting's float32 tf-idf weight, term-major (tests, compaction checks)."""
        n_terms = len(self.indptr) - 1
        cols = np.repeat(np.arange(n_terms), np.diff(self.indptr))
        first = tf_weights(self.max_tf)[self.tf] * idf[cols]
        return first / self.norms[self.rows()]  # type: ignore[no-any-return]

    def to_csc(self, idf: np.ndarray) -> sp.csc_matrix:
        """The float32 tf-idf matrix (rows x terms) these postings stand for (tests, tools)."""
        return sp.csc_matrix((self.weights(idf), self.rows(), self.indptr), shape=self.shape)

    def check(self) -> None:
        """ValueError unless the arrays are consistent (a mapped snapshot's, before use): the
        compiled loops trust them."""
        n_terms = len(self.indptr) - 1
        n_blocks = max(1, -(-self.n_rows // (1 << BLOCK_BITS)))
        if self.blocks.shape != (n_terms, n_blocks + 1) or len(self.tf) != len(self.lo):
            raise ValueError("postings arrays disagree in shape")
        if len(self.norms) != n_blocks << BLOCK_BITS:
            raise ValueError("postings norms disagree with the rows")
        if self.indptr[0] != 0 or self.indptr[-1] != len(self.lo) or (
                np.diff(self.indptr) < 0).any():
            raise ValueError("postings pointers disagree with the postings")
        if (self.blocks[:, 0] != 0).any() or (np.diff(self.blocks, axis=1) < 0).any() or (
                self.blocks[:, -1] != np.diff(self.indptr)).any():
            raise ValueError("postings blocks disagree with the pointers")
        if self.tf.dtype != np.uint8 and len(self.tf) and int(self.tf.max()) > self.max_tf:
            raise ValueError("postings counts exceed their table")
