"""The Matcher: scores a brief against every indexed seller, explains the top of the list.

Score = weighted mean of the signals that apply to the brief (each in 0..1), so it is in 0..1
and thresholds keep their meaning whichever signals a brief allows (a brief without a location
is not penalised on location). Two stages keep it fast at 100k sellers: every signal that is a
vectorised array operation is computed for all sellers; fuzzy skill matching and explanations
run only on the best candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.types import Brief, Seller

from .explain import explain, term_contributions
from .index import _ANYWHERE_LOC, _UNTRACKED_LOC, MAX_CATEGORIES, SellerIndex, day_number
from .rules import SIGNALS, Rules
from .skills import SkillScorer, criteria
from .text import TOKEN_RE, brief_fields, is_anywhere, norm_location, norm_org, norm_role

MAX_QUERY_TERMS = 32  # the strongest query terms carry the ranking; the tail costs time
# Stage-2 pool (fuzzy skills re-rank it): top_k + CANDIDATES_EXTRA by the stage-1 score. Skills
# weigh at most their share of the weights, so only sellers near the cut can move across it.
CANDIDATES_EXTRA = 30


@dataclass(slots=True)
class Match:
    seller_id: int
    score: float
    rank: int
    explanation: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Query:
    """A brief turned into arrays once (terms, criteria, keys); shared by scoring and fit."""

    brief: Brief
    rules: Rules
    term_ids: np.ndarray
    term_weights: np.ndarray
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
        ids, weights = _query_vector(index, brief, rules)
        location = "" if not brief.location or is_anywhere(brief.location) else brief.location
        when = brief.published_at or datetime.now(UTC)
        return Query(
            brief=brief,
            rules=rules,
            term_ids=ids,
            term_weights=weights,
            crits=criteria(brief.essential_skills, brief.nice_to_have_skills, rules.skill_aliases),
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
        base, passed, pieces = _stage_one(index, q, weights)
        score = np.where(passed, base, np.float32(-1.0))
        n_pool = min(index.n_rows, top_k + CANDIDATES_EXTRA)
        pool = _top(score, n_pool)
        pool = pool[score[pool] >= 0]
        scorer = None
        if weights["skills"] > 0 and len(pool):
            scorer = SkillScorer(q.crits, index.skill_names, index.skill_terms,
                                 q.rules.skill_aliases)
            skill = np.array([scorer.score(index.row_skills[r]) for r in pool], np.float64)
            final = score[pool].astype(np.float64) + weights["skills"] * skill
        else:
            skill = np.zeros(len(pool))
            final = score[pool].astype(np.float64)
        keep = final >= q.rules.shortlist_threshold - 1e-12
        pool, final, skill = pool[keep], final[keep], skill[keep]
        order = np.lexsort((index.ids.data[pool], -final))[:top_k]  # ties: lower id first
        chosen = pool[order]
        terms_of = term_contributions(index, q, chosen.tolist())
        signals = _signals_for(pieces, chosen)
        out: list[Match] = []
        for rank, i in enumerate(order, start=1):
            row = int(pool[i])
            sig = {name: float(signals[name][rank - 1]) for name in SIGNALS if name != "skills"}
            sig["skills"] = float(skill[i])
            out.append(Match(
                seller_id=int(index.ids.data[row]),
                score=round(min(1.0, max(0.0, float(final[i]))), 6),
                rank=rank,
                explanation=explain(index, q, row, sig, weights, scorer, terms_of[rank - 1]),
            ))
        return out

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
        signals = _signals_for(pieces, rows)
        out = np.zeros((len(rows), len(SIGNALS)), np.float64)
        for j, name in enumerate(SIGNALS):
            if name in signals:
                out[:, j] = signals[name][rows]
        if q.crits:
            scorer = SkillScorer(q.crits, index.skill_names, index.skill_terms,
                                 q.rules.skill_aliases)
            out[:, SIGNALS.index("skills")] = [scorer.score(index.row_skills[r]) for r in rows]
        applicable = np.array([_applies(q, s) for s in SIGNALS])
        out[:, ~applicable] = 0.0
        return out, [int(index.ids.data[r]) for r in rows], list(SIGNALS)


# -- scoring internals -----------------------------------------------------------------------

def _query_vector(index: SellerIndex, brief: Brief, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Brief text -> (term ids, weights): field-weighted sublinear tf x fitted idf, l2-normalised.

    Synonyms and skill aliases expand the query only (no refit when rules change): an alias
    group is treated both ways, so "kubernetes" in a brief also finds sellers writing "k8s".
    """
    text_model = index.text
    weights: dict[int, float] = {}
    extra: list[tuple[str, float]] = []
    for text, w in brief_fields(brief):
        lowered = text.lower()
        for raw in TOKEN_RE.findall(lowered):
            tid = text_model.term_id(raw)
            if tid >= 0:
                weights[tid] = weights.get(tid, 0.0) + w
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
    if not weights:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    ids = np.fromiter(weights.keys(), np.int64, len(weights))
    tf = np.fromiter(weights.values(), np.float64, len(weights))
    vec = (1.0 + np.log1p(tf - 1.0).clip(min=0)) * text_model.idf[ids]
    if len(ids) > MAX_QUERY_TERMS:
        keep = np.argpartition(-vec, MAX_QUERY_TERMS)[:MAX_QUERY_TERMS]
        ids, vec = ids[keep], vec[keep]
    vec /= np.linalg.norm(vec) or 1.0
    return ids, vec


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


