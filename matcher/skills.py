"""Skill overlap: the brief's criteria against the seller's skills, fuzzy, on short strings only.

Whole texts are never fuzzy-matched (far too slow at scale). A criterion is compared only with
skills that share at least one term with it, and each distinct skill string is compared once per
brief however many sellers list it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from .text import terms

MATCH_THRESHOLD = 80.0  # token_set_ratio at or above this counts as "has the skill"
ESSENTIAL_WEIGHT = 1.0
NICE_WEIGHT = 0.5


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


class SkillScorer:
    """Per-brief cache: similarity of each criterion with each distinct skill id seen."""

    def __init__(self, crits: list[Criterion], skill_names: list[str],
                 skill_terms: list[frozenset[str]], aliases: dict[str, str]) -> None:
        self.crits = crits
        self.names = skill_names
        self.skill_terms = skill_terms
        self.aliases = aliases
        self.total_weight = sum(c.weight for c in crits) or 1.0
        self._by_term: dict[str, list[int]] = {}
        for i, c in enumerate(crits):
            for t in c.terms:
                self._by_term.setdefault(t, []).append(i)
        self._processed = [default_process(c.query) for c in crits]
        self._cache: dict[int, list[tuple[int, float]]] = {}

    def skill_matches(self, sid: int) -> list[tuple[int, float]]:
        """(criterion index, similarity 0..100) for criteria this skill matches."""
        hit = self._cache.get(sid)
        if hit is None:
            idxs: set[int] = set()
            for t in self.skill_terms[sid]:
                found = self._by_term.get(t)
                if found:
                    idxs.update(found)
            hit = []
            if idxs:
                skill = default_process(apply_aliases(self.names[sid], self.aliases))
                for i in idxs:
                    sim = fuzz.token_set_ratio(self._processed[i], skill)
                    if sim >= MATCH_THRESHOLD:
                        hit.append((i, float(sim)))
            self._cache[sid] = hit
        return hit

    def best(self, skill_ids: tuple[int, ...]) -> dict[int, tuple[int, float]]:
        """criterion index -> (best skill id, similarity)."""
        best: dict[int, tuple[int, float]] = {}
        for sid in skill_ids:
            for i, sim in self.skill_matches(sid):
                if i not in best or sim > best[i][1]:
                    best[i] = (sid, sim)
        return best

    def score(self, skill_ids: tuple[int, ...]) -> float:
        """Weighted share of criteria the seller covers, each by its best similarity (0..1)."""
        if not skill_ids or not self.crits:
            return 0.0
        best = self.best(skill_ids)
        got = sum(self.crits[i].weight * sim / 100.0 for i, (_, sim) in best.items())
        return got / self.total_weight

    def explain(self, skill_ids: tuple[int, ...]) -> list[dict[str, object]]:
        best = self.best(skill_ids)
        out: list[dict[str, object]] = []
        for i, c in enumerate(self.crits):
            if i in best:
                sid, sim = best[i]
                out.append({"criterion": c.text, "matched": self.names[sid],
                            "similarity": round(sim / 100.0, 3)})
        return out
