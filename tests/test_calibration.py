"""Calibrated scores: a threshold means a share of past winners, and priors never match."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from matcher import Matcher, Rules, RulesError
from matcher.calibration import IDENTITY, calibrate, fit_calibration
from models.types import Brief, CaseStudy, Seller


def test_fit_calibration_maps_winner_percentiles() -> None:
    # 100 winners with raw scores 0.01..1.00 (and 10 unmatched, left out of the shares).
    raws = [i / 100 for i in range(1, 101)] + [0.0] * 10
    knots = fit_calibration(raws)
    assert knots[0] == (0.0, 0.0)
    mapped = calibrate(np.array([0.01, 0.2575, 0.505, 1.0]), knots)
    # The q-th percentile of the winners' raw scores maps to q.
    assert mapped[0] == pytest.approx(0.0, abs=1e-9)
    assert mapped[1] == pytest.approx(0.25, abs=0.01)
    assert mapped[2] == pytest.approx(0.5, abs=0.01)
    assert mapped[3] == pytest.approx(1.0)
    # So a threshold t keeps about (1 - t) of those winners.
    share = np.mean(calibrate(np.array(raws[:100]), knots) >= 0.15)
    assert share == pytest.approx(0.85, abs=0.02)


def test_calibration_is_monotone_and_validated() -> None:
    knots = fit_calibration([0.3, 0.3, 0.3, 0.4, 0.9])
    xs = [k[0] for k in knots]
    ys = [k[1] for k in knots]
    assert xs == sorted(set(xs)) and ys == sorted(ys)
    assert fit_calibration([]) == IDENTITY
    rules = Rules.from_dict({"calibration": [[0, 0], [0.5, 0.9], [1, 1]]})
    assert rules.calibration == ((0.0, 0.0), (0.5, 0.9), (1.0, 1.0))
    assert Rules.from_dict(rules.to_dict()) == rules
    for bad in ([[0, 0]], [[0, 0], [0, 1]], [[0, 0.5], [1, 0.4]], [[0, 0], [2, 1]], "x"):
        with pytest.raises(RulesError) as exc:
            Rules.from_dict({"calibration": bad})
        assert exc.value.field == "calibration"


def _sellers() -> list[Seller]:
    """One seller that does the work, one big incumbent with nothing in common with it."""
    return [
        Seller(id=1, name="Fit", summary="accessibility audit of web services",
               categories=["digital-outcomes"]),
        Seller(id=2, name="Incumbent", summary="payroll outsourcing", sme=True,
               categories=["digital-outcomes"], locations=["London"],
               case_studies=[CaseStudy(title="payroll outsourcing", organisation="Home Office",
                                       category="digital-outcomes", location="London")
                             for _ in range(20)]),
    ]


def test_priors_alone_never_make_a_match() -> None:
    brief = Brief(id=1, title="Accessibility audit", summary="audit our web services",
                  category="digital-outcomes", location="London", organisation="Home Office")
    rules = replace(Rules(), shortlist_threshold=0.0, calibration=IDENTITY)
    matches = Matcher(rules).fit(_sellers()).match(brief)
    # The incumbent has past work for this buyer, 20 wins, SME, the category and the location,
    # but not one word of the work: it is not matched at all.
    assert [m.seller_id for m in matches] == [1]


def test_scores_are_calibrated_and_order_unchanged() -> None:
    brief = Brief(id=1, title="Accessibility audit", summary="audit our web services")
    knots = ((0.0, 0.0), (0.05, 0.5), (1.0, 1.0))
    raw = Matcher(replace(Rules(), calibration=IDENTITY)).fit(_sellers()).match(brief)
    cal = Matcher(replace(Rules(), calibration=knots)).fit(_sellers()).match(brief)
    assert [m.seller_id for m in raw] == [m.seller_id for m in cal]
    for a, b in zip(raw, cal, strict=True):
        assert b.raw_score == pytest.approx(a.score, abs=1e-6)
        assert b.score == pytest.approx(float(calibrate(np.array([a.score]), knots)[0]), abs=1e-6)
