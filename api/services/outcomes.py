"""Outcomes, used: the funnel per rules version and category (matched, alerted, interested,
not for me with reasons, applied, invited, awarded, and the SME share at each step), and rule
weights fitted on the service's recorded outcomes (matcher.outcome_fit says how each outcome
counts), proposed for the what-if preview, never activated here."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from api.validation import Body, CategoryId, Query, QueryDate
from matcher import Rules, RulesError
from matcher.outcome_fit import Labelled, fit_from_outcomes
from models import briefs as briefs_repo
from models import outcomes as outcomes_repo
from models import rules as rules_repo
from models import sellers as sellers_repo
from models.outcomes import STEPS
from models.types import Seller

REASONS = ("skills", "size", "location", "rate", "timing", "other")
FIT_BRIEFS = 500  # the most recent briefs with outcomes a fit learns from


class OutcomesQuery(Query):
    rules_version: int | None = Field(
        None, ge=0, le=2**31 - 1, description="briefs whose stored shortlist used this version"
    )
    category: CategoryId | None = None
    since: QueryDate | None = Field(None, description="briefs published on or after this date")


class Step(BaseModel):
    step: str
    count: int = Field(description="(brief, seller) pairs at this step")
    sme: int = Field(description="of them, sellers that are SMEs")
    sme_share: float | None = Field(description="sme / count; null when count is 0")


class FunnelGroup(BaseModel):
    model_config = ConfigDict(extra="allow")
    rules_version: int | None = Field(description="null: briefs without a stored shortlist")
    category: str
    briefs: int
    steps: list[Step]
    not_for_me_reasons: dict[str, int]


class OutcomesOut(BaseModel):
    filters: dict[str, Any]
    total: FunnelGroup
    groups: list[FunnelGroup]


class FitIn(Body):
    briefs: int = Field(FIT_BRIEFS, ge=1, le=5000, description="most recent briefs with outcomes")


class FitOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    base_version: int
    rules: dict[str, Any]
    learnt_from: dict[str, int]


def _group(rules_version: int | None, category: str, briefs: int,
           rows: list[asyncpg.Record]) -> dict[str, Any]:
    counts = {s: [0, 0] for s in STEPS}
    reasons = {r: 0 for r in REASONS}
    unstated = 0
    for r in rows:
        counts[r["step"]][0] += r["n"]
        counts[r["step"]][1] += r["sme"]
        if r["step"] == "not_for_me":
            if r["reason"] in reasons:
                reasons[r["reason"]] += r["n"]
            else:
                unstated += r["n"]
    if unstated:
        reasons["not stated"] = unstated
    return {
        "rules_version": rules_version,
        "category": category,
        "briefs": briefs,
        "steps": [
            {"step": s, "count": n, "sme": sme,
             "sme_share": round(sme / n, 4) if n else None}
            for s, (n, sme) in counts.items()
        ],
        "not_for_me_reasons": reasons,
    }


async def funnel(
    conn: asyncpg.Connection,
    *,
    rules_version: int | None = None,
    category: str | None = None,
    since: date | None = None,
) -> dict[str, Any]:
    """The funnel, per (rules version, category) and in total (shared by the API and the admin
    page)."""
    steps, briefs = await outcomes_repo.funnel_rows(
        conn, since=since, category=category, rules_version=rules_version
    )
    keys = sorted(
        {(r["rules_version"], r["category"]) for r in [*steps, *briefs]},
        key=lambda k: (k[0] is None, -(k[0] or 0), k[1]),
    )
    brief_count = {(r["rules_version"], r["category"]): r["n"] for r in briefs}
    groups = [
        _group(v, c, brief_count.get((v, c), 0),
               [r for r in steps if (r["rules_version"], r["category"]) == (v, c)])
        for v, c in keys
    ]
    total = _group(rules_version, category or "", sum(brief_count.values()), steps)
    total["category"] = category or "all"
    return {
        "filters": {
            "rules_version": rules_version,
            "category": category,
            "since": since.isoformat() if since else None,
        },
        "total": total,
        "groups": groups,
    }


def _without(seller: Seller, brief_ids: set[int]) -> Seller:
    return replace(seller, case_studies=[
        cs for cs in seller.case_studies if cs.brief_id is None or cs.brief_id not in brief_ids
    ])


async def propose_rules(pool: asyncpg.Pool, *, briefs: int = FIT_BRIEFS,
                        ) -> tuple[int, Rules, dict[str, int]]:
    """(base version, proposed rules, what was learnt from): the active rules with weights
    fitted on the recorded outcomes. Raises ValueError when there is nothing to learn from."""
    async with pool.acquire() as conn:
        active = await rules_repo.get_active(conn)
        rows = await outcomes_repo.labelled_briefs(conn, limit=briefs)
        items = []
        for r in rows:
            responses = {int(k): (v[0], v[1]) for k, v in (r["responses"] or {}).items()}
            winner = r["winner_seller_id"] if r["status"] == "awarded" else None
            candidates = list(dict.fromkeys(
                [*r["shortlist"], *r["invited"], *responses, *([winner] if winner else [])]
            ))
            items.append(Labelled(briefs_repo.row_to_brief(r), candidates, winner, responses))
        ids = sorted({s for item in items for s in item.candidates})
        sellers = await sellers_repo.load_many(conn, ids)
    version, base = 0, Rules()
    if active is not None:
        try:
            version, base = active[0], Rules.from_dict(active[1])
        except RulesError:
            pass  # a stored body older than the code: fit on the defaults
    learnt = {item.brief.id for item in items}
    # The outcomes being learnt must not explain themselves: an award is past work of its
    # winner (and would give it the "worked for this buyer" and wins signals for that brief).
    profiles = [_without(s, learnt) for s in sellers]
    rules, info = await asyncio.to_thread(fit_from_outcomes, profiles, items, base)
    return version, rules, info


