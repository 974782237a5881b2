"""Metrics against cases computed by hand."""

from __future__ import annotations

import math

import pytest

from matcher.metrics import mrr, ndcg_at_k, rank_of, recall_at_k, summarise

# Four queries: the relevant seller at rank 1, 3, 12 and not returned at all.
RANKS: list[int | None] = [1, 3, 12, None]


def test_recall_at_k_by_hand() -> None:
    assert recall_at_k(RANKS, 1) == 0.25  # only the first
    assert recall_at_k(RANKS, 3) == 0.5  # 1 and 3
    assert recall_at_k(RANKS, 10) == 0.5
    assert recall_at_k(RANKS, 12) == 0.75
    assert recall_at_k(RANKS, 1000) == 0.75  # None never counts


def test_mrr_by_hand() -> None:
    # (1/1 + 1/3 + 1/12 + 0) / 4 = (12/12 + 4/12 + 1/12) / 4 = 17/48
    assert mrr(RANKS) == pytest.approx(17 / 48)
    assert mrr([2, 2]) == 0.5
    assert mrr([None]) == 0.0


def test_ndcg_by_hand() -> None:
    # rank 1 -> 1, rank 3 -> 1/log2(4) = 0.5, rank 12 outside the top 10 -> 0, None -> 0
    assert ndcg_at_k(RANKS, 10) == pytest.approx((1 + 0.5) / 4)
    assert ndcg_at_k([2], 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(RANKS, 12) == pytest.approx((1 + 0.5 + 1 / math.log2(13)) / 4)


def test_empty_and_invalid() -> None:
    assert recall_at_k([], 10) == 0.0
    assert mrr([]) == 0.0
    assert ndcg_at_k([], 10) == 0.0
    with pytest.raises(ValueError):
        mrr([0])


def test_summarise_shape_and_values() -> None:
    s = summarise(RANKS)
    assert list(s) == ["n_queries", "recall@1", "recall@10", "mrr", "ndcg@10"]
    assert s["n_queries"] == 4
    assert s["recall@1"] == 0.25
    assert s["recall@10"] == 0.5
    assert s["mrr"] == pytest.approx(17 / 48, abs=1e-4)
    assert s["ndcg@10"] == pytest.approx(0.375)


def test_rank_of() -> None:
    assert rank_of([7, 3, 9], 9) == 3
    assert rank_of([7, 3, 9], 4) is None


def test_recall_at_share_hand_computed() -> None:
    from matcher.metrics import recall_at_share

    ranks = [1, 5, 6, 11, None]
    # 100 candidates: 5% is the top 5, 10% the top 10, 20% the top 20.
    assert recall_at_share(ranks, 100, 0.05) == 2 / 5
    assert recall_at_share(ranks, 100, 0.10) == 3 / 5
    assert recall_at_share(ranks, 100, 0.20) == 4 / 5
    # 10 candidates: 5% is less than one seller, so the first one counts.
    assert recall_at_share(ranks, 10, 0.05) == 1 / 5


def test_alert_volume_and_recall_hand_computed() -> None:
    from matcher.metrics import alert_recall, alert_volume

    # Two queries over 10 candidates: 3 of 10 and 1 of 10 reach 0.5 -> mean 0.2.
    scores = [[0.9, 0.6, 0.5, 0.2], [0.7, 0.1]]
    assert alert_volume(scores, 10, 0.5) == (0.3 + 0.1) / 2
    assert alert_volume(scores, 10, 0.95) == 0.0
    # Winners at 0.6, 0.1 and not matched: one of three reaches 0.5.
    assert alert_recall([0.6, 0.1, None], 0.5) == 1 / 3
    assert alert_recall([0.6, 0.1, None], 0.0) == 2 / 3
    assert alert_recall([], 0.5) == 0.0
