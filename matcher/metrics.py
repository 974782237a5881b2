"""Ranking-quality metrics over one relevant item per query.

`ranks` holds, per query, the 1-based rank at which the ranker placed the relevant item, or
None when it did not return it at all (counted as a miss by every metric). With a single
relevant item the ideal DCG is 1, so NDCG@k is simply 1 / log2(rank + 1) within the top k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Ranks = Sequence[int | None]


def _check(rank: int | None) -> None:
    if rank is not None and rank < 1:
        raise ValueError(f"ranks are 1-based, got {rank}")


def recall_at_k(ranks: Ranks, k: int) -> float:
    """Share of queries whose relevant item is in the top k."""
    if not ranks:
        return 0.0
    hits = 0
    for rank in ranks:
        _check(rank)
        if rank is not None and rank <= k:
            hits += 1
    return hits / len(ranks)


def mrr(ranks: Ranks) -> float:
    """Mean reciprocal rank; a missing item contributes 0."""
    if not ranks:
        return 0.0
    total = 0.0
    for rank in ranks:
        _check(rank)
        if rank is not None:
            total += 1.0 / rank
    return total / len(ranks)


def ndcg_at_k(ranks: Ranks, k: int) -> float:
    """Mean NDCG@k with one relevant item per query (binary gain)."""
    if not ranks:
        return 0.0
    total = 0.0
    for rank in ranks:
        _check(rank)
        if rank is not None and rank <= k:
            total += 1.0 / math.log2(rank + 1)
    return total / len(ranks)


SHARES = (0.05, 0.10, 0.20)  # recall@5%, @10%, @20% of the candidates


def recall_at_share(ranks: Ranks, n_candidates: int, share: float) -> float:
    """Share of queries whose relevant item is within the first `share` of the candidates
    (rank <= share x candidates, at least the first one)."""
    return recall_at_k(ranks, max(1, math.floor(share * n_candidates + 1e-9)))


def alert_volume(scores: Sequence[Sequence[float]], n_candidates: int, threshold: float,
                 ) -> float:
    """Mean, per query, of the share of candidates whose score reaches `threshold` (`scores`:
    per query, the scores of the sellers it matched; unmatched candidates score nothing)."""
    if not scores or n_candidates <= 0:
        return 0.0
    return sum(sum(1 for v in q if v >= threshold) / n_candidates for q in scores) / len(scores)


def alert_recall(winner_scores: Sequence[float | None], threshold: float) -> float:
    """Share of queries whose winner's score reaches `threshold` (None: not matched)."""
    if not winner_scores:
        return 0.0
    return sum(1 for v in winner_scores if v is not None and v >= threshold) / len(winner_scores)


def summarise(ranks: Ranks, n_candidates: int | None = None) -> dict[str, float | int]:
    """The figures `marketplace eval` reports, rounded for display stability."""
    out: dict[str, float | int] = {
        "n_queries": len(ranks),
        "recall@1": round(recall_at_k(ranks, 1), 4),
        "recall@10": round(recall_at_k(ranks, 10), 4),
        "mrr": round(mrr(ranks), 4),
        "ndcg@10": round(ndcg_at_k(ranks, 10), 4),
    }
    if n_candidates is not None:
        for share in SHARES:
            out[f"recall@{round(share * 100)}%"] = round(
                recall_at_share(ranks, n_candidates, share), 4)
    return out


def rank_of(ranked_ids: Sequence[int], relevant: int) -> int | None:
    """1-based position of `relevant` in a ranked list of ids, None when absent."""
    for position, item in enumerate(ranked_ids, start=1):
        if item == relevant:
            return position
    return None
