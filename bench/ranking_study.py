"""How much ranking signal is in the 2016-17 outcomes? Our defaults beside richer models.

    python -m bench.ranking_study [--opportunities FILE] [--splits 2017-01-01,...]

For each time split (the protocol of `marketplace eval`: profiles from wins before the split,
queries the later awards whose winner had won before) it scores every candidate with:

- **ours**: the matcher with its default rules;
- **logreg, earlier splits**: a logistic regression over 27 features (our 9 signals and score,
  nearest-past-win TF-IDF similarity (max and sum), a smoothed query-likelihood score, counts
  of past wins for the same buyer, role, category and location, log wins, days since the last
  and the first win, SME, the brief's lot), trained only on queries of earlier splits that
  fall before the next split: what `--fit` could learn honestly;
- **logreg, fitted on the test queries**: the same model fitted on the very queries it is
  scored on. It sees the answers, so it is an optimistic bound on what any weighting of these
  features can reach;
- **gbm, fitted on the test queries**: gradient-boosted trees fitted on the answers, which
  memorise them: shown to make the point that only memorising beats the linear bound.

On the 2016-17 data even the logistic regression fitted on the answers does not reach our
default rules on 2017-07-01: see the ranking figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bench.corpus import DATA_DIR
from matcher import Matcher
from matcher.metrics import rank_of, summarise
from matcher.outcomes import EvalSet, build_eval_set, read_opportunities
from matcher.text import norm_org, terms

DEFAULT_FILE = DATA_DIR / "dos-opportunities-2016-2017.csv"
DEFAULT_SPLITS = "2017-01-01,2017-04-01,2017-07-01,2017-10-01"


def _win_text(title: str, org: str, role: str, location: str) -> str:
    return f"{title} {org} {role} {location}"


def nearest_wins(es: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """(max, sum) over each seller's past wins of the TF-IDF cosine with the brief."""
    texts, owner = [], []
    for k, s in enumerate(es.sellers):
        for cs in s.case_studies:
            texts.append(_win_text(cs.title, cs.organisation, cs.role, cs.location))
            owner.append(k)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
    wins = vec.fit_transform(texts)
    briefs = vec.transform([_win_text(q.brief.title, q.brief.organisation, q.brief.role,
                                      q.brief.location) for q in es.queries])
    sim = (briefs @ wins.T).toarray()
    owners = np.asarray(owner)
    best = np.zeros((len(es.queries), len(es.sellers)))
    total = np.zeros_like(best)
    for k in range(len(es.sellers)):
        cols = sim[:, owners == k]
        best[:, k], total[:, k] = cols.max(1), cols.sum(1)
    return best, total


def query_likelihood(es: EvalSet, mu: float = 20.0, mu_field: float = 2.0) -> np.ndarray:
    """log P(seller) + log P(brief title | seller's past titles) (Dirichlet-smoothed) + log P
    of the brief's buyer, role, lot and location among the seller's past wins (smoothed)."""
    sellers = es.sellers
    counts = [Counter(t for cs in s.case_studies for t in terms(cs.title)) for s in sellers]
    corpus: Counter[str] = Counter()
    for c in counts:
        corpus.update(c)
    total = sum(corpus.values())
    lengths = np.array([sum(c.values()) for c in counts], float)
    n_wins = np.array([len(s.case_studies) for s in sellers], float)
    getters: list[Callable[..., str]] = [
        lambda x: norm_org(x.organisation), lambda x: x.role or "-",
        lambda x: x.category, lambda x: x.location]
    fields = []
    for get in getters:
        per = [Counter(get(cs) for cs in s.case_studies) for s in sellers]
        glob: Counter[str] = Counter()
        for seller_counts in per:
            glob.update(seller_counts)
        fields.append((get, per, glob))
    out = np.zeros((len(es.queries), len(sellers)))
    for qi, q in enumerate(es.queries):
        score = np.log(n_wins / n_wins.sum())
        for t in terms(q.brief.title):
            p = (corpus.get(t, 0) + 0.5) / (total + 500.0)
            have = np.array([c.get(t, 0) for c in counts], float)
            score += np.log((have + mu * p) / (lengths + mu))
        for get, per, glob in fields:
            value = get(q.brief)
            p = (glob.get(value, 0) + 0.5) / (n_wins.sum() + 0.5 * (len(glob) + 1))
            have = np.array([c.get(value, 0) for c in per], float)
            score += np.log((have + mu_field * p) / (n_wins + mu_field))
        out[qi] = score - score.max()
    return out


