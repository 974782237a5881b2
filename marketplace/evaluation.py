"""`marketplace eval`: ranking quality on past outcomes, ours beside the peers, same run.

Seller profiles come only from wins published before --split-date; each later award whose
winner had an earlier win is a query, and the candidates are every seller with an earlier
win. Each ranker orders all candidates; the metrics say where the real winner landed. The
outcomes come from a Digital Marketplace opportunity CSV (--opportunities) or from OCDS awards
(--ocds; see `matcher.ocds.build_ocds_eval_set` for its rules).
Ours needs no server. The PostgreSQL peer uses MARKETPLACE_DATABASE_URL when set (a temporary
table only), else an embedded PostgreSQL in a temporary folder that is removed afterwards.

--fit proposes a rule set fitted on data before the split only (an earlier split inside it),
writes it to --out, and evaluates it on the real split beside the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tqdm import tqdm

from marketplace.peers import Ranks, bm25_ranks, postgres_fts_ranks
from matcher.metrics import alert_recall, alert_volume, rank_of, summarise
from matcher.ocds import build_ocds_eval_set, read_ocds
from matcher.outcomes import (
    EvalSet,
    Opportunity,
    OutcomesFileError,
    build_eval_set,
    read_opportunities,
)

log = logging.getLogger(__name__)

ROW_ORDER = ("ours", "ours_fitted", "bm25", "postgres_fts", "postgres_ts_rank")
LABELS = {
    "ours": "ours",
    "ours_fitted": "ours (fitted rules)",
    "bm25": "bm25 (bm25s)",
    "postgres_fts": "postgres_fts (ts_rank_cd)",
    "postgres_ts_rank": "postgres_ts_rank",
}
METRICS = ("recall@1", "recall@10", "mrr", "ndcg@10", "recall@5%", "recall@10%", "recall@20%")


class EvalError(Exception):
    """A usage problem worth one line on stderr (exit 2)."""


def _progress(items: Sequence[Any], desc: str, progress: bool) -> tqdm:
    return tqdm(
        items, desc=desc, unit="query", file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )


CURVE = tuple(round(0.05 * i, 2) for i in range(21))  # alert thresholds the curve shows


def ours_ranks(evalset: EvalSet, rules: Any = None, *, progress: bool = False) -> Ranks:
    """Our matcher with the given Rules (None: defaults), every candidate in play."""
    return ours_run(evalset, rules, progress=progress)[0]


def ours_run(evalset: EvalSet, rules: Any = None, *, progress: bool = False,
             ) -> tuple[Ranks, dict[str, Any]]:
    """Ranks, and the alert figures at the rules' alert threshold with the whole curve.

    The ranks order every candidate, as the peers do: the matched sellers by score, then the
    sellers the rules do not match for want of evidence of the work, by their priors (a buyer
    never sees those; `matched_winners` says how many winners are matched at all). A seller a
    hard filter removes is not ranked: a winner left out counts as a miss."""
    from dataclasses import replace

    from matcher import Matcher, Rules

    active = rules if rules is not None else Rules()
    matcher = Matcher(active).fit(evalset.sellers)
    everyone = matcher.with_rules(replace(active, require_evidence=False,
                                          shortlist_threshold=0.0))
    top_k = max(len(evalset.sellers), 1)
    ranks: Ranks = []
    scores: list[list[float]] = []
    winners: list[float | None] = []
    for query in _progress(evalset.queries, "ours", progress):
        matches = matcher.match(query.brief, top_k=top_k)
        order = [m.seller_id for m in matches]
        seen = set(order)
        order += [m.seller_id for m in everyone.match(query.brief, top_k=top_k)
                  if m.seller_id not in seen]
        ranks.append(rank_of(order, query.relevant))
        scores.append([m.score for m in matches])
        winners.append(next((m.score for m in matches if m.seller_id == query.relevant), None))
    n = len(evalset.sellers)
    threshold = active.alert_threshold
    alerts = {
        "alert_threshold": threshold,
        "alert_volume": round(alert_volume(scores, n, threshold), 4),
        "alert_recall": round(alert_recall(winners, threshold), 4),
        "matched_winners": round(alert_recall(winners, 0.0), 4),
        "alert_curve": [
            {"threshold": t, "alert_volume": round(alert_volume(scores, n, t), 4),
             "alert_recall": round(alert_recall(winners, t), 4)} for t in CURVE],
    }
    return ranks, alerts


def fit_split_date(opps: Sequence[Opportunity], split: date) -> date:
    """The date that leaves about half of the awards before `split` on each side of it: the
    earlier half builds profiles, the later half are the training queries."""
    return _half_date([o.published_at for o in opps if o.awarded and o.published_at], split)


def _half_date(award_dates: Sequence[date], split: date) -> date:
    dates = sorted(d for d in award_dates if d < split)
    if len(dates) < 4:
        raise EvalError(f"too few awards before {split} to fit on ({len(dates)})")
    return dates[len(dates) // 2]


@dataclass
class EvalSource:
    """Past outcomes from one source: `build(split, until)` gives the evaluation set (profiles
    before `split`, queries from it until `until`); `award_dates` place the fitting split."""

    build: Callable[[date, date | None], EvalSet]
    award_dates: list[date]
    errors: list[str] = field(default_factory=list)  # bad rows or releases, one line each


def opportunities_source(path: str) -> EvalSource:
    opps, errors = read_opportunities(path)
    return EvalSource(
        build=lambda split, until: build_eval_set(opps, split, until),
        award_dates=[o.published_at for o in opps if o.awarded and o.published_at],
        errors=[f"{path}: line {e.line}: {e.message}" for e in errors],
    )


def ocds_source(path: str) -> EvalSource:
    awards, errors = read_ocds(path)
    return EvalSource(
        build=lambda split, until: build_ocds_eval_set(awards, split, until),
        award_dates=[a.date for a in awards],
        errors=[f"{path}: {e}" for e in errors],
    )


def db_source() -> EvalSource:
    """The service's own awards (recorded through the API or imported), as opportunities."""
    from marketplace.awards_db import AwardsDbError, read_awards

    try:
        opps, errors = read_awards()
    except AwardsDbError as exc:
        raise EvalError(str(exc)) from exc
    return EvalSource(
        build=lambda split, until: build_eval_set(opps, split, until),
        award_dates=[o.published_at for o in opps if o.awarded and o.published_at],
        errors=[f"database: {e.line}: {e.message}" for e in errors],
    )