def text_scores(index: SellerIndex, term_ids: np.ndarray, term_weights: np.ndarray) -> np.ndarray:
    """Cosine of the query with every row, via the CSC columns of the query's terms only."""
    n = index.n_rows
    out = np.zeros(n, np.float32)
    m = index.matrix
    if len(term_ids) and m.shape[0]:
        in_main = term_ids < m.shape[1]  # terms first seen after fit live in the delta only
        main_ids, main_weights = term_ids[in_main], term_weights[in_main]
        starts = m.indptr[main_ids].astype(np.int64)
        lengths = m.indptr[main_ids + 1] - starts
        total = int(lengths.sum())
        if total:
            # All posting entries of the query's terms as one index array, no Python loop.
            offsets = np.cumsum(lengths) - lengths
            take = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)
            vals = m.data[take] * np.repeat(main_weights.astype(np.float32), lengths)
            out[: m.shape[0]] = np.bincount(m.indices[take], weights=vals, minlength=m.shape[0])
    if index.delta_rows:
        q = np.zeros(len(index.text.terms), np.float32)
        q[term_ids] = term_weights
        out[np.asarray(index.delta_rows)] = index.delta_matrix() @ q
    return out


_CACHE_SIZE = 64


def _cached(index: SellerIndex, key: tuple[Any, ...], build: Any) -> Any:
    """Per-index cache of arrays that depend on the index and a few brief facts only (the
    brief's category, location, day): most briefs share them, so the dense work is done once."""
    cache: dict[Any, Any] = index.__dict__.setdefault("cache", {})
    if cache.get("version") != index.version:
        cache.clear()
        cache["version"] = index.version
    value = cache.get(key)
    if value is None:
        if len(cache) > _CACHE_SIZE:
            cache.clear()
            cache["version"] = index.version
        value = cache[key] = build()
    return value


def _dense_signals(index: SellerIndex, q: Query) -> dict[str, np.ndarray]:
    """category, location, wins, recency, sme for every row (float32, cached)."""
    cat_code = index.category_code.get(q.category, -1) if q.category else -1
    loc_code = index.location_code.get(q.location, -2) if q.location else -1
    day = math.floor(q.day) if math.isfinite(q.day) else 0

    def build() -> dict[str, np.ndarray]:
        n = index.n_rows
        n_wins = index.n_wins.data[:n]
        out: dict[str, np.ndarray] = {}
        if 0 <= cat_code < MAX_CATEGORIES:
            declared = ((index.cat_declared.data[:n] >> np.uint32(cat_code)) & np.uint32(1))
            won = index.cat_wins[:n, cat_code].astype(np.float32)
            # Share of the seller's work in this category (declaring it counts as one piece).
            out["category"] = (won + declared) / (n_wins + np.float32(1.0))
        else:
            out["category"] = np.zeros(n, np.float32)
        if loc_code != -1:
            bit = np.uint64(1 << loc_code) if loc_code >= 0 else np.uint64(0)
            out["location"] = ((index.loc_mask.data[:n] & (bit | _ANYWHERE_LOC)) != 0).astype(
                np.float32)
        else:
            out["location"] = np.zeros(n, np.float32)
        # Past wins, log-scaled and saturating: 1 win 0.41, 5: 0.64, 20: 0.75.
        out["wins"] = (1.0 - 1.0 / (1.0 + np.log1p(n_wins))).astype(np.float32)
        age = np.clip(np.float32(day) - index.last_win.data[:n], 0.0, None)
        recency = np.exp(-age / np.float32(q.rules.recency_days))
        out["recency"] = np.nan_to_num(recency, nan=0.0).astype(np.float32)
        out["sme"] = index.sme.data[:n].astype(np.float32)
        return out

    return _cached(index, ("dense", cat_code, loc_code, day, q.rules.recency_days), build)