def features(es: EvalSet, split: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features: queries x sellers x 27, our scores: queries x sellers, winner columns)."""
    matcher = Matcher().fit(es.sellers)
    ids = [s.id for s in es.sellers]
    col = {i: k for k, i in enumerate(ids)}
    ours = np.full((len(es.queries), len(ids)), np.nan)  # NaN: not shortlisted (filtered)
    signals = []
    for qi, q in enumerate(es.queries):
        for m in matcher.match(q.brief, top_k=len(ids)):
            ours[qi, col[m.seller_id]] = m.score
        signals.append(matcher.signal_matrix(q.brief, ids)[0])
    best, total = nearest_wins(es)
    likelihood = query_likelihood(es)
    sellers = es.sellers
    n_wins = np.array([len(s.case_studies) for s in sellers], float)
    last = np.array([(split - max(c.won_at for c in s.case_studies if c.won_at)).days
                     for s in sellers], float)
    first = np.array([(split - min(c.won_at for c in s.case_studies if c.won_at)).days
                      for s in sellers], float)
    sme = np.array([float(bool(s.sme)) for s in sellers])
    rows = []
    for qi, q in enumerate(es.queries):
        b = q.brief
        org, role, cat_name, place = norm_org(b.organisation), b.role, b.category, b.location
        same_org = np.array([sum(norm_org(c.organisation) == org for c in s.case_studies)
                             for s in sellers], float)
        same_role = np.array([sum(bool(role) and c.role == role for c in s.case_studies)
                              for s in sellers], float)
        same_cat = np.array([sum(c.category == cat_name for c in s.case_studies)
                             for s in sellers], float)
        same_place = np.array([sum(c.location == place for c in s.case_studies)
                               for s in sellers], float)
        lot = np.full(len(sellers), float(cat_name == "digital-specialists"))
        rows.append(np.column_stack([
            signals[qi], np.nan_to_num(ours[qi], nan=-1.0), best[qi], total[qi],
            likelihood[qi], np.log1p(n_wins), last, first, sme, same_org, same_role,
            same_cat / n_wins, same_cat, same_place, lot, 1.0 - lot,
        ]))
    winners = np.array([col[q.relevant] for q in es.queries])
    return np.asarray(rows), ours, winners


def metrics(scores: np.ndarray, winners: np.ndarray) -> dict[str, float | int]:
    ranks = []
    for qi, w in enumerate(winners):
        listed = np.flatnonzero(~np.isnan(scores[qi]))  # as `marketplace eval`: unlisted, no rank
        order = listed[np.lexsort((listed, -scores[qi, listed]))]
        ranks.append(rank_of(order.tolist(), int(w)))
    return summarise(ranks)


def _fit_score(model: object, x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray,
               ) -> np.ndarray:
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-9
    model.fit((x_train - mu) / sd, y_train)  # type: ignore[attr-defined]
    flat = x.reshape(-1, x.shape[2])
    proba = model.predict_proba((flat - mu) / sd)[:, 1]  # type: ignore[attr-defined]
    return np.asarray(proba).reshape(x.shape[:2])


def study(file: Path, splits: Sequence[date]) -> list[tuple[str, str, dict[str, float | int]]]:
    opps, _ = read_opportunities(file)
    data = {}
    for split in splits:
        print(f"[study] features for split {split} ...", file=sys.stderr, flush=True)
        es = build_eval_set(opps, split)
        data[split] = (es, *features(es, split))
    rows: list[tuple[str, str, dict[str, float | int]]] = []
    for i, split in enumerate(splits):
        es, x, ours, winners = data[split]
        rows.append((str(split), "ours (default rules)", metrics(ours, winners)))
        train_x, train_y = [], []
        for earlier in splits[:i]:
            e_es, e_x, _, e_w = data[earlier]
            nxt = splits[splits.index(earlier) + 1]
            for qi, q in enumerate(e_es.queries):
                when = q.brief.published_at
                if when is not None and when.date() < nxt:
                    y = np.zeros(e_x.shape[1])
                    y[e_w[qi]] = 1
                    train_x.append(e_x[qi])
                    train_y.append(y)
        if train_x:
            logreg = LogisticRegression(C=0.3, max_iter=3000, class_weight="balanced")
            s = _fit_score(logreg, np.concatenate(train_x), np.concatenate(train_y), x)
            rows.append((str(split), f"logreg, earlier splits ({len(train_x)} queries)",
                         metrics(s, winners)))
        y_all = np.zeros(x.shape[:2])
        y_all[np.arange(len(winners)), winners] = 1
        flat = x.reshape(-1, x.shape[2])
        logreg = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")
        rows.append((str(split), "logreg, fitted on the test queries",
                     metrics(_fit_score(logreg, flat, y_all.ravel(), x), winners)))
        gbm = HistGradientBoostingClassifier(max_depth=3, max_iter=100, random_state=0)
        rows.append((str(split), "gbm, fitted on the test queries (memorises)",
                     metrics(_fit_score(gbm, flat, y_all.ravel(), x), winners)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ranking_study", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opportunities", type=Path, default=DEFAULT_FILE,
                        help="a Digital Marketplace opportunity-data.csv (default: the dev data)")
    parser.add_argument("--splits", default=DEFAULT_SPLITS,
                        help=f"comma-separated split dates (default {DEFAULT_SPLITS})")
    args = parser.parse_args(argv)
    try:
        splits = [date.fromisoformat(s.strip()) for s in args.splits.split(",") if s.strip()]
    except ValueError as exc:
        parser.error(f"--splits: {exc}")
    if not args.opportunities.is_file():
        parser.error(f"no such file: {args.opportunities} (the study needs a Digital "
                     "Marketplace opportunity-data CSV: give --opportunities, or put "
                     "dos-opportunities-2016-2017.csv in BENCH_DATA_DIR)")
    rows = study(args.opportunities, sorted(splits))
    print(f"{'split':<11} {'ranker':<46} {'n':>4} {'R@1':>6} {'R@10':>6} {'MRR':>6}")
    for split, name, r in rows:
        print(f"{split:<11} {name:<46} {r['n_queries']:>4} {r['recall@1']:>6.3f} "
              f"{r['recall@10']:>6.3f} {r['mrr']:>6.3f}")
    return 0 if all(math.isfinite(float(r["mrr"])) for _, _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
