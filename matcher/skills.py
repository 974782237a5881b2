"""Skill overlap: the brief's criteria against the seller's skills, fuzzy, on short strings only.

Whole texts are never fuzzy-matched (far too slow at scale). Fuzzy matching runs per brief on
the *vocabulary* of distinct skill labels (thousands, however many sellers list them), and a
criterion is compared only with labels that share at least one term with it. The labels that
match become per-brief hits (skill id -> [(criterion, similarity)]); the index turns them into
per-seller scores with numpy over the sellers that list a hit label (`SellerIndex.skill_rows`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from .text import terms

MATCH_THRESHOLD = 80.0  # token_set_ratio at or above this counts as "has the skill"
ESSENTIAL_WEIGHT = 1.0
NICE_WEIGHT = 0.5
_CRITERION_CACHE = 4096  # criteria remembered per vocabulary (previews re-match one brief)


@dataclass(slots=True)
class Criterion:
    text: str  # as the buyer wrote it
    query: str  # after skill aliases, for matching
    weight: float
    terms: frozenset[str]


def criteria(essential: list[str], nice: list[str], aliases: dict[str, str]) -> list[Criterion]:
    out: list[Criterion] = []
    for items, weight in ((essential, ESSENTIAL_WEIGHT), (nice, NICE_WEIGHT)):
        for text in items:
            if not text.strip():
                continue
            query = apply_aliases(text, aliases)
            out.append(Criterion(text.strip(), query, weight, frozenset(terms(query))))
    return out


def apply_aliases(text: str, aliases: dict[str, str]) -> str:
    """Replace alias words ("k8s") by their skill ("kubernetes"), keeping the rest."""
    if not aliases:
        return text
    words = text.split()
    out = [aliases.get(w.lower().strip(".,;:()"), w) for w in words]
    return " ".join(out)


class SkillVocab:
    """Distinct skill labels (id = position), their terms, and per-brief fuzzy hits.

    Grows only (labels are never removed: a label no seller lists any more just matches
    nobody). Similarities of one criterion with the vocabulary are cached, keyed by the
    criterion's processed text and the aliases, and extended when labels are added.
    """

    def __init__(self) -> None:
        self.key_id: dict[str, int] = {}  # lowercased, whitespace-normalised label -> id
        self.names: list[str] = []  # as first written
        self.terms: list[frozenset[str]] = []
        self.by_term: dict[str, list[int]] = {}  # term -> label ids (ascending)
        self._processed: dict[tuple[tuple[str, str], ...], list[str]] = {}
        self._hits: OrderedDict[tuple[object, ...], tuple[int, list[tuple[int, float]]]] = (
            OrderedDict())

    def __len__(self) -> int:
        return len(self.names)

    def add(self, key: str, name: str) -> int:
        sid = self.key_id.get(key)
        if sid is None:
            sid = self.key_id[key] = len(self.names)
            self.names.append(name)
            label_terms = frozenset(terms(key))
            self.terms.append(label_terms)
            for t in label_terms:
                self.by_term.setdefault(t, []).append(sid)
        return sid

    def processed(self, aliases: dict[str, str]) -> list[str]:
        """Every label after the aliases and rapidfuzz's default processing (cached)."""
        akey = tuple(sorted(aliases.items()))
        done = self._processed.get(akey)
        if done is None:
            if len(self._processed) > 8:
                self._processed.clear()
            done = self._processed[akey] = []
        for name in self.names[len(done):]:
            done.append(default_process(apply_aliases(name, aliases)))
        return done

    def criterion_hits(self, crit: Criterion, aliases: dict[str, str],
                       ) -> list[tuple[int, float]]:
        """(label id, similarity 0..100) of labels sharing a term with `crit` and at or above
        MATCH_THRESHOLD."""
        if not crit.terms:
            return []
        key = (crit.query, tuple(sorted(aliases.items())))
        cached = self._hits.get(key)
        n = len(self.names)
        if cached is not None and cached[0] == n:
            self._hits.move_to_end(key)
            return cached[1]
        start, hits = cached if cached is not None else (0, [])
        cand: set[int] = set()
        for t in crit.terms:
            found = self.by_term.get(t)
            if found:
                cand.update(found if start == 0 else [s for s in found if s >= start])
        if cand:
            names = self.processed(aliases)
            ids = sorted(cand)
            found_hits = process.extract(
                default_process(crit.query), [names[s] for s in ids], scorer=fuzz.token_set_ratio,
                processor=None, score_cutoff=MATCH_THRESHOLD, limit=None)
            hits = hits + sorted((ids[j], float(sim)) for _, sim, j in found_hits)
        self._hits[key] = (n, hits)
        self._hits.move_to_end(key)
        while len(self._hits) > _CRITERION_CACHE:
            self._hits.popitem(last=False)
        return hits


class SkillScorer:
    """One brief's criteria against the vocabulary: which labels match which criteria."""

    def __init__(self, crits: list[Criterion], vocab: SkillVocab, aliases: dict[str, str],
                 ) -> None:
        self.crits = crits
        self.names = vocab.names
        self.total_weight = sum(c.weight for c in crits) or 1.0
        self.hits: dict[int, list[tuple[int, float]]] = {}  # label id -> [(criterion, sim)]
        for i, c in enumerate(crits):
            for sid, sim in vocab.criterion_hits(c, aliases):
                self.hits.setdefault(sid, []).append((i, sim))
        for found in self.hits.values():
            found.sort()  # criterion order, as a per-label scan would find them

    def hit_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(label ids ascending, similarity matrix labels x criteria, 0 where no match)."""
        sids = np.fromiter(sorted(self.hits), np.int64, len(self.hits))
        sims = np.zeros((len(sids), len(self.crits)), np.float64)
        for k, sid in enumerate(sids.tolist()):
            for i, sim in self.hits[sid]:
                sims[k, i] = sim
        return sids, sims

    def crit_weights(self) -> np.ndarray:
        """Per criterion: its weight / 100 / total weight (similarity -> share of the score)."""
        return np.array([c.weight for c in self.crits], np.float64) / 100.0 / self.total_weight

    def best(self, skill_ids: tuple[int, ...] | list[int]) -> dict[int, tuple[int, float]]:
        """criterion index -> (best skill id, similarity); the first listed wins ties."""
        best: dict[int, tuple[int, float]] = {}
        hits = self.hits
        for sid in skill_ids:
            found = hits.get(sid)
            if found:
                for i, sim in found:
                    if i not in best or sim > best[i][1]:
                        best[i] = (sid, sim)
        return best

    def score(self, skill_ids: tuple[int, ...] | list[int]) -> float:
        """Weighted share of criteria the seller covers, each by its best similarity (0..1)."""
        if not skill_ids or not self.crits:
            return 0.0
        best = self.best(skill_ids)
        got = sum(self.crits[i].weight * sim / 100.0 for i, (_, sim) in best.items())
        return got / self.total_weight

    def explain(self, skill_ids: tuple[int, ...] | list[int]) -> list[dict[str, object]]:
        best = self.best(skill_ids)
        out: list[dict[str, object]] = []
        for i, c in enumerate(self.crits):
            if i in best:
                sid, sim = best[i]
                out.append({"criterion": c.text, "matched": self.names[sid],
                            "similarity": round(sim / 100.0, 3)})
        return out
