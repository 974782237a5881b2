"""Learning weights from real outcomes (the 2016-17 Digital Marketplace awards)."""

from __future__ import annotations

from datetime import date

import numpy as np

from matcher import SIGNALS, Matcher, Rules
from matcher.fit import fit_rules, signal_matrix
from matcher.outcomes import build_eval_set, read_opportunities
from tests.conftest import OPPORTUNITIES_CSV

CSV = OPPORTUNITIES_CSV


def test_signal_matrix_shapes_and_ranges() -> None:
    opps, _ = read_opportunities(CSV)
    evalset = build_eval_set(opps, date(2017, 1, 1), until=date(2017, 3, 1))
    matcher = Matcher().fit(evalset.sellers)
    query = evalset.queries[0]
    x, ids, names = signal_matrix(matcher, query.brief)
    assert names == list(SIGNALS)
    assert x.shape == (len(evalset.sellers), len(SIGNALS))
    assert query.relevant in ids
    assert np.all((x >= 0) & (x <= 1 + 1e-6))


def test_fit_rules_learns_non_negative_weights_that_rank_winners() -> None:
    opps, _ = read_opportunities(CSV)
    train = build_eval_set(opps, date(2016, 12, 1), until=date(2017, 4, 1))
    base = Rules.from_dict({"shortlist_threshold": 0.0, "alert_threshold": 0.5})
    fitted = fit_rules(train, base)
    assert set(fitted.weights) == set(SIGNALS)
    assert all(w >= 0 for w in fitted.weights.values())
    assert sum(fitted.weights.values()) > 0
    assert fitted.alert_threshold == 0.5 and fitted.require_category == base.require_category
    assert Rules.from_dict(fitted.to_dict()) == fitted
    # On later briefs the fitted rules rank the real winner well above chance.
    test = build_eval_set(opps, date(2017, 4, 1), until=date(2017, 7, 1))
    matcher = Matcher(fitted).fit(test.sellers)
    reciprocal = []
    for q in test.queries:
        ids = [m.seller_id for m in matcher.match(q.brief, top_k=len(test.sellers))]
        reciprocal.append(1 / (ids.index(q.relevant) + 1) if q.relevant in ids else 0.0)
    chance = np.mean([1 / r for r in range(1, len(test.sellers) + 1)])
    assert np.mean(reciprocal) > 2 * chance
