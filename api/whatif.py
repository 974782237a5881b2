"""What-if preview of a candidate rule set: what would change if an admin activated it.

Nothing is sent and nothing is written: the last N published briefs are re-scored in memory with
the active rules and with the candidate (the same fitted index, `Matcher.with_rules`), and the
awarded briefs are ranked under both to compare ranking quality on real outcomes.

Matching is CPU work, so it runs in a thread, in chunks, each under the live index's lock (the
matcher is not safe against the index's incremental updates running at the same time); between
chunks the index may take in seller changes, so one long preview never holds them back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import asyncpg

from matcher import Matcher, Rules
from matcher.metrics import rank_of, summarise
from models import briefs as briefs_repo
from models import sellers as sellers_repo
from models.types import Brief

TOP = 10  # the overlap and gained/lost sellers are about the top of the shortlist
OUTCOME_DEPTH = 100  # how deep to look for a winner's rank; deeper ranks count as a miss
_NAMES_LIMIT = 2000  # seller names looked up for display; more would only bloat the answer


CHUNK = 10  # briefs scored per lock hold


class LiveLike(Protocol):
    """What `what_if` needs of `live.LiveMatcher`."""

    @property
    def matcher(self) -> Matcher: ...

    @property
    def rules_version(self) -> int: ...


T = TypeVar("T")


async def run_locked(live: Any, fn: Callable[[Matcher], T]) -> tuple[T, int]:
    """Run `fn(live.matcher)` in a thread while the live index cannot change; return its result
    and the rules version it ran with. (LiveMatcher serialises every use of its matcher with
    one asyncio lock; a stand-in without one is used as is.)"""
    lock = getattr(live, "_lock", None)

    async def locked() -> tuple[T, int]:
        async with lock if lock is not None else contextlib.nullcontext():
            matcher, version = live.matcher, live.rules_version
            return await asyncio.to_thread(fn, matcher), version

    # Shielded: a request cancelled by its deadline must not release the lock while the thread
    # still reads the index.
    return await asyncio.shield(locked())


def _ids(matches: list[Any]) -> list[int]:
    return [int(m.seller_id) for m in matches]


def alert_volume(matcher: Matcher, matches: list[Any], brief: Brief) -> int:
    """Sellers the match job (workers.jobs.match_brief) would consider for an alert: shortlisted
    at or above the alert threshold, capped per brief. Sellers' own preferences are left out:
    the preview is about the rules."""
    rules = matcher.rules_
    above = sum(1 for m in matches if m.score >= rules.alert_threshold)
    return min(above, rules.max_alerts_per_brief)


def compare_brief(active: Matcher, candidate: Matcher, brief: Brief) -> dict[str, Any]:
    """One brief under both rule sets (pure: no I/O)."""
    depth = max(TOP, active.rules_.max_alerts_per_brief, candidate.rules_.max_alerts_per_brief)
    before = active.match(brief, top_k=depth)
    after = candidate.match(brief, top_k=depth)
    top_before, top_after = _ids(before[:TOP]), _ids(after[:TOP])
    common = set(top_before) & set(top_after)
    biggest = max(len(top_before), len(top_after))
    alerts_before = alert_volume(active, before, brief)
    alerts_after = alert_volume(candidate, after, brief)
    return {
        "brief_id": brief.id,
        "title": brief.title,
        "category": brief.category,
        "overlap": len(common),
        # Two empty shortlists agree completely.
        "overlap_ratio": round(len(common) / biggest, 4) if biggest else 1.0,
        "gained": [s for s in top_after if s not in common],
        "lost": [s for s in top_before if s not in common],
        "shortlisted_active": len(before),
        "shortlisted_candidate": len(after),
        "alerts_active": alerts_before,
        "alerts_candidate": alerts_after,
        "alerts_delta": alerts_after - alerts_before,
    }


def outcome_ranks(
    active: Matcher, candidate: Matcher, awarded: list[tuple[Brief, int]]
) -> tuple[list[int | None], list[int | None]]:
    ranks_active: list[int | None] = []
    ranks_candidate: list[int | None] = []
    for brief, winner in awarded:
        ranks_active.append(rank_of(_ids(active.match(brief, top_k=OUTCOME_DEPTH)), winner))
        ranks_candidate.append(rank_of(_ids(candidate.match(brief, top_k=OUTCOME_DEPTH)), winner))
    return ranks_active, ranks_candidate


def _total(per_brief: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(per_brief)
    alerts_active = sum(b["alerts_active"] for b in per_brief)
    alerts_candidate = sum(b["alerts_candidate"] for b in per_brief)
    return {
        "briefs": n,
        "mean_overlap": round(sum(b["overlap"] for b in per_brief) / n, 4) if n else 0.0,
        "mean_overlap_ratio": (
            round(sum(b["overlap_ratio"] for b in per_brief) / n, 4) if n else 1.0
        ),
        "briefs_changed": sum(1 for b in per_brief if b["gained"] or b["lost"]),
        "gained": sum(len(b["gained"]) for b in per_brief),
        "lost": sum(len(b["lost"]) for b in per_brief),
        "alerts_active": alerts_active,
        "alerts_candidate": alerts_candidate,
        "alerts_delta": alerts_candidate - alerts_active,
        "alerts_change_pct": (
            round(100.0 * (alerts_candidate - alerts_active) / alerts_active, 1)
            if alerts_active
            else None
        ),
    }


async def _awarded(conn: asyncpg.Connection, limit: int) -> list[tuple[Brief, int]]:
    rows = await briefs_repo.list_page(conn, status="awarded", limit=limit)
    return [
        (briefs_repo.row_to_brief(r), int(r["winner_seller_id"]))
        for r in rows
        if r["winner_seller_id"] is not None
    ]


async def _names(conn: asyncpg.Connection, ids: set[int]) -> dict[str, str]:
    if not ids:
        return {}
    sellers = await sellers_repo.load_many(conn, sorted(ids)[:_NAMES_LIMIT])
    # JSON object keys are strings; the page looks names up by str(seller_id).
    return {str(s.id): s.name for s in sellers}


async def what_if(
    pool: asyncpg.Pool,
    live_matcher: LiveLike,
    candidate: Rules,
    *,
    last_n: int = 50,
    outcomes_n: int = 500,
) -> dict[str, Any]:
    """Compare the active rules with `candidate` on the last `last_n` published briefs and on
    up to `outcomes_n` awarded briefs. JSON-able; sends and stores nothing."""
    last_n = max(0, min(int(last_n), 1000))
    async with pool.acquire() as conn:
        recent = await briefs_repo.recent_published(conn, last_n) if last_n else []
        awarded = await _awarded(conn, outcomes_n) if outcomes_n > 0 else []

    versions: set[int] = set()
    indexed = 0
    per_brief: list[dict[str, Any]] = []
    for start in range(0, len(recent), CHUNK):
        chunk = recent[start : start + CHUNK]

        def score(m: Matcher, chunk: list[Brief] = chunk) -> tuple[list[dict[str, Any]], int]:
            cand = m.with_rules(candidate)
            return [compare_brief(m, cand, b) for b in chunk], len(m)

        (found, indexed), version = await run_locked(live_matcher, score)
        per_brief += found
        versions.add(version)

    ranks_active: list[int | None] = []
    ranks_candidate: list[int | None] = []
    for start in range(0, len(awarded), CHUNK):
        part = awarded[start : start + CHUNK]

        def rank(
            m: Matcher, part: list[tuple[Brief, int]] = part
        ) -> tuple[list[int | None], list[int | None]]:
            return outcome_ranks(m, m.with_rules(candidate), part)

        (a, c), version = await run_locked(live_matcher, rank)
        ranks_active += a
        ranks_candidate += c
        versions.add(version)
    if not versions:
        versions.add(live_matcher.rules_version)

    involved = {s for b in per_brief for s in (*b["gained"], *b["lost"])}
    async with pool.acquire() as conn:
        names = await _names(conn, involved)
    return {
        "last_n": last_n,
        "active_version": max(versions),
        # An activation landing mid-preview mixes versions: say so rather than hide it.
        "active_changed_during_preview": len(versions) > 1,
        "indexed_sellers": indexed or len(live_matcher.matcher),
        "briefs": per_brief,
        "total": _total(per_brief),
        "outcomes": {
            "n_awarded": len(awarded),
            "depth": OUTCOME_DEPTH,
            "active": summarise(ranks_active),
            "candidate": summarise(ranks_candidate),
        },
        "seller_names": names,
    }
