"""The Matcher: scores a brief against every indexed seller, explains the top of the list.

Score = weighted mean of the signals that apply to the brief (each in 0..1), so it is in 0..1
and thresholds keep their meaning whichever signals a brief allows (a brief without a location
is not penalised on location). Every signal is computed for every seller as numpy array work
(the top_k is exact, not a re-ranked pool): text from the postings of the query's terms only,
dense signals from cached per-(category, location, filters) arrays, skills from fuzzy matching
against the vocabulary of distinct skill labels and an inverted label -> sellers index.
Explanations are built for the returned rows only, from the postings already gathered.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from models.types import Brief, Seller

from .calibration import calibrate
from .explain import explain_all, term_contributions
from .index import (
    _ANYWHERE_LOC,
    _UNTRACKED_CAT,
    _UNTRACKED_LOC,
    MAX_CATEGORIES,
    SellerIndex,
    day_number,
)
from .rules import SIGNALS, Rules
from .skills import Criterion, SkillScorer, criteria
from .text import TOKEN_RE, brief_fields, is_anywhere, norm_location, norm_org, norm_role

MAX_QUERY_TERMS = 32  # the strongest query terms carry the ranking; the tail costs time


@dataclass(slots=True)
class Match:
    seller_id: int
    score: float  # calibrated: the share of past winners this match reaches (calibration.py)
    rank: int
    explanation: dict[str, Any] = field(default_factory=dict)
    raw_score: float = 0.0  # the weighted mean of the signals, before calibration


@dataclass(slots=True)
class Query:
    """A brief turned into arrays once (terms, criteria, keys); shared by scoring and fit."""

    brief: Brief
    rules: Rules
    term_ids: np.ndarray
    term_weights: np.ndarray
    topical: np.ndarray  # per query term: from the work (not only from the buyer's name)
    crits: list[Any]
    org: str
    role: str
    location: str  # "" when the brief can be done anywhere
    category: str
    day: float


class Matcher:
    """Buyer-seller matcher. `Matcher(rules).fit(sellers)`, then `match(brief)`."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules  # stored unchanged (scikit-learn convention); None = defaults

    # -- fitting and changes ---------------------------------------------------------------
    @property
    def rules_(self) -> Rules:
        return self.rules if self.rules is not None else Rules()

    def fit(self, sellers: list[Seller]) -> Matcher:
        """Builds a new index and swaps it in: safe to run while others use the old one."""
        self.index_ = SellerIndex.build(list(sellers))
        return self

    def _index(self) -> SellerIndex:
        index: SellerIndex | None = getattr(self, "index_", None)
        if index is None:
            self.index_ = index = SellerIndex.build([])
        return index

    def add(self, seller: Seller) -> None:
        self._index().add(seller)

    def update(self, seller: Seller) -> None:
        self._index().update(seller)

    def remove(self, seller_id: int) -> bool:
        return self._index().remove(seller_id)

    def upsert(self, seller: Seller) -> None:
        index = self._index()
        if seller.id in index.row_of:
            index.update(seller)
        else:
            index.add(seller)

    def __contains__(self, seller_id: object) -> bool:
        return seller_id in self._index().row_of

    def __len__(self) -> int:
        index: SellerIndex | None = getattr(self, "index_", None)
        return 0 if index is None else len(index)

    def with_rules(self, rules: Rules) -> Matcher:
        """A matcher with other rules sharing this one's fitted index (no refit)."""
        other = Matcher(rules)
        index = getattr(self, "index_", None)
        if index is not None:
            other.index_ = index
        return other

    # -- matching --------------------------------------------------------------------------
    def query(self, brief: Brief) -> Query:
        rules = self.rules_.for_category(brief.category) if brief.category else self.rules_
        index = self._index()
        ids, weights, topical = _query_vector(index, brief, rules)
        location = "" if not brief.location or is_anywhere(brief.location) else brief.location
        when = brief.published_at or datetime.now(UTC)
        return Query(
            brief=brief,
            rules=rules,
            term_ids=ids,
            term_weights=weights,
            topical=topical,
            crits=_criteria(tuple(brief.essential_skills), tuple(brief.nice_to_have_skills),
                            tuple(rules.skill_aliases.items())),
            org=norm_org(brief.organisation) if brief.organisation else "",
            role=norm_role(brief.role) if brief.role else "",
            location=norm_location(location) if location else "",
            category=brief.category,
            day=day_number(when),
        )

    def match(self, brief: Brief, top_k: int = 50) -> list[Match]:
        index = self._index()
        if top_k <= 0 or index.n_rows == 0:
            return []
        q = self.query(brief)
        weights = _applicable_weights(q)
        score, passed, pieces = _stage_one(index, q, weights)
        # Skills for every seller that lists a label matching a criterion (vectorised), so the
        # top_k is exact: a seller far down by the other signals can still rise on skills.
        scorer = None
        skill_rows, skill_vals = _EMPTY_ROWS, _EMPTY_VALS
        w_skills = weights["skills"]
        if w_skills > 0 and q.crits:
            scorer, skill_rows, skill_vals = _skill_hits(index, q)
        before = score[skill_rows]  # stage-1 scores of those rows (for the exact final below)
        if len(skill_rows):
            score[skill_rows] += (w_skills * skill_vals).astype(np.float32)
        if q.rules.require_evidence:
            # Before the pool is chosen, so the top_k stays exact: sellers without evidence
            # of the work are left out like those failing a hard filter.
            evidence = _evidence(index, q, pieces, skill_rows, skill_vals)
            passed = passed & evidence  # a new array: the cached mask stays as it is
        # Float32 sums pick a pool a little larger than top_k among the rows that passed; the
        # pool is then scored exactly (float64, as before) and sorted.
        # (With every row tied with the pool's lowest, so ties resolve by id, not by chance.)
        pool = _pool(score, passed, top_k + POOL_MARGIN)
        skill = np.zeros(len(pool))
        stage1 = score[pool]
        if len(skill_rows):
            pos = np.minimum(np.searchsorted(skill_rows, pool), len(skill_rows) - 1)
            hit = skill_rows[pos] == pool
            skill[hit] = skill_vals[pos[hit]]
            stage1[hit] = before[pos[hit]]
        final = stage1.astype(np.float64) + w_skills * skill
        calibrated = calibrate(final, q.rules.calibration)
        # Only evidence of doing the work makes a match: words of the brief in the seller's
        # profile, a skill asked for, or the role. Priors (past wins, buyer, category,
        # location, SME) reorder the sellers that match; alone they never make one.
        keep = calibrated >= q.rules.shortlist_threshold - 1e-12
        pool, final, skill, calibrated = pool[keep], final[keep], skill[keep], calibrated[keep]
        order = np.lexsort((index.ids.data[pool], -final))[:top_k]  # ties: lower id first
        chosen = pool[order]
        terms_of = term_contributions(index, q, chosen, pieces["postings"])
        signals = _signals_for(index, q, pieces, chosen)
        signals[:, SIGNALS.index("skills")] = skill[order]
        explanations = explain_all(index, q, chosen, signals, weights, scorer, terms_of)
        ids = index.ids.data[chosen].tolist()
        scores = np.clip(calibrated[order], 0.0, 1.0).tolist()
        raws = np.clip(final[order], 0.0, 1.0).tolist()
        return [Match(seller_id=i, score=round(s, 6), rank=rank, explanation=e,
                      raw_score=round(r, 6))
                for rank, (i, s, r, e) in enumerate(
                    zip(ids, scores, raws, explanations, strict=True), 1)]

    def compact(self) -> None:
        """Fold sellers added or updated since `fit` into the main index structures.

        `add`/`update` keep such sellers in a small side table that every match scans in full;
        `add` compacts automatically when it grows (see `matcher.index.COMPACT_MIN_ROWS`), and
        callers may compact at any quiet moment. Unlike `fit`, the IDF is kept (no refit).
        """
        self._index().compact()

    def signal_matrix(self, brief: Brief, seller_ids: list[int] | None = None,
                      ) -> tuple[np.ndarray, list[int], list[str]]:
        """Raw signals (rows: sellers, columns: SIGNALS) for `seller_ids` (default: all alive),
        ignoring hard filters and thresholds: what `matcher.fit.fit_rules` learns from."""
        index = self._index()
        q = self.query(brief)
        weights = _applicable_weights(q)
        _, _, pieces = _stage_one(index, q, weights)
        if seller_ids is None:
            rows = np.flatnonzero(index.alive.data[: index.n_rows])
        else:
            rows = np.array([index.row_of[i] for i in seller_ids], np.int64)
        out = _signals_for(index, q, pieces, rows)
        if q.crits:
            scorer = SkillScorer(q.crits, index.skills, q.rules.skill_aliases)
            out[:, SIGNALS.index("skills")] = [
                scorer.score(index.row_skills(r)) for r in rows.tolist()]
        applicable = np.array([_applies(q, s) for s in SIGNALS])
        out[:, ~applicable] = 0.0
        return out, [int(index.ids.data[r]) for r in rows], list(SIGNALS)


