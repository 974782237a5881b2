"""New ranking signals and the default calibration, measured on every time split of both dev
sets (the Digital Marketplace 2016-17 opportunities and the 2020 UK OCDS awards).

    python -m bench.signal_study               # the table of every idea on every split
    python -m bench.signal_study --calibrate   # the default calibration knots (JSON)

Protocol (as `marketplace eval`): profiles from awards before a split, queries the later
awards whose winner had an earlier award, every such supplier a candidate. Our signals come
from the matcher with its hard filters off (`Matcher.signal_matrix`); the new signals are
computed here from the same profiles:

- **near**: the best TF-IDF cosine of the brief with any single past award of the seller (a
  profile of many awards dilutes the one that matches);
- **bm25**: BM25 (bm25s) of the brief over the seller's concatenated past work, per query
  scaled to its maximum;
- **lsa**: cosine in a 100-dimension latent space (TruncatedSVD of the past awards' TF-IDF):
  words that co-occur in past work count as related;
- **cf**: buyers similar by whom they hire: sellers hired by buyers whose hired sellers overlap
  the brief's buyer's (Jaccard), aimed at winners new to the buyer.

Rankers: the default rules (weighted sum), the defaults plus each new signal (weight 3, as
text), and a pairwise ranking model (logistic regression on winner-minus-other differences,
non-negative weights) trained on the queries of the previous split dated before this one, with
and without the new signals. An idea is kept only where it helps on both data sets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from matcher import Matcher, Rules
from matcher.calibration import IDENTITY, fit_calibration
from matcher.ocds import build_ocds_eval_set, read_ocds
from matcher.outcomes import EvalSet, build_eval_set, read_opportunities
from matcher.text import norm_org
from models.types import Brief

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DM_FILE = SHARED / "dos-opportunities-2016-2017.csv"
OCDS_FILE = SHARED / "uk-awards-2020-h1.ocds.json"
# The first split of each list only trains the pairwise model for the second.
SPLITS = {
    "dm": ["2016-10-01", "2017-01-01", "2017-04-01", "2017-07-01", "2017-10-01"],
    "ocds": ["2020-02-01", "2020-03-01", "2020-04-01", "2020-05-01", "2020-06-01"],
}
NEW_SIGNALS = ("near", "bm25", "lsa", "cf")


def _builder(name: str) -> Any:
    for path in (DM_FILE, OCDS_FILE):
        if not path.exists():
            sys.exit(f"signal_study: needs {path} (the dev data of ../shared/data)")
    if name == "dm":
        opps, _ = read_opportunities(DM_FILE)
        return lambda split, until=None: build_eval_set(opps, split, until)
    awards, _ = read_ocds(OCDS_FILE)
    return lambda split, until=None: build_ocds_eval_set(awards, split, until)


def _brief_text(b: Brief) -> str:
    return f"{b.title} {b.title} {b.summary} {b.role}"


def new_signals(es: EvalSet) -> dict[str, np.ndarray]:
    """queries x sellers arrays of each new signal."""
    texts, owner = [], []
    for k, s in enumerate(es.sellers):
        for cs in s.case_studies:
            texts.append(f"{cs.title} {cs.summary} {cs.role}")
            owner.append(k)
    owners = np.asarray(owner)
    n_q, n_s = len(es.queries), len(es.sellers)
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    wins = vec.fit_transform(texts)
    queries = vec.transform([_brief_text(q.brief) for q in es.queries])
    sim = (queries @ wins.T).toarray()
    near = np.zeros((n_q, n_s))
    np.maximum.at(near.T, owners, sim.T)
    profiles = normalize(vec.transform(
        [" ".join(texts[i] for i in np.flatnonzero(owners == k)) for k in range(n_s)]))
    svd = TruncatedSVD(min(100, min(wins.shape) - 1), random_state=0).fit(wins)
    lsa = normalize(svd.transform(queries)) @ normalize(svd.transform(profiles)).T
    import bm25s

    prof_text = [" ".join(texts[i] for i in np.flatnonzero(owners == k)) for k in range(n_s)]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(prof_text, stopwords="en", show_progress=False),
                    show_progress=False)
    bm = np.zeros((n_q, n_s))
    for i, q in enumerate(es.queries):
        tok = bm25s.tokenize([_brief_text(q.brief)], stopwords="en", show_progress=False)
        inverse = {v: k for k, v in tok.vocab.items()}
        scores = retriever.get_scores([inverse[t] for t in tok.ids[0]])
        bm[i] = scores / (scores.max() or 1.0)
    hired: dict[str, set[int]] = {}
    for k, s in enumerate(es.sellers):
        for cs in s.case_studies:
            hired.setdefault(norm_org(cs.organisation), set()).add(k)
    cf = np.zeros((n_q, n_s))
    for i, q in enumerate(es.queries):
        buyer = norm_org(q.brief.organisation)
        mine = hired.get(buyer, set())
        for other, theirs in hired.items():
            if other != buyer and mine & theirs:
                for k in theirs - mine:
                    cf[i, k] += len(mine & theirs) / len(mine | theirs)
    return {"near": near, "bm25": bm, "lsa": lsa, "cf": 1.0 - np.exp(-cf)}


def split_data(es: EvalSet) -> dict[str, Any]:
    rules = replace(Rules(), require_category=False, require_location=False,
                    require_day_rate=False, require_active=False)
    matcher = Matcher(rules).fit(es.sellers)
    xs, ys = [], []
    names: list[str] = []
    for q in es.queries:
        x, ids, names = matcher.signal_matrix(q.brief)
        xs.append(x)
        ys.append(np.asarray(ids) == q.relevant)
    extra = new_signals(es) if es.queries else {}
    return {"x": xs, "y": ys, "names": names, "extra": extra, "n": len(es.sellers),
            "dates": [q.brief.published_at.date() for q in es.queries if q.brief.published_at]}


def _rank(scores: np.ndarray, y: np.ndarray) -> float:
    """1-based rank of the winner; ties count half (neither optimistic nor pessimistic)."""
    w = scores[y][0]
    return float((scores > w).sum() + 1 + 0.5 * ((scores == w).sum() - 1))


def _mrr(ranks: list[float]) -> float:
    return float(np.mean([1.0 / r for r in ranks])) if ranks else 0.0


def _features(d: dict[str, Any], i: int, extra: tuple[str, ...]) -> np.ndarray:
    cols = [d["x"][i]] + [d["extra"][k][i][:, None] for k in extra]
    return np.hstack(cols)


def _pairwise(train: dict[str, Any], before: date, extra: tuple[str, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    diffs = []
    for i, y in enumerate(train["y"]):
        if train["dates"][i] >= before or not y.any():
            continue
        f = _features(train, i, extra)
        pos, others = np.flatnonzero(y)[0], np.flatnonzero(~y)
        if len(others) > 200:
            others = rng.choice(others, 200, replace=False)
        diffs.append((f[pos] - f[others]) / np.sqrt(len(others)))
    d = np.vstack(diffs)
    model = LogisticRegression(fit_intercept=False, max_iter=3000)
    model.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
    return np.clip(model.coef_[0], 0.0, None)  # type: ignore[no-any-return]


def study() -> list[tuple[str, str, dict[str, float]]]:
    """(ranker, data set, {split: MRR}) rows."""
    weights = Rules().weights
    rows: list[tuple[str, str, dict[str, float]]] = []
    for ds, splits in SPLITS.items():
        build = _builder(ds)
        data = {s: split_data(build(date.fromisoformat(s))) for s in splits}
        print(f"{ds}: signals computed", file=sys.stderr)
        out: dict[str, dict[str, float]] = {}
        for prev, split in itertools.pairwise(splits):
            d = data[split]
            w = np.array([weights[n] for n in d["names"]])
            base = [x @ w for x in d["x"]]
            out.setdefault("ours (default rules)", {})[split] = _mrr(
                [_rank(s, y) for s, y in zip(base, d["y"], strict=True)])
            for k in NEW_SIGNALS:
                scores = [b + 3.0 * d["extra"][k][i] for i, b in enumerate(base)]
                out.setdefault(f"defaults + {k}", {})[split] = _mrr(
                    [_rank(s, y) for s, y in zip(scores, d["y"], strict=True)])
            for label, extra in (("pairwise, our signals", ()),
                                 ("pairwise + near", ("near",)),
                                 ("pairwise + near + bm25", ("near", "bm25")),
                                 ("pairwise + all four", NEW_SIGNALS)):
                coef = _pairwise(data[prev], date.fromisoformat(split), extra)
                ranks = [_rank(_features(d, i, extra) @ coef, y) for i, y in enumerate(d["y"])]
                out.setdefault(label, {})[split] = _mrr(ranks)
        rows.extend((label, ds, by_split) for label, by_split in out.items())
    return rows


def default_calibration() -> list[list[float]]:
    """Knots from the DM winners of 2017-01-01..2017-07-01, each scored on the profiles of the
    quarter before it (2017-07-01 and 2017-10-01 stay out of sample)."""
    build = _builder("dm")
    rules = replace(Rules(), calibration=IDENTITY, shortlist_threshold=0.0)
    raws: list[float] = []
    for lo, hi in ((date(2017, 1, 1), date(2017, 4, 1)), (date(2017, 4, 1), date(2017, 7, 1))):
        es = build(lo, hi)
        matcher = Matcher(rules).fit(es.sellers)
        for q in es.queries:
            got = {m.seller_id: m.raw_score for m in matcher.match(q.brief, len(es.sellers))}
            raws.append(got.get(q.relevant, 0.0))
    return [list(k) for k in fit_calibration(raws)]  # as matcher.fit.calibrate_on, pooled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true",
                        help="print the default calibration knots and exit")
    args = parser.parse_args(argv)
    if args.calibrate:
        print(json.dumps(default_calibration()))
        return 0
    rows = study()
    for ds in SPLITS:
        splits = SPLITS[ds][1:]
        print(f"\nMRR, {ds}: " + " ".join(f"{s:>11}" for s in splits) + "       mean")
        for label, d, by_split in rows:
            if d == ds:
                values = [by_split[s] for s in splits]
                print(f"{label:<26}" + " ".join(f"{v:>11.3f}" for v in values)
                      + f" {np.mean(values):>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
