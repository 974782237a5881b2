"""Explanations for returned matches only: why this seller, in data and in one sentence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .index import SellerIndex
from .skills import SkillScorer
from .text import norm_org

if TYPE_CHECKING:
    from .core import Query

TOP_TERMS = 5

_LABELS = {
    "text": "wording of the brief",
    "skills": "skills asked for",
    "category": "work in this category",
    "role": "has done this role",
    "location": "works in this location",
    "buyer": "past work for this buyer",
    "wins": "track record of wins",
    "recency": "recent wins",
    "sme": "SME",
}


def term_contributions(index: SellerIndex, q: Query, rows: list[int],
                       ) -> list[list[tuple[str, float]]]:
    """Per row: the query terms its text has, as (term, query weight x seller weight), best
    first. One binary search per query term for all rows at once (not per row and term)."""
    n_terms = len(q.term_ids)
    contrib = np.zeros((len(rows), n_terms))
    rows_arr = np.asarray(rows, np.int64)
    main = np.flatnonzero(rows_arr < index.n_main)
    if len(main) and n_terms:
        m = index.matrix
        wanted = rows_arr[main]
        for j, (tid, qw) in enumerate(zip(q.term_ids.tolist(), q.term_weights.tolist(),
                                          strict=True)):
            if tid >= m.shape[1]:
                continue  # a word first seen after fit: only in delta rows
            start, end = int(m.indptr[tid]), int(m.indptr[tid + 1])
            if start == end:
                continue
            col = m.indices[start:end]
            pos = np.searchsorted(col, wanted)
            pos_c = np.minimum(pos, end - start - 1)
            hit = col[pos_c] == wanted
            contrib[main[hit], j] = qw * m.data[start + pos_c[hit]]
    delta_pos = {r: i for i, r in enumerate(index.delta_rows)} if index.delta_rows else {}
    for i, row in enumerate(rows):
        if row >= index.n_main and row in delta_pos:
            ids, weights = index.delta_vectors[delta_pos[row]]
            found = dict(zip(ids.tolist(), weights.tolist(), strict=True))
            for j, (tid, qw) in enumerate(zip(q.term_ids.tolist(), q.term_weights.tolist(),
                                              strict=True)):
                if tid in found:
                    contrib[i, j] = qw * found[tid]
    out: list[list[tuple[str, float]]] = []
    for i in range(len(rows)):
        nz = np.flatnonzero(contrib[i])
        best = nz[np.argsort(-contrib[i, nz])][:TOP_TERMS]
        out.append([(index.text.terms[int(q.term_ids[j])], float(contrib[i, j])) for j in best])
    return out


def explain(index: SellerIndex, q: Query, row: int, signals: dict[str, float],
            weights: dict[str, float], scorer: SkillScorer | None,
            top_terms: list[tuple[str, float]]) -> dict[str, Any]:
    skills = scorer.explain(index.row_skills[row]) if scorer is not None else []
    brief = q.brief
    rules = q.rules
    filters: dict[str, bool] = {"active": True}
    if rules.require_category and brief.category:
        filters["category"] = True
    if rules.require_location and q.location:
        filters["location"] = True
    if rules.require_day_rate and brief.max_day_rate:
        filters["day_rate"] = True
    boosts = {
        name: round(weights[name] * value, 4)
        for name, value in signals.items()
        if name not in ("text", "skills") and round(weights.get(name, 0) * value, 4) > 0
    }
    contributions = {name: weights.get(name, 0.0) * value for name, value in signals.items()}
    return {
        "summary": _sentence(index, q, row, signals, contributions, top_terms, skills),
        "text": {"score": round(signals.get("text", 0.0), 4),
                 "top_terms": [{"term": t, "weight": round(w, 4)} for t, w in top_terms]},
        "skills": skills,
        "filters": filters,
        "boosts": boosts,
        "signals": {name: round(value, 4) for name, value in signals.items()},
    }


def _sentence(index: SellerIndex, q: Query, row: int, signals: dict[str, float],
              contributions: dict[str, float], top_terms: list[tuple[str, float]],
              skills: list[dict[str, Any]]) -> str:
    reasons: list[str] = []
    for name, value in sorted(contributions.items(), key=lambda kv: -kv[1]):
        if value <= 0 or len(reasons) >= 3:
            continue
        if name == "text" and top_terms:
            words = ", ".join(f'"{t}"' for t, _ in top_terms[:3])
            reasons.append(f"its profile matches {words}")
        elif name == "skills" and skills:
            reasons.append(f"it has {len(skills)} of the skills asked for")
        elif name == "buyer":
            orgs = [o for o in index.row_orgs[row] if norm_org(o) == q.org]
            buyer = orgs[0] if orgs else q.brief.organisation
            reasons.append(f"it has worked for {buyer} before")
        elif name == "role":
            reasons.append(f"it has supplied a {q.brief.role or 'specialist'} before")
        elif name == "category":
            reasons.append(f"it works in {q.category}")
        elif name == "location":
            reasons.append(f"it works in {q.brief.location}")
        elif name == "wins":
            n = int(index.n_wins.data[row])
            reasons.append(f"it has won {n} brief{'s' if n != 1 else ''}")
        elif name == "recency":
            reasons.append("it won work recently")
        elif name == "sme":
            reasons.append("it is an SME")
    if not reasons:
        return "Eligible seller with no specific match to this brief."
    if len(reasons) == 1:
        return f"Matched because {reasons[0]}."
    return f"Matched because {', '.join(reasons[:-1])} and {reasons[-1]}."


LABELS = _LABELS
