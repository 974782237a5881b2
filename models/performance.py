"""The public performance figures: what happened to the briefs published in each month and
category. All of it is aggregate counts and medians; no row names a seller, and nothing here
reads a draft, a contact detail or a pending claim.

Every figure is grouped by the brief it concerns (a cohort: the alerts, responses, invitations
and award of a brief count in the month and category the brief was published in), so a month's
row reads "of the briefs published that month, ...". Each query groups by the grouping sets
(month, category), (month), (category) and (), so totals and medians are computed by
PostgreSQL over the right rows, never averaged from averages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Published (or since closed, awarded, ...) briefs: a draft never counts.
_PUBLISHED = """
    SELECT b.id, b.category,
           to_char(date_trunc('month', b.published_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
           b.published_at, b.status, b.winner_seller_id
    FROM briefs b
    WHERE b.published_at IS NOT NULL AND b.status <> 'draft'
"""

_GROUPS = "GROUP BY GROUPING SETS ((pb.month, pb.category), (pb.month), (pb.category), ())"

# One row per brief with what the stored shortlist, the responses and the invitations say about
# it, aggregated per group. The shortlist's stored time is its first row's (the job stores a
# large shortlist in waves; the first wave is when the buyer can read it).
_BRIEF_FIGURES = f"""
WITH pb AS ({_PUBLISHED}),
sl AS (
    SELECT m.brief_id, min(m.created_at) AS stored_at,
           count(*) FILTER (WHERE m.rank <= 10) AS top10,
           count(*) FILTER (WHERE m.rank <= 10 AND s.sme) AS top10_sme
    FROM matches m JOIN sellers s ON s.id = m.seller_id
    GROUP BY m.brief_id
),
rs AS (
    SELECT brief_id,
           count(*) FILTER (WHERE response = 'interested') AS interested,
           count(*) FILTER (WHERE response = 'applied') AS applied,
           count(*) FILTER (WHERE response = 'not_for_me') AS not_for_me
    FROM responses GROUP BY brief_id
),
inv AS (
    SELECT i.brief_id, count(*) AS n, count(*) FILTER (WHERE s.sme) AS sme
    FROM invitations i JOIN sellers s ON s.id = i.seller_id
    GROUP BY i.brief_id
)
SELECT pb.month, pb.category,
       GROUPING(pb.month) AS all_months, GROUPING(pb.category) AS all_categories,
       count(*) AS briefs_published,
       count(sl.stored_at) AS briefs_shortlisted,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM sl.stored_at - pb.published_at)
       ) AS median_seconds_to_shortlist,
       coalesce(sum(sl.top10), 0) AS shortlist_top10,
       coalesce(sum(sl.top10_sme), 0) AS shortlist_top10_sme,
       coalesce(sum(rs.interested), 0) AS responses_interested,
       coalesce(sum(rs.applied), 0) AS responses_applied,
       coalesce(sum(rs.not_for_me), 0) AS responses_not_for_me,
       coalesce(sum(inv.n), 0) AS invitations,
       coalesce(sum(inv.sme), 0) AS invitations_sme,
       count(w.id) AS awards,
       count(w.id) FILTER (WHERE w.sme) AS awards_sme
FROM pb
LEFT JOIN sl ON sl.brief_id = pb.id
LEFT JOIN rs ON rs.brief_id = pb.id
LEFT JOIN inv ON inv.brief_id = pb.id
LEFT JOIN sellers w ON pb.status = 'awarded' AND w.id = pb.winner_seller_id
{_GROUPS}
"""

# Alerts of every kind (match, invitation, award). The delivery latency is from the alert being
# written to it being sent, for instant alerts only: a daily digest waits for its hour by design.
_ALERT_FIGURES = f"""
WITH pb AS ({_PUBLISHED})
SELECT pb.month, pb.category,
       GROUPING(pb.month) AS all_months, GROUPING(pb.category) AS all_categories,
       count(*) FILTER (WHERE a.status = 'sent') AS alerts_sent,
       count(*) FILTER (WHERE a.status = 'failed') AS alerts_failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.sent_at - a.created_at))
           FILTER (WHERE a.status = 'sent' AND a.channel <> 'digest' AND a.sent_at IS NOT NULL)
           AS median_seconds_to_deliver
FROM pb JOIN alerts a ON a.brief_id = pb.id
{_GROUPS}
"""

_SELLERS = "SELECT count(*) AS total, count(*) FILTER (WHERE sme) AS sme FROM sellers WHERE active"

_LABELS = "SELECT id, label FROM categories"

COUNTS = (
    "briefs_published", "briefs_shortlisted", "shortlist_top10", "shortlist_top10_sme",
    "responses_interested", "responses_applied", "responses_not_for_me", "invitations",
    "invitations_sme", "awards", "awards_sme", "alerts_sent", "alerts_failed",
)
MEDIANS = ("median_seconds_to_shortlist", "median_seconds_to_deliver")


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTS, 0), **dict.fromkeys(MEDIANS)}


@dataclass
class Figures:
    """Rows keyed by (month, category); None stands for "every month" / "every category"."""

    groups: dict[tuple[str | None, str | None], dict[str, Any]] = field(default_factory=dict)
    sellers_total: int = 0
    sellers_sme: int = 0
    category_labels: dict[str, str] = field(default_factory=dict)

    def row(self, month: str | None, category: str | None) -> dict[str, Any]:
        return self.groups.get((month, category)) or _empty()

    @property
    def months(self) -> list[str]:
        return sorted({m for m, c in self.groups if m is not None and c is None})

    @property
    def categories(self) -> list[str]:
        return sorted({c for m, c in self.groups if c is not None and m is None})


def _key(row: asyncpg.Record) -> tuple[str | None, str | None]:
    return (
        None if row["all_months"] else row["month"],
        None if row["all_categories"] else row["category"],
    )


async def figures(conn: asyncpg.Connection) -> Figures:
    out = Figures()
    for row in await conn.fetch(_BRIEF_FIGURES):
        group = out.groups.setdefault(_key(row), _empty())
        for name in row.keys():  # a Record iterates over its values, not its names
            if name in COUNTS:
                group[name] = int(row[name])
        group["median_seconds_to_shortlist"] = row["median_seconds_to_shortlist"]
    for row in await conn.fetch(_ALERT_FIGURES):
        group = out.groups.setdefault(_key(row), _empty())
        group["alerts_sent"] = int(row["alerts_sent"])
        group["alerts_failed"] = int(row["alerts_failed"])
        group["median_seconds_to_deliver"] = row["median_seconds_to_deliver"]
    sellers = await conn.fetchrow(_SELLERS)
    out.sellers_total = int(sellers["total"])
    out.sellers_sme = int(sellers["sme"])
    out.category_labels = {r["id"]: r["label"] for r in await conn.fetch(_LABELS)}
    return out
