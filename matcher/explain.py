"""Explanations for returned matches only: why this seller, in data and in one sentence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .index import SellerIndex
from .orgs import same_org
from .rules import SIGNALS
from .skills import SkillScorer
from .text import GENERIC_TERMS

if TYPE_CHECKING:
    from .core import Postings, Query

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


def term_contributions(index: SellerIndex, q: Query, rows: np.ndarray, postings: Postings,
                       ) -> list[list[tuple[str, float]]]:
    """Per row: the query terms its text has, as (term, query weight x seller weight), best
    first, at most TOP_TERMS. Main rows' weights are looked up in the postings of the query's
    terms (a binary search per row and term), delta rows' in their own vectors."""
    n_terms = len(q.term_ids)
    out: list[list[tuple[str, float]]] = [[] for _ in range(len(rows))]
    if not n_terms or not len(rows):
        return out
    terms = index.text.terms
    tids = q.term_ids.tolist()
    qws = q.term_weights.astype(np.float64)
    rows = np.asarray(rows, np.int64)
    main = np.flatnonzero(rows < index.n_main)
    if len(postings.known) and len(main):
        weights, present = index.postings.lookup(
            index.text.idf, q.term_ids[postings.known], rows[main])
        at, col = np.nonzero(present)
        if len(at):
            pos = main[at]
            j = postings.known[col]
            contrib = qws[j] * weights[at, col].astype(np.float64)
            # Best first per row, ties in query-term order (as a stable sort would give).
            order = np.lexsort((j, -contrib, pos))
            pos_o, j_o, c_o = pos[order], j[order], contrib[order]
            first = np.searchsorted(pos_o, pos_o, side="left")
            keep = np.flatnonzero(np.arange(len(pos_o)) - first < TOP_TERMS)
            for p_, jj, c in zip(pos_o[keep].tolist(), j_o[keep].tolist(), c_o[keep].tolist(),
                                 strict=True):
                out[p_].append((terms[tids[jj]], c))
    if index.delta_rows:
        delta_pos = {r: i for i, r in enumerate(index.delta_rows)}
        for i, row in enumerate(rows.tolist()):
            k = delta_pos.get(row)
            if k is None:
                continue
            vector = index.delta_vectors[k]
            found = dict(zip(vector.ids.tolist(), vector.weights.tolist(), strict=True))
            pairs = [(-qw * found[tid], j, tid) for j, (tid, qw)
                     in enumerate(zip(tids, qws.tolist(), strict=True)) if tid in found]
            pairs.sort()
            out[i] = [(terms[tid], -c) for c, _, tid in pairs[:TOP_TERMS] if c < 0]
    return out


_ORDER = (*(s for s in SIGNALS if s != "skills"), "skills")  # as explanations list them
_BOOSTS = tuple(s for s in _ORDER if s not in ("text", "skills"))


def explain_all(index: SellerIndex, q: Query, rows: np.ndarray, signals: np.ndarray,
                weights: dict[str, float], scorer: SkillScorer | None,
                top_terms: list[list[tuple[str, float]]]) -> list[dict[str, Any]]:
    """Explanations of `rows` (signals: rows x SIGNALS)."""
    brief = q.brief
    rules = q.rules
    filters: dict[str, bool] = {"active": True}
    if rules.require_category and brief.category:
        filters["category"] = True
    if rules.require_location and q.location:
        filters["location"] = True
    if rules.require_day_rate and brief.max_day_rate:
        filters["day_rate"] = True
    cols = [SIGNALS.index(s) for s in _ORDER]
    w = np.asarray([weights.get(s, 0.0) for s in _ORDER], np.float64)
    # Whole-matrix numpy work instead of per-value Python calls: explanations are the largest
    # per-match cost after scoring (top_k rows x ~20 rounded values each).
    values = np.asarray(signals[:, cols], np.float64)
    contrib = values * w
    sig_rows = np.round(values, 4).tolist()
    con_rows = np.round(contrib, 4).tolist()
    # Best contribution first; ties keep _ORDER (what a stable sort by -value gives).
    order_rows = np.argsort(-contrib, axis=1, kind="stable").tolist()
    boost_cols = [_ORDER.index(name) for name in _BOOSTS]
    text_col = _ORDER.index("text")
    out: list[dict[str, Any]] = []
    for row, sig_r, con_r, order, all_terms in zip(rows.tolist(), sig_rows, con_rows,
                                                   order_rows, top_terms, strict=True):
        terms = _carrying(index, all_terms, sig_r[text_col])
        boosts = {_ORDER[c]: con_r[c] for c in boost_cols if con_r[c] > 0}
        skills = scorer.explain(index.row_skills(row)) if scorer is not None else []
        out.append({
            "summary": _sentence(index, q, row, [(_ORDER[c], con_r[c]) for c in order],
                                 terms, skills),
            "text": {"score": sig_r[text_col],
                     "top_terms": [{"term": t, "weight": round(x, 4)} for t, x in terms]},
            "skills": skills,
            "filters": dict(filters),
            "boosts": boosts,
            "signals": dict(zip(_ORDER, sig_r, strict=True)),
        })
    return out


def _sentence(index: SellerIndex, q: Query, row: int, ranked: list[tuple[str, float]],
              top_terms: list[tuple[str, float]], skills: list[dict[str, Any]]) -> str:
    """`ranked`: (signal, contribution) best first."""
    reasons: list[str] = []
    # The three strongest reasons, and past work for this buyer whatever its rank: a buyer
    # wants to know it, and a seller should know why this buyer's brief reached it.
    shown = [name for name, value in ranked if value > 0][:3]
    if "buyer" not in shown and any(n == "buyer" and v > 0 for n, v in ranked):
        shown.append("buyer")
    for name, _value in ranked:
        if name not in shown:
            continue
        if name == "text" and top_terms:
            words = ", ".join(f'"{t}"' for t, _ in top_terms[:3])
            reasons.append(f"its profile matches {words}")
        elif name == "skills" and skills:
            reasons.append(f"it has {len(skills)} of the skills asked for")
        elif name == "buyer":
            reason = _buyer_reason(index, q, row)
            if reason:
                reasons.append(reason)
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


# A term carries the text score when it gives at least this share of it.
CARRYING_SHARE = 0.1


def _carrying(index: SellerIndex, terms: list[tuple[str, float]], text_score: float,
              ) -> list[tuple[str, float]]:
    """The shared terms worth showing: those that carried the text score, never the words
    most briefs use ("experience", "team")."""
    if text_score <= 0:
        return []
    return [(t, c) for t, c in terms
            if t not in GENERIC_TERMS and c >= CARRYING_SHARE * text_score]


def _buyer_reason(index: SellerIndex, q: Query, row: int) -> str:
    """The buyer history, said exactly: the same organisation is "you"; another one is named
    as a buyer like yours, with the name it really worked for."""
    brief_org = q.brief.organisation
    orgs = index.row_orgs[row]
    if any(same_org(o, brief_org) for o in orgs):
        return "it has worked for you before"
    oids, sims = index.orgs.similar(brief_org)
    best: tuple[float, str] | None = None
    for oid, sim in zip(oids.tolist(), sims.tolist(), strict=True):
        name = index.orgs.names[oid]
        if name in orgs and (best is None or sim > best[0]):
            best = (sim, name)
    if best is None:
        return ""
    return f"it has worked for {best[1]} (a buyer like yours)"


LABELS = _LABELS