def load_source(args: argparse.Namespace) -> EvalSource:
    """The one outcome source the command line names (argparse makes them exclusive)."""
    if getattr(args, "from_db", False):
        return db_source()
    if getattr(args, "ocds", None):
        return ocds_source(args.ocds)
    if getattr(args, "opportunities", None):
        return opportunities_source(args.opportunities)
    raise EvalError("give one of --opportunities CSV or --ocds FILE")


async def _postgres_ranks(evalset: EvalSet, progress: bool) -> dict[str, Ranks]:
    from config.settings import Settings
    from models.db import connect

    settings = Settings.from_env()
    if settings.database_url:
        conn = await connect(settings.database_url)
        try:
            return await postgres_fts_ranks(conn, evalset.sellers, evalset.queries,
                                            progress=progress)
        finally:
            await conn.close()
    from marketplace.embedded import EmbeddedServices

    with tempfile.TemporaryDirectory(prefix="marketplace-eval-") as tmp:
        services = EmbeddedServices(Path(tmp))
        url, _ = await asyncio.to_thread(services.start)
        try:
            conn = await connect(url)
            try:
                return await postgres_fts_ranks(conn, evalset.sellers, evalset.queries,
                                                progress=progress)
            finally:
                await conn.close()
        finally:
            await asyncio.to_thread(services.stop)


def _timed(results: dict[str, Any], timings: dict[str, float], key: str,
           run: Callable[[], Ranks | tuple[Ranks, dict[str, Any]]]) -> None:
    started = time.perf_counter()
    got = run()
    timings[key] = time.perf_counter() - started
    ranks, extra = got if isinstance(got, tuple) else (got, {})
    results[key] = {**summarise(ranks, results["n_candidates"]), **extra}


def evaluate(
    opps: Sequence[Opportunity], split: date, **options: Any
) -> dict[str, Any]:
    """Every ranker on one split of opportunity data (see `evaluate_set`)."""
    return evaluate_set(build_eval_set(opps, split), split, **options)


