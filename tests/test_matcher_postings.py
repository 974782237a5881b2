"""The compact postings give bit for bit the scores that stored float32 tf-idf weights gave.

The index keeps counts and per-row norms instead of weights (matcher/postings.py) and rebuilds
each weight when a query reads it. Rankings stay identical only if the rebuilt weights and the
float32 sums are exactly the old ones: here both are compared with the former computation
(numpy's `log` per posting, scipy's CSC mat-vec), across row blocks (over 65,536 rows) and with
counts past 255 (the uint16 path)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from matcher.index import fit_text
from matcher.postings import TextPostings


def _former_matrix(postings: TextPostings, idf: np.ndarray) -> sp.csc_matrix:
    """The weights as `fit_text` computed and stored them before (float32 throughout)."""
    n_terms = len(postings.indptr) - 1
    cols = np.repeat(np.arange(n_terms, dtype=np.int32), np.diff(postings.indptr))
    rows = postings.rows()
    data = (1.0 + np.log(postings.tf.astype(np.float32))) * idf[cols]
    sq = np.bincount(rows, weights=data.astype(np.float64) ** 2, minlength=postings.n_rows)
    norms = np.sqrt(sq).astype(np.float32)
    norms[norms == 0] = 1.0
    data = (data / norms[rows]).astype(np.float32)
    return sp.csc_matrix((data, rows, postings.indptr), shape=postings.shape)


def _docs() -> list[str]:
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(400)] + ["cloud", "data", "python", "design", "research"]
    docs = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(70_000)]
    docs[5] = "loud " * 300 + "cloud data"  # a count past 255: counts kept as uint16
    docs[69_990] = "python " * 7 + "rare"
    return docs


def test_rebuilt_weights_and_scores_are_the_former_ones_bit_for_bit() -> None:
    model, postings = fit_text(_docs())
    assert postings.n_rows == 70_000 and postings.blocks.shape[1] == 3  # two row blocks
    assert postings.tf.dtype == np.uint16 and postings.max_tf == 300
    former = _former_matrix(postings, model.idf)
    assert np.array_equal(postings.norms[:70_000] != 0, np.ones(70_000, np.bool_))
    rebuilt = postings.to_csc(model.idf)
    assert np.array_equal(rebuilt.indices, former.indices)
    assert rebuilt.data.tobytes() == former.data.tobytes()
    rng = np.random.default_rng(1)
    n_terms = len(model.terms)
    for size in (1, 3, 12, 32):
        cols = rng.choice(n_terms, size=size, replace=False)
        weights = rng.random(size).astype(np.float32)
        expected = np.asarray(former[:, cols] @ weights, np.float32)
        assert postings.dot(model.idf, cols, weights).tobytes() == expected.tobytes()
        rows = rng.choice(70_000, size=40, replace=False)
        got, found = postings.lookup(model.idf, cols, rows)
        dense = former[:, cols].toarray()[rows]
        assert np.array_equal(found, dense != 0)
        assert got.tobytes() == dense.astype(np.float32).tobytes()
        marked = postings.mark(cols)
        assert np.array_equal(marked, np.asarray(former[:, cols].sum(axis=1)).ravel() != 0)


def test_uint8_counts_and_an_empty_index() -> None:
    model, postings = fit_text(["cloud data cloud", "python", "", "data data data python"])
    assert postings.tf.dtype == np.uint8 and postings.shape == (4, len(model.terms))
    former = _former_matrix(postings, model.idf)
    assert postings.to_csc(model.idf).data.tobytes() == former.data.tobytes()
    postings.check()
    empty = TextPostings.empty()
    assert empty.dot(np.empty(0, np.float32), np.empty(0, np.int64),
                     np.empty(0, np.float32)).shape == (0,)
