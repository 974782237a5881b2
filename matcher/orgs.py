"""Buyer organisations: which sellers worked for this buyer, or for one much like it.

Buyers write their names many ways ("Home Office", "Home Office Immigration Technology",
"HM Courts and Tribunals Service (HMCTS) & Crown Prosecution Service"), so exact matching
misses most repeat business. Each distinct organisation name is a tiny TF-IDF document (IDF over
distinct names, so "department" weighs little and "passport" much); a brief's organisation is
compared with the distinct names only (hundreds to thousands), never with sellers.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import scipy.sparse as sp

from .rows import RowLists
from .text import norm_org, terms

MIN_SIMILARITY = 0.2  # below this two names share only generic words


class OrgIndex:
    def __init__(self) -> None:
        self.key_id: dict[str, int] = {}
        self.names: list[str] = []  # as first written, for explanations
        self.org_terms: list[Counter[str]] = []
        self.rows = RowLists()  # org id -> seller rows, once per piece of work
        self.df: Counter[str] = Counter()
        self._matrix: sp.csr_matrix | None = None
        self._vocab: dict[str, int] = {}

    def add(self, name: str, row: int) -> None:
        key = norm_org(name)
        if not key:
            return
        oid = self.key_id.get(key)
        if oid is None:
            oid = self.key_id[key] = len(self.names)
            self.names.append(name.strip())
            counts = Counter(terms(key))
            self.org_terms.append(counts)
            self.df.update(counts.keys())
            self.rows.new_key()
            self._matrix = None  # IDF changed: rebuilt lazily (small)
        self.rows.append(oid, row)

    def _build(self) -> sp.csr_matrix:
        if self._matrix is None:
            n = len(self.names)
            self._vocab = {t: i for i, t in enumerate(sorted(self.df))}
            idf = {t: math.log((1 + n) / (1 + df)) + 1 for t, df in self.df.items()}
            indptr, indices, data = [0], [], []
            for counts in self.org_terms:
                w = {self._vocab[t]: (1 + math.log(c)) * idf[t] for t, c in counts.items()}
                norm = math.sqrt(sum(v * v for v in w.values())) or 1.0
                for tid in sorted(w):
                    indices.append(tid)
                    data.append(w[tid] / norm)
                indptr.append(len(indices))
            self._idf = idf
            self._matrix = sp.csr_matrix(
                (np.asarray(data, np.float64), np.asarray(indices, np.int32),
                 np.asarray(indptr, np.int64)),
                shape=(n, len(self._vocab)),
            )
        return self._matrix

    def similar(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(org ids, cosine similarity) of known organisations like `name`."""
        if not self.names:
            return np.empty(0, np.int64), np.empty(0)
        matrix = self._build()
        counts = Counter(t for t in terms(norm_org(name)) if t in self._vocab)
        if not counts:
            return np.empty(0, np.int64), np.empty(0)
        q = np.zeros(len(self._vocab))
        for t, c in counts.items():
            q[self._vocab[t]] = (1 + math.log(c)) * self._idf[t]
        q /= np.linalg.norm(q) or 1.0
        sims = matrix @ q
        ids = np.flatnonzero(sims >= MIN_SIMILARITY)
        return ids, sims[ids]

    def row_scores(self, name: str, n_rows: int) -> np.ndarray:
        """Per seller row: sum over its past work of the similarity of that work's buyer."""
        out = np.zeros(n_rows)
        ids, sims = self.similar(name)
        for oid, sim in zip(ids.tolist(), sims.tolist(), strict=True):
            rows = self.rows[oid]
            if len(rows) == 1:
                out[rows[0]] += sim
            else:
                np.add.at(out, rows, sim)
        return out