def evaluate_set(
    evalset: EvalSet,
    split: date,
    *,
    rules: Any = None,
    fitted_rules: Any = None,
    peers: bool = True,
    include_ours: bool = True,
    progress: bool = False,
    ours: Callable[[EvalSet, Any], Ranks] | None = None,
) -> dict[str, Any]:
    """Every ranker on one evaluation set. `ours` replaces our ranker (tests without a
    matcher)."""
    def default_ours(es: EvalSet, r: Any) -> tuple[Ranks, dict[str, Any]]:
        return ours_run(es, r, progress=progress)

    rank_ours: Callable[[EvalSet, Any], Ranks | tuple[Ranks, dict[str, Any]]] = (
        ours or default_ours)
    results: dict[str, Any] = {
        "n_queries": len(evalset.queries),
        "n_candidates": len(evalset.sellers),
        "split_date": split.isoformat(),
    }
    timings: dict[str, float] = {}
    if include_ours:
        _timed(results, timings, "ours", lambda: rank_ours(evalset, rules))
    if fitted_rules is not None:
        _timed(results, timings, "ours_fitted", lambda: rank_ours(evalset, fitted_rules))
    if peers:
        _timed(results, timings, "bm25", lambda: bm25_ranks(
            evalset.sellers, evalset.queries, progress=progress))
        started = time.perf_counter()
        pg = asyncio.run(_postgres_ranks(evalset, progress))
        timings["postgres"] = time.perf_counter() - started  # includes server start-up
        for key, ranks in pg.items():
            results[key] = summarise(ranks, results["n_candidates"])
    results["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    return results


def format_table(results: dict[str, Any]) -> str:
    lines = [
        f"split {results['split_date']}: {results['n_queries']} queries,"
        f" {results['n_candidates']} candidate sellers",
        f"{'ranker':<28}{'n':>5}" + "".join(f"{m:>11}" for m in METRICS),
    ]
    for key in ROW_ORDER:
        row = results.get(key)
        if row is None:
            continue
        lines.append(
            f"{LABELS[key]:<28}{row['n_queries']:>5}"
            + "".join(f"{row[m]:>11.4f}" if m in row else f"{'-':>11}" for m in METRICS)
        )
    for key in ("ours", "ours_fitted"):
        row = results.get(key)
        if row is None or "alert_curve" not in row:
            continue
        lines.append(
            f"{LABELS[key]}: alert threshold {row['alert_threshold']:.2f} reaches"
            f" {row['alert_volume']:.1%} of the candidates (alert_volume) and"
            f" {row['alert_recall']:.1%} of the winners (alert_recall);"
            f" {row['matched_winners']:.1%} of the winners are matched at all")
        lines.append("  alert curve (threshold: volume / recall): " + ", ".join(
            f"{p['threshold']:.2f}: {p['alert_volume']:.2f}/{p['alert_recall']:.2f}"
            for p in row["alert_curve"]))
    timings = results.get("seconds") or {}
    if timings:
        lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    return "\n".join(lines)


def _matcher_available() -> bool:
    try:
        from matcher import Matcher, Rules  # noqa: F401
    except ImportError:
        return False
    return True


def _load_rules(path: str | None) -> Any:
    from matcher import Rules, RulesError

    if path is None:
        return Rules()
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot read rules {path}: {exc}") from exc
    try:
        return Rules.from_dict(body)
    except RulesError as exc:
        raise EvalError(f"invalid rules in {path}: {exc}") from exc


def _fit(source: EvalSource, split: date, base: Any, out: str,
         progress: bool) -> tuple[Any, dict[str, Any]]:
    try:
        from matcher.fit import fit_rules
    except ImportError as exc:
        raise EvalError(f"--fit is not available: {exc}") from exc

    fit_split = _half_date(source.award_dates, split)
    train = source.build(fit_split, split)
    if not train.queries:
        raise EvalError(f"no training queries between {fit_split} and {split}")
    fitted = fit_rules(train, base)
    Path(out).write_text(json.dumps(fitted.to_dict(), indent=2, sort_keys=True) + "\n",
                         encoding="utf-8")
    return fitted, {"fit_split": fit_split.isoformat(), "n_train_queries": len(train.queries),
                    "out": out}


def run_eval(args: argparse.Namespace) -> int:
    progress = not getattr(args, "quiet", False)
    try:
        try:
            split = date.fromisoformat(args.split_date)
        except ValueError as exc:
            raise EvalError(f"--split-date must be YYYY-MM-DD, not {args.split_date!r}") from exc
        if args.fit and not args.out:
            raise EvalError("--fit needs --out FILE for the proposed rules")
        source = load_source(args)
        for error in source.errors:
            print(error, file=sys.stderr)
        have_ours = _matcher_available()
        if not have_ours:
            log.warning("matcher.Matcher is not available: evaluating the peers only")
        rules = _load_rules(args.rules) if have_ours else None
        fitted, fit_info = None, None
        if args.fit and have_ours:
            fitted, fit_info = _fit(source, split, rules, args.out, progress)
        results = evaluate_set(source.build(split, None), split, rules=rules, fitted_rules=fitted,
                           peers=not args.no_peers, include_ours=have_ours, progress=progress)
    except (EvalError, OutcomesFileError) as exc:
        print(f"marketplace eval: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, EvalError) else 1
    if fit_info is not None:
        results["fit"] = fit_info
    results["row_errors"] = len(source.errors)
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
        if fit_info is not None:
            print(f"fitted on queries {fit_info['fit_split']}..{split} "
                  f"({fit_info['n_train_queries']}); rules written to {fit_info['out']}")
    return 0