def _sparse_signals(index: SellerIndex, q: Query) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """role and buyer: (rows, values) for the few rows where they are not 0."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if q.role:
        rows = index.rows_for(index.role_rows, q.role)
        if len(rows):
            uniq, jobs = np.unique(rows, return_counts=True)
            out["role"] = (uniq, 1.0 - np.exp(-jobs.astype(np.float64)))  # 1 job .63, 2 .86
    if q.org:
        # Past work for this buyer or one with a similar name, each piece weighted by the
        # names' similarity; saturating (one exact match 0.63, two 0.86).
        sums = index.orgs.row_scores(q.brief.organisation, index.n_rows)
        rows = np.flatnonzero(sums)
        out["buyer"] = (rows, 1.0 - np.exp(-sums[rows]))
    return out


def _filters(index: SellerIndex, q: Query) -> np.ndarray:
    """Rows passing the hard filters (cached per category, location and day-rate cap)."""
    rules = q.rules
    n = index.n_rows
    cat_code = index.category_code.get(q.category, -1) if q.category else -1
    loc_code = index.location_code.get(q.location, -2) if q.location else -1
    key = ("filters", rules.require_active, rules.require_category and q.category,
           rules.require_location and loc_code, rules.require_day_rate and q.brief.max_day_rate)

    def build() -> np.ndarray:
        passed = index.alive.data[:n].copy()
        if rules.require_active:
            passed &= index.active.data[:n]
        if rules.require_category and q.category:
            cats = index.cat_declared.data[:n]
            if 0 <= cat_code < MAX_CATEGORIES:
                passed &= (cats == 0) | (((cats >> np.uint32(cat_code)) & np.uint32(1)) == 1)
            else:
                passed &= cats == 0  # nobody declared this new category
        if rules.require_location and loc_code != -1:
            loc_mask = index.loc_mask.data[:n]
            bit = np.uint64(1 << loc_code) if loc_code >= 0 else np.uint64(0)
            serves = (loc_mask & (bit | _ANYWHERE_LOC | _UNTRACKED_LOC)) != 0
            passed &= serves | ~index.has_locations.data[:n]
        if rules.require_day_rate and q.brief.max_day_rate:
            rate = index.day_rate.data[:n]
            passed &= np.isnan(rate) | (rate <= q.brief.max_day_rate)
        return passed

    return _cached(index, key, build)  # type: ignore[no-any-return]


DENSE = ("category", "location", "wins", "recency", "sme")


def _stage_one(index: SellerIndex, q: Query, w: dict[str, float],
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Score without skills for all rows, the hard-filter mask, and the pieces (for signals)."""
    dense = _dense_signals(index, q)
    wkey = tuple(round(w[s], 9) for s in DENSE)
    day = math.floor(q.day) if math.isfinite(q.day) else 0
    cat_key = index.category_code.get(q.category, -1) if q.category else -1
    loc_key = index.location_code.get(q.location, -2) if q.location else -1

    def prior() -> np.ndarray:
        total = np.zeros(index.n_rows, np.float32)
        for name in DENSE:
            if w[name]:
                total += np.float32(w[name]) * dense[name]
        return total

    base = _cached(index, ("prior", wkey, cat_key, loc_key, day, q.rules.recency_days), prior)
    text = text_scores(index, q.term_ids, q.term_weights)
    score = base + np.float32(w["text"]) * text
    sparse = _sparse_signals(index, q)
    for name, (rows, values) in sparse.items():
        if w[name]:
            score[rows] += (w[name] * values).astype(np.float32)
    passed = _filters(index, q)
    return score, passed, {"text": text, "dense": dense, "sparse": sparse}


def _signals_for(pieces: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every signal but skills for `rows` (from the pieces _stage_one computed)."""
    out: dict[str, np.ndarray] = {"text": pieces["text"][rows].astype(np.float64)}
    for name in DENSE:
        out[name] = pieces["dense"][name][rows].astype(np.float64)
    for name in ("role", "buyer"):
        values = np.zeros(len(rows))
        if name in pieces["sparse"]:
            srows, svals = pieces["sparse"][name]
            pos = np.searchsorted(srows, rows)
            pos_c = np.minimum(pos, max(len(srows) - 1, 0))
            if len(srows):
                hit = srows[pos_c] == rows
                values[hit] = svals[pos_c[hit]]
        out[name] = values
    return out


def _top(score: np.ndarray, k: int) -> np.ndarray:
    if k >= len(score):
        return np.arange(len(score))
    return np.argpartition(-score, k - 1)[:k]
