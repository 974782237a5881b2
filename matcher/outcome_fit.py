"""Fitting rule weights on the service's own recorded outcomes (pure: no I/O).

`matcher.fit` learns from awards alone (winner against every other candidate). The service
knows more: who applied, who said "not for me", whom the buyer invited. Each candidate of a
brief gets a grade, and every pair of candidates with different grades is a training pair
"the higher one should rank above the lower one", weighted by the grade gap:

| grade | who                                                                  |
| ----- | -------------------------------------------------------------------- |
| 3     | the winner (awards are the strongest label)                          |
| 2     | a seller that applied                                                |
| 1     | everyone else shortlisted, invited or interested: no label           |
| 0     | a seller that answered "not for me" (except for reason "timing",     |
|       | which says when, not what: that seller stays unlabelled)             |

So an award outweighs an application (gap 2 over the unlabelled, 3 over a "not for me"), and
`applied` and `not_for_me` are weaker labels (gap 1). The learning itself (pairwise logistic
regression, non-negative weights, shrunk toward the base rules when outcomes are few) is
`matcher.fit`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from models.types import Brief, Seller

from .core import Matcher
from .fit import MAX_PAIRS_PER_QUERY, PRIOR_BRIEFS, fit_weights
from .rules import SIGNALS, Rules

WINNER, APPLIED, UNLABELLED, NOT_FOR_ME = 3, 2, 1, 0


@dataclass(slots=True)
class Labelled:
    """One brief and what its candidates did."""

    brief: Brief
    candidates: list[int]  # shortlisted, invited, responding sellers and the winner
    winner: int | None = None
    responses: dict[int, tuple[str, str | None]] = field(default_factory=dict)


def grades(item: Labelled) -> dict[int, int]:
    """Seller id -> grade (see the module docstring)."""
    out = {s: UNLABELLED for s in item.candidates}
    for seller_id, (response, reason) in item.responses.items():
        if response == "applied":
            out[seller_id] = APPLIED
        elif response == "not_for_me" and reason != "timing":
            out[seller_id] = NOT_FOR_ME
        else:
            out.setdefault(seller_id, UNLABELLED)
    if item.winner is not None:
        out[item.winner] = WINNER
    return out


def graded_pairs(
    matcher: Matcher, items: list[Labelled], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """(signal differences, labels, briefs used): each pair (higher, lower) gives
    (x_higher - x_lower) * gap with label 1 and its mirror with label 0; each brief's pairs are
    scaled by 1/sqrt(pairs) so a brief counts about once however many candidates it has."""
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    used = 0
    for item in items:
        g = grades(item)
        ids = [s for s in g if s in matcher]
        if len(ids) < 2:
            continue
        x, got, _ = matcher.signal_matrix(item.brief, ids)
        grade = np.array([g[s] for s in got], np.float64)
        hi, lo = np.nonzero(grade[:, None] > grade[None, :])
        if not len(hi):
            continue
        if len(hi) > MAX_PAIRS_PER_QUERY:
            pick = rng.choice(len(hi), MAX_PAIRS_PER_QUERY, replace=False)
            hi, lo = hi[pick], lo[pick]
        gap = (grade[hi] - grade[lo])[:, None]
        diffs.append((x[hi] - x[lo]) * gap / np.sqrt(len(hi)))
        used += 1
    if not diffs:
        return np.empty((0, len(SIGNALS))), np.empty(0), 0
    d = np.vstack(diffs)
    return np.vstack([d, -d]), np.concatenate([np.ones(len(d)), np.zeros(len(d))]), used


def fit_from_outcomes(
    sellers: list[Seller], items: list[Labelled], base: Rules | None = None
) -> tuple[Rules, dict[str, int]]:
    """Rules like `base` with weights learned from graded outcomes, and what was learnt from.

    `sellers` are the candidates' profiles with the outcomes being learnt removed from their
    past work (an award must not explain itself). Hard filters are off while learning, as in
    `matcher.fit.fit_rules`. Raises ValueError when the outcomes hold no usable pair."""
    base = base or Rules()
    learning = replace(base, require_category=False, require_location=False,
                       require_day_rate=False, require_active=False)
    matcher = Matcher(learning).fit(sellers)
    x, y, used = graded_pairs(matcher, items)
    if not len(y):
        raise ValueError("no brief has candidates with different outcomes to learn from")
    fitted = fit_weights(x, y)
    base_total = sum(base.weights.get(s, 0.0) for s in SIGNALS) or 1.0
    weights = {
        s: round((used * fitted[s] + PRIOR_BRIEFS * 10.0 * base.weights.get(s, 0.0) / base_total)
                 / (used + PRIOR_BRIEFS), 4)
        for s in SIGNALS
    }
    info = {"briefs": used, "pairs": int(len(y) // 2), "sellers": len(sellers)}
    return replace(base, weights=weights), info
