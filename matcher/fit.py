"""Learning rule weights from outcomes (who really won), with scikit-learn.

Pairwise ranking (RankSVM-style logistic regression): for each past brief, every other
candidate is a pair "winner vs this seller"; a logistic regression without intercept on the
signal differences learns weights w such that w . (x_winner - x_other) > 0 as often as possible.
Only the order within a brief matters, which is exactly what the score is used for. Weights are
kept non-negative (a signal that counts against a seller would be unexplainable to buyers):
signals that come out negative are dropped and the rest refitted.

Always fit on briefs *earlier* than the ones you evaluate on (`marketplace eval --fit` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from sklearn.linear_model import LogisticRegression

from models.types import Brief

from .calibration import IDENTITY, Knots, fit_calibration
from .core import Matcher
from .rules import SIGNALS, Rules

if TYPE_CHECKING:
    from .outcomes import EvalSet

MAX_PAIRS_PER_QUERY = 200
# Few outcomes give noisy weights: the fitted ones are shrunk toward the base rules' as if the
# base weights had been seen on PRIOR_BRIEFS briefs (a fit on 30 briefs moves halfway).
PRIOR_BRIEFS = 30  # enough negatives per brief; bounds memory on big candidate sets


def signal_matrix(matcher: Matcher, brief: Brief, seller_ids: list[int] | None = None,
                  ) -> tuple[np.ndarray, list[int], list[str]]:
    """(signals per seller, seller ids, signal names): what ranking is learned from."""
    return matcher.signal_matrix(brief, seller_ids)


def training_pairs(matcher: Matcher, queries: list[tuple[Brief, int]], seed: int = 0,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Signal differences (winner - other) with label 1, and their mirror with label 0."""
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    for brief, winner in queries:
        x, ids, _ = matcher.signal_matrix(brief)
        if winner not in ids:
            continue
        pos = ids.index(winner)
        others = np.array([i for i in range(len(ids)) if i != pos], np.int64)
        if len(others) > MAX_PAIRS_PER_QUERY:
            others = rng.choice(others, MAX_PAIRS_PER_QUERY, replace=False)
        if len(others):
            # Each brief counts once, however many candidates it has.
            diffs.append((x[pos] - x[others]) / np.sqrt(len(others)))
    if not diffs:
        return np.empty((0, len(SIGNALS))), np.empty(0)
    d = np.vstack(diffs)
    return np.vstack([d, -d]), np.concatenate([np.ones(len(d)), np.zeros(len(d))])


def fit_weights(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> dict[str, float]:
    """Non-negative pairwise-logistic weights, scaled to sum to 10 (readable numbers)."""
    active = list(range(len(SIGNALS)))
    coef = np.zeros(len(SIGNALS))
    for _ in range(len(SIGNALS)):
        usable = [j for j in active if np.any(x[:, j] != 0)]
        if not usable:
            break
        model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
        model.fit(x[:, usable], y)
        coef = np.zeros(len(SIGNALS))
        coef[usable] = model.coef_[0]
        negative = [j for j in usable if coef[j] < 0]
        if not negative:
            break
        active = [j for j in usable if j not in negative]
    coef = np.clip(coef, 0.0, None)
    total = coef.sum()
    if total <= 0:
        raise ValueError("outcomes gave no usable signal to fit weights on")
    return {name: round(float(10.0 * coef[j] / total), 4) for j, name in enumerate(SIGNALS)}


def fit_rules(train: EvalSet, base: Rules | None = None,
              matcher_factory: Callable[[Rules], Matcher] = Matcher) -> Rules:
    """Rules like `base` with weights learned from `train` (sellers + briefs with the winner).

    Hard filters are off while learning: a winner that a filter would hide still says which
    signals point at winners. Thresholds and everything else come from `base` unchanged.
    """
    base = base or Rules()
    learning = replace(base, require_category=False, require_location=False,
                       require_day_rate=False, require_active=False)
    matcher = matcher_factory(learning).fit(train.sellers)
    x, y = training_pairs(matcher, [(q.brief, q.relevant) for q in train.queries])
    if not len(y):
        raise ValueError("no training briefs whose winner is among the sellers")
    fitted = fit_weights(x, y)
    n = len(train.queries)
    base_total = sum(base.weights.get(s, 0.0) for s in SIGNALS) or 1.0
    weights = {
        s: round((n * fitted[s] + PRIOR_BRIEFS * 10.0 * base.weights.get(s, 0.0) / base_total)
                 / (n + PRIOR_BRIEFS), 4)
        for s in SIGNALS
    }
    fitted_rules = replace(base, weights=weights)
    return replace(fitted_rules, calibration=calibrate_on(train, fitted_rules, matcher_factory))


def calibrate_on(train: EvalSet, rules: Rules,
                 matcher_factory: Callable[[Rules], Matcher] = Matcher) -> Knots:
    """Calibration knots for `rules` from the raw scores of `train`'s real winners (see
    matcher/calibration.py): refitted with every weight change, since raw scores move with
    the weights."""
    raw_rules = replace(rules, calibration=IDENTITY, shortlist_threshold=0.0)
    matcher = matcher_factory(raw_rules).fit(train.sellers)
    top_k = max(len(train.sellers), 1)
    raws: list[float] = []
    for q in train.queries:
        got = {m.seller_id: m.raw_score for m in matcher.match(q.brief, top_k)}
        raws.append(got.get(q.relevant, 0.0))
    return fit_calibration(raws)
