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
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from .rows import RowLists
from .text import norm_org, terms

# Below this two names share only generic words ("NHS Foundation Trust", "Council"): past
# work for them says nothing about this buyer. Measured on both dev sets (bench/signal_study.py):
# 0.2 let every trust or council count as "a buyer like yours" and cost ranking quality.
MIN_SIMILARITY = 0.6


class OrgIndex:
    def __init__(self) -> None:
        self.key_id: dict[str, int] = {}
        self.names: list[str] = []  # as first written, for explanations
        self.org_terms: list[Counter[str]] = []
        self.rows = RowLists()  # org id -> seller rows, once per piece of work
        self.df: Counter[str] = Counter()
        self._matrix: sp.csr_matrix | None = None
        # name -> `similar(name)`: explanations ask it for every returned row of a brief.
        # Depends only on the organisations known, so it is emptied when one is added.
        self._similar: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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
            self._similar = {}
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
        """(org ids, cosine similarity) of known organisations like `name`; the same
        organisation (one normalised name, or one's name the other's acronym) scores 1.
        Remembered for the last few names (the arrays are shared: read them only)."""
        found = self._similar.get(name)
        if found is None:
            if len(self._similar) >= 64:
                self._similar.clear()
            found = self._similar[name] = self._similar_uncached(name)
        return found

    def _similar_uncached(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if not self.names:
            return np.empty(0, np.int64), np.empty(0)
        matrix = self._build()
        counts = Counter(terms(norm_org(name)))
        known = {t: c for t, c in counts.items() if t in self._vocab}
        q = np.zeros(len(self._vocab))
        for t, c in known.items():
            q[self._vocab[t]] = (1 + math.log(c)) * self._idf[t]
        # A word no known buyer uses ("Demo" in "Demo Digital Service") still counts in the
        # length of the name, with the weight of the rarest word: dropping it would make the
        # words left over ("digital service") look like the whole name.
        unseen_idf = math.log(1 + len(self.names)) + 1
        unseen = sum((1 + math.log(c)) ** 2 for t, c in counts.items() if t not in known)
        norm = math.sqrt(float(q @ q) + unseen * unseen_idf**2) or 1.0
        sims = matrix @ (q / norm) if known else np.zeros(len(self.names))
        for oid in self.same_ids(name):
            sims[oid] = 1.0
        ids = np.flatnonzero(sims >= MIN_SIMILARITY)
        return ids, sims[ids]

    def same_ids(self, name: str) -> list[int]:
        """Known organisations that are the very same buyer as `name`."""
        key = norm_org(name)
        found = [self.key_id[key]] if key in self.key_id else []
        if " " not in key and key:
            found.extend(oid for k, oid in self.key_id.items() if key in acronyms(k))
        else:
            found.extend(self.key_id[a] for a in acronyms(key) if a in self.key_id)
        return sorted(set(found))


# Joining words that acronyms of British and Australian departments keep or drop.
_JOINERS = frozenset({"and", "of", "for", "the", "in", "on", "to"})


@lru_cache(maxsize=50_000)  # explanations ask it for every buyer of every returned row
def acronyms(key: str) -> frozenset[str]:
    """Acronyms a normalised name is written as: "department for work and pension" -> "dwp",
    "ministry of justice" -> "moj" (joining words kept) and "mj", "hm revenue and custom" ->
    "hmrc" (a short leading word kept whole), "hrc"."""
    words = key.split()
    if len(words) < 2:
        return frozenset()
    content = [w for w in words if w not in _JOINERS]
    out = {"".join(w[0] for w in words), "".join(w[0] for w in content)}
    if content and len(content[0]) <= 3:
        out.add(content[0] + "".join(w[0] for w in content[1:]))
    return frozenset(a for a in out if len(a) >= 2)


def same_org(a: str, b: str) -> bool:
    """Are two written names one organisation? Equal once normalised, or one is the
    other's acronym ("DWP" and "Department for Work and Pensions")."""
    ka, kb = norm_org(a), norm_org(b)
    if not ka or not kb:
        return False
    return ka == kb or ka in acronyms(kb) or kb in acronyms(ka)

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