# -- scoring internals -----------------------------------------------------------------------

@lru_cache(maxsize=16)  # as _CACHE_SIZES["skills"]: the last few drafts
def _criteria(essential: tuple[str, ...], nice: tuple[str, ...],
              aliases: tuple[tuple[str, str], ...]) -> list[Criterion]:
    """`criteria`, remembered (see `_skill_hits`); the list and its items are shared: read only."""
    return criteria(list(essential), list(nice), dict(aliases))


def _query_vector(index: SellerIndex, brief: Brief, rules: Rules,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brief text -> (term ids, weights, topical): field-weighted sublinear tf x fitted idf,
    l2-normalised; `topical` marks the terms that come from the work, not only from the
    buyer's name (a buyer's name shared with past work is a prior, not evidence).

    Synonyms and skill aliases expand the query only (no refit when rules change): an alias
    group is treated both ways, so "kubernetes" in a brief also finds sellers writing "k8s".
    """
    text_model = index.text
    weights: dict[int, float] = {}
    topical: set[int] = set()
    extra: list[tuple[str, float]] = []
    fields = brief_fields(brief)
    org_field = len(fields) if not brief.organisation else next(
        (i for i, (text, _) in enumerate(fields) if text == brief.organisation), len(fields))
    for i, (text, w) in enumerate(fields):
        lowered = text.lower()
        for raw in TOKEN_RE.findall(lowered):
            tid = text_model.term_id(raw)
            if tid >= 0:
                weights[tid] = weights.get(tid, 0.0) + w
                if i != org_field:
                    topical.add(tid)
        # Phrases, not tokens: aliases such as "k8s" or "c sharp" span token boundaries.
        for alias, skill in rules.skill_aliases.items():
            if alias in lowered and _has_phrase(lowered, alias):
                extra.append((skill, w))
            if skill in lowered and _has_phrase(lowered, skill):
                extra.append((alias, 0.5 * w))
        for phrase, alternatives in rules.synonyms.items():
            if phrase in lowered and _has_phrase(lowered, phrase):
                extra.extend((alt, 0.5 * w) for alt in alternatives)
    for text, w in extra:
        for raw in TOKEN_RE.findall(text.lower()):
            tid = text_model.term_id(raw)
            if tid >= 0:
                weights[tid] = weights.get(tid, 0.0) + w
                topical.add(tid)
    if not weights:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_)
    ids = np.fromiter(weights.keys(), np.int64, len(weights))
    tf = np.fromiter(weights.values(), np.float64, len(weights))
    vec = (1.0 + np.log1p(tf - 1.0).clip(min=0)) * text_model.idf[ids]
    if len(ids) > MAX_QUERY_TERMS:
        keep = np.argpartition(-vec, MAX_QUERY_TERMS)[:MAX_QUERY_TERMS]
        ids, vec = ids[keep], vec[keep]
    vec /= np.linalg.norm(vec) or 1.0
    return ids, vec, np.fromiter((t in topical for t in ids.tolist()), np.bool_, len(ids))


def _evidence(index: SellerIndex, q: Query, pieces: dict[str, Any], skill_rows: np.ndarray,
              skill_vals: np.ndarray) -> np.ndarray:
    """Per row: does the seller show evidence of doing this work? Words of the brief's work in
    its profile (not only the buyer's name), a skill asked for, or the role."""
    has = _topical_text(index, q, pieces)
    if len(skill_rows):
        has[skill_rows[skill_vals > 0]] = True
    role = pieces["sparse"].get("role")
    if role is not None and len(role[0]):
        has[role[0]] = True
    return has


def _topical_text(index: SellerIndex, q: Query, pieces: dict[str, Any]) -> np.ndarray:
    """Per row: does its text share a term of the brief's work (not just the buyer's name)?"""
    has = pieces["text"] > 0
    if q.topical.all() or not has.any():
        return has  # type: ignore[no-any-return]
    postings: Postings = pieces["postings"]
    marked = np.zeros(index.n_rows, np.bool_)
    topical = postings.known[q.topical[postings.known]]
    marked[: index.n_main] = index.postings.mark(q.term_ids[topical])
    if index.delta_rows:
        wanted = set(q.term_ids[q.topical].tolist())
        for k, row in enumerate(index.delta_rows):
            marked[row] = not wanted.isdisjoint(index.delta_vectors[k].ids.tolist())
    return has & marked  # type: ignore[no-any-return]


def _has_phrase(text: str, phrase: str) -> bool:
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        before = start == 0 or not text[start - 1].isalnum()
        after = end == len(text) or not text[end].isalnum()
        if before and after:
            return True
        start = text.find(phrase, start + 1)
    return False


def _applies(q: Query, signal: str) -> bool:
    if signal == "text":
        return len(q.term_ids) > 0
    if signal == "skills":
        return bool(q.crits)
    if signal == "category":
        return bool(q.category)
    if signal == "role":
        return bool(q.role)
    if signal == "location":
        return bool(q.location)
    if signal == "buyer":
        return bool(q.org)
    return True  # wins, recency, sme


def _applicable_weights(q: Query) -> dict[str, float]:
    """Weights of the signals that apply to this brief, normalised to sum to 1."""
    raw = {s: max(0.0, q.rules.weights.get(s, 0.0)) if _applies(q, s) else 0.0 for s in SIGNALS}
    total = sum(raw.values())
    if total <= 0:
        return {s: 0.0 for s in SIGNALS}
    return {s: w / total for s, w in raw.items()}


@dataclass(slots=True)
class Postings:
    """Which of a query's terms have main postings (explanations and the evidence rule read
    them from the index for the few rows they need)."""

    known: np.ndarray  # int64, positions in term_ids of the terms the main postings know


def text_scores(index: SellerIndex, term_ids: np.ndarray, term_weights: np.ndarray,
                ) -> tuple[np.ndarray, Postings]:
    """Cosine of the query with every row, from the postings of the query's terms only
    (float32, in scipy's CSC mat-vec order: see matcher/postings.py)."""
    n = index.n_rows
    p = index.postings
    n_main, n_cols = p.shape
    known = np.flatnonzero(term_ids < n_cols) if n_main else np.empty(0, np.int64)
    # Words first seen after the last compaction are only in the delta: no main postings.
    if len(known):
        main = p.dot(index.text.idf, term_ids[known], term_weights[known].astype(np.float32))
    else:
        main = np.zeros(n_main, np.float32)
    out = main if n_main == n else np.concatenate([main, np.zeros(n - n_main, np.float32)])
    if index.delta_rows:
        q = np.zeros(len(index.text.terms), np.float32)
        q[term_ids] = term_weights
        out[np.asarray(index.delta_rows)] = index.delta_matrix() @ q
    return out, Postings(known)


# Per kind, how many entries each index keeps (least recently used first out).
_CACHE_SIZES = {
    "big": 24,  # full-length arrays (400 KB each at 100k sellers)
    "small": 256,  # filter masks (n bytes), per-buyer / per-role row lists
    "skills": 16,  # per criteria list: rows listing a matching skill (16 B a row)
}
_EMPTY_ROWS = np.empty(0, np.int64)
_EMPTY_VALS = np.empty(0, np.float64)


def _cached(index: SellerIndex, key: tuple[Any, ...], build: Any, kind: str = "big") -> Any:
    """Per-index LRU cache of arrays that depend on the index and a few brief facts only (the
    brief's category, location, filters, organisation, role, skills): most briefs share them,
    so the work is done once. Cleared whenever the index changes."""
    caches: dict[str, Any] = index.__dict__.setdefault("cache", {})
    if caches.get("version") != index.version:
        caches.clear()
        caches["version"] = index.version
    cache: OrderedDict[Any, Any] = caches.setdefault(kind, OrderedDict())
    value = cache.get(key)
    if value is None:
        value = cache[key] = build()
        while len(cache) > _CACHE_SIZES[kind]:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value


def _skill_hits(index: SellerIndex, q: Query) -> tuple[SkillScorer, np.ndarray, np.ndarray]:
    """The brief's skill scorer and `skill_scores`, remembered per criteria list: a buyer's
    draft preview is re-scored as the buyer types, one field at a time, so the skills asked
    for are the same from one preview to the next while the summary changes."""
    aliases = q.rules.skill_aliases
    key = (tuple((c.text, c.query, c.weight) for c in q.crits), tuple(sorted(aliases.items())))

    def build() -> tuple[SkillScorer, np.ndarray, np.ndarray]:
        scorer = SkillScorer(q.crits, index.skills, aliases)
        return (scorer, *skill_scores(index, scorer))

    return _cached(index, key, build, kind="skills")  # type: ignore[no-any-return]


def _codes(index: SellerIndex, q: Query) -> tuple[int, int, int]:
    cat_code = index.category_code.get(q.category, -1) if q.category else -1
    loc_code = index.location_code.get(q.location, -2) if q.location else -1
    day = math.floor(q.day) if math.isfinite(q.day) else 0
    return cat_code, loc_code, day


def _dense_rows(index: SellerIndex, q: Query, sel: Any, names: tuple[str, ...] = ()
                ) -> dict[str, np.ndarray]:
    """category, location, wins, recency, sme (float32) for rows `sel` (an index array or a
    slice), each from the per-row facts alone."""
    cat_code, loc_code, day = _codes(index, q)
    n = index.n_rows
    names = names or DENSE
    n_wins = index.n_wins.data[:n][sel]
    size = len(n_wins)
    out: dict[str, np.ndarray] = {}
    if "category" in names:
        if 0 <= cat_code < MAX_CATEGORIES:
            declared = (index.cat_declared.data[:n][sel] >> np.uint32(cat_code)) & np.uint32(1)
            won = index.cat_wins[:n][sel, cat_code].astype(np.float32)
            # Share of the seller's work in this category (declaring it counts as one piece).
            out["category"] = (won + declared) / (n_wins + np.float32(1.0))
        else:
            out["category"] = np.zeros(size, np.float32)
    if "location" in names:
        if loc_code != -1:
            bit = np.uint64(1 << loc_code) if loc_code >= 0 else np.uint64(0)
            out["location"] = ((index.loc_mask.data[:n][sel] & (bit | _ANYWHERE_LOC)) != 0
                               ).astype(np.float32)
        else:
            out["location"] = np.zeros(size, np.float32)
    if "wins" in names:
        # Past wins, log-scaled and saturating: 1 win 0.41, 5: 0.64, 20: 0.75.
        out["wins"] = (1.0 - 1.0 / (1.0 + np.log1p(n_wins))).astype(np.float32)
    if "recency" in names:
        age = np.clip(np.float32(day) - index.last_win.data[:n][sel], 0.0, None)
        recency = np.exp(-age / np.float32(q.rules.recency_days))
        out["recency"] = np.nan_to_num(recency, nan=0.0).astype(np.float32)
    if "sme" in names:
        out["sme"] = index.sme.data[:n][sel].astype(np.float32)
    return out


def _recency_all(index: SellerIndex, q: Query) -> np.ndarray:
    """The recency signal of every row without a pass of `exp` per brief date:
    exp(-max(0, day - last)/R) = min(1, exp((last - L)/R) * exp((L - day)/R)), L the latest
    win, the first factor cached per R (exact to float32 rounding)."""
    recency_days = q.rules.recency_days
    _, _, day = _codes(index, q)

    def build() -> tuple[float, np.ndarray, float]:
        last = index.last_win.data[: index.n_rows]
        finite = last[np.isfinite(last)]
        latest = float(finite.max()) if len(finite) else 0.0
        base = np.exp((last - np.float32(latest)) / np.float32(recency_days))
        base = np.nan_to_num(base, nan=0.0).astype(np.float32)
        # The smallest positive factor depends on the index only: found once, not per brief.
        return latest, base, float(base[base > 0].min(initial=1.0))

    latest, base, smallest = _cached(index, ("recency", recency_days), build)
    factor = math.exp(min(80.0, (latest - day) / recency_days))
    if factor < 1e30 and smallest > 1e-30:
        # Sellers whose last win is after the brief get exp(>0) here: clipped to 1, as the
        # direct formula clips their age to 0.
        out = base * np.float32(factor)
        return np.minimum(out, np.float32(1.0), out=out)  # type: ignore[no-any-return]
    # Spans beyond float32's range: the direct formula.
    return _dense_rows(index, q, slice(None), ("recency",))["recency"]


def _sparse_signals(index: SellerIndex, q: Query) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """role and buyer: (rows ascending, values) for the few rows where they are not 0."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if q.role:
        def role() -> tuple[np.ndarray, np.ndarray]:
            uniq, jobs = np.unique(index.rows_for(index.role_rows, q.role), return_counts=True)
            return uniq, 1.0 - np.exp(-jobs.astype(np.float64))  # 1 job .63, 2 .86

        rows, values = _cached(index, ("role", q.role), role, kind="small")
        if len(rows):
            out["role"] = (rows, values)
    if q.org:
        # Past work for this buyer or one with a similar name, each piece weighted by the
        # names' similarity; saturating (one exact match 0.63, two 0.86).
        def buyer() -> tuple[np.ndarray, np.ndarray]:
            oids, sims = index.orgs.similar(q.brief.organisation)
            parts = [index.org_rows(o) for o in oids.tolist()]
            if not parts:
                return _EMPTY_ROWS, _EMPTY_VALS
            rows = np.concatenate(parts)
            weights = np.repeat(sims, [len(p) for p in parts])
            uniq, inv = np.unique(rows, return_inverse=True)
            sums = np.bincount(inv, weights=weights, minlength=len(uniq))
            keep = sums != 0
            return uniq[keep], 1.0 - np.exp(-sums[keep])

        rows, values = _cached(index, ("buyer", q.org, q.brief.organisation), buyer, kind="small")
        out["buyer"] = (rows, values)
    return out


def _filters(index: SellerIndex, q: Query) -> np.ndarray:
    """Rows passing the hard filters (cached per category, location and day-rate cap)."""
    rules = q.rules
    n = index.n_rows
    cat_code, loc_code, _ = _codes(index, q)
    key = ("filters", rules.require_active, rules.require_category and q.category,
           rules.require_location and loc_code,
           rules.require_day_rate and q.brief.max_day_rate)

    def build() -> np.ndarray:
        passed = index.alive.data[:n].copy()
        if rules.require_active:
            passed &= index.active.data[:n]
        if rules.require_category and q.category:
            cats = index.cat_declared.data[:n]
            if 0 <= cat_code < MAX_CATEGORIES:
                passed &= (cats == 0) | (((cats >> np.uint32(cat_code)) & np.uint32(1)) == 1)
            else:
                passed &= (cats == 0) | ((cats & np.uint32(_UNTRACKED_CAT)) != 0)
        if rules.require_location and loc_code != -1:
            loc_mask = index.loc_mask.data[:n]
            bit = np.uint64(1 << loc_code) if loc_code >= 0 else np.uint64(0)
            serves = (loc_mask & (bit | _ANYWHERE_LOC | _UNTRACKED_LOC)) != 0
            passed &= serves | ~index.has_locations.data[:n]
        if rules.require_day_rate and q.brief.max_day_rate:
            rate = index.day_rate.data[:n]
            passed &= np.isnan(rate) | (rate <= q.brief.max_day_rate)
        return passed

    mask: np.ndarray = _cached(index, key, build, kind="small")  # booleans: 100 KB at 100k
    return mask


DENSE = ("category", "location", "wins", "recency", "sme")
POOL_MARGIN = 16  # float32 pool beyond top_k, re-scored exactly in float64


def _stage_one(index: SellerIndex, q: Query, w: dict[str, float],
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Score without skills for all rows (a new array the caller may change), the mask of rows
    that pass the hard filters (the pool is chosen among them), and the pieces (for signals)."""
    cat_key, loc_key, _ = _codes(index, q)
    passed = _filters(index, q)
    static = tuple(s for s in DENSE if s != "recency" and w[s])

    def prior() -> np.ndarray:
        """The weighted date-independent dense signals."""
        total = np.zeros(index.n_rows, np.float32)
        dense = _dense_rows(index, q, slice(None), static) if static else {}
        for name in static:
            total += np.float32(w[name]) * dense[name]
        return total

    wkey = tuple(round(w[s], 9) for s in static)
    base = _cached(index, ("prior", wkey, cat_key, loc_key), prior)
    if w["recency"]:
        score = base + np.float32(w["recency"]) * _recency_all(index, q)
    else:
        score = base.copy()
    text, postings = text_scores(index, q.term_ids, q.term_weights)
    if w["text"]:
        score += np.float32(w["text"]) * text
    sparse = _sparse_signals(index, q)
    for name, (rows, values) in sparse.items():
        if w[name]:
            score[rows] += (w[name] * values).astype(np.float32)
    return score, passed, {"text": text, "sparse": sparse, "postings": postings}


def _signals_for(index: SellerIndex, q: Query, pieces: dict[str, Any], rows: np.ndarray,
                 ) -> np.ndarray:
    """Every signal but skills (left 0) for `rows`: float64, columns in SIGNALS order."""
    out = np.zeros((len(rows), len(SIGNALS)))
    out[:, SIGNALS.index("text")] = pieces["text"][rows]
    for name, values in _dense_rows(index, q, rows).items():
        out[:, SIGNALS.index(name)] = values
    for name in ("role", "buyer"):
        if name in pieces["sparse"]:
            srows, svals = pieces["sparse"][name]
            if len(srows):
                pos = np.minimum(np.searchsorted(srows, rows), len(srows) - 1)
                hit = srows[pos] == rows
                out[np.flatnonzero(hit), SIGNALS.index(name)] = svals[pos[hit]]
    return out


def skill_scores(index: SellerIndex, scorer: SkillScorer) -> tuple[np.ndarray, np.ndarray]:
    """(rows ascending, skill signal) of every row listing a label that matches a criterion;
    every other row scores 0. Per row and criterion the best similarity counts."""
    sids, sims = scorer.hit_arrays()
    if not len(sids):
        return _EMPTY_ROWS, _EMPTY_VALS
    entries = index.skill_entries(sids)
    if not len(entries):
        return _EMPTY_ROWS, _EMPTY_VALS
    rows = index.entry_row.data[entries]
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    per_entry = sims[np.searchsorted(sids, index.entry_sid.data[entries[order]])]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    best = np.maximum.reduceat(per_entry, starts, axis=0)  # per row and criterion
    return rows[starts].astype(np.int64), best @ scorer.crit_weights()


def _pool(score: np.ndarray, passed: np.ndarray, k: int) -> np.ndarray:
    """Rows (ascending) that passed whose score is at least the k-th largest of theirs: the
    top k and its ties. Chosen among the passed rows only, so k rows come back whenever k
    passed, however high a filtered row's score.

    The k-th largest of a strided sample is a lower bound of the k-th largest of all, so one
    comparison pass leaves a few hundred candidates to partition instead of every row.
    """
    rows = np.flatnonzero(passed)
    if k >= len(rows):
        return rows
    values = score[rows]
    step = len(rows) // (32 * k)
    if step >= 4:
        sample = values[::step]
        if len(sample) > k:
            low = np.partition(sample, len(sample) - k)[len(sample) - k]
            keep = np.flatnonzero(values >= low)
            rows, values = rows[keep], values[keep]
    kth = np.partition(values, len(values) - k)[len(values) - k]
    return rows[values >= kth]
