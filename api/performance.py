"""The public performance figures: `GET /api/v1/performance` (JSON) and the CSV of each chart of
the `/performance` page (`GET /performance/{table}.csv`). No sign-in.

`document()` is the one place the figures take their public shape; the page (api.web.performance)
draws its charts and tables from the same document, so page, JSON and CSV cannot disagree.
The figures are aggregates over the whole history, recomputed at most once a minute per process
(CACHE_SECONDS): a public page must not let anyone make the database aggregate every table on
every request.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from api.errors import NotFound
from api.routing import Ctx, Operation, json_response
from models import performance

CACHE_SECONDS = 60.0
# Set up empty by create_app (an application's state is fixed once it starts).
CACHE: web.AppKey[dict[str, Any]] = web.AppKey("performance_cache", dict)

GROUPING = (
    "Each month and category counts what happened to the briefs published in that month and "
    "category: their shortlists, alerts, seller responses, invitations and award."
)

# The figures of one group (a month, a category, both, or everything), in CSV column order.
FIELDS = (
    "briefs_published",
    "briefs_shortlisted",
    "median_seconds_to_shortlist",
    "alerts_sent",
    "alerts_failed",
    "median_seconds_to_deliver",
    "responses_interested",
    "responses_applied",
    "responses_not_for_me",
    "invitations",
    "awards",
    "shortlist_top10",
    "shortlist_top10_sme",
    "shortlist_top10_sme_share",
    "invitations_sme",
    "invitations_sme_share",
    "awards_sme",
    "awards_sme_share",
)

# The CSV behind each chart: its columns beside the group column(s).
TABLES: dict[str, tuple[str, ...]] = {
    "briefs": ("briefs_published", "briefs_shortlisted", "median_seconds_to_shortlist"),
    "alerts": ("alerts_sent", "alerts_failed", "median_seconds_to_deliver"),
    "responses": ("responses_interested", "responses_applied", "responses_not_for_me"),
    "outcomes": ("invitations", "awards"),
    "sme": (
        "shortlist_top10", "shortlist_top10_sme", "shortlist_top10_sme_share",
        "invitations", "invitations_sme", "invitations_sme_share",
        "awards", "awards_sme", "awards_sme_share",
    ),
    "categories": FIELDS,
    "months-by-category": FIELDS,
}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row.get(name) for name in FIELDS if not name.endswith("_share")}
    for name in performance.MEDIANS:
        out[name] = _seconds(row[name])
    out["shortlist_top10_sme_share"] = _share(row["shortlist_top10_sme"], row["shortlist_top10"])
    out["invitations_sme_share"] = _share(row["invitations_sme"], row["invitations"])
    out["awards_sme_share"] = _share(row["awards_sme"], row["awards"])
    return {name: out[name] for name in FIELDS}


def _month_range(months: list[str]) -> list[str]:
    """Every month from the first to the last, so a chart's bars are evenly spaced in time."""
    if not months:
        return []
    year, month = map(int, months[0].split("-"))
    end = months[-1]
    out = []
    while True:
        label = f"{year:04d}-{month:02d}"
        out.append(label)
        if label >= end:
            return out
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def build(figures: performance.Figures, generated_at: datetime) -> dict[str, Any]:
    labels = figures.category_labels
    return {
        "generated_at": generated_at.isoformat(),
        "grouping": GROUPING,
        "sellers": {
            "active": figures.sellers_total,
            "sme": figures.sellers_sme,
            "sme_share": _share(figures.sellers_sme, figures.sellers_total),
        },
        "total": _metrics(figures.row(None, None)),
        "months": [
            {"month": m, **_metrics(figures.row(m, None))} for m in _month_range(figures.months)
        ],
        "categories": [
            {"category": c, "label": labels.get(c, c), **_metrics(figures.row(None, c))}
            for c in figures.categories
        ],
        "months_by_category": [
            {"month": m, "category": c, **_metrics(figures.row(m, c))}
            for (m, c) in sorted(k for k in figures.groups if k[0] is not None and k[1] is not None)
        ],
    }


async def document(app: web.Application, conn: asyncpg.Connection) -> dict[str, Any]:
    """The public figures, from this process's cache when they are less than a minute old."""
    cache = app[CACHE]
    now = time.monotonic()
    if "doc" in cache and now - cache["at"] < CACHE_SECONDS:
        return dict(cache["doc"])
    doc = build(await performance.figures(conn), datetime.now(UTC))
    cache.update(at=now, doc=doc)
    return doc


def _cell(value: Any) -> Any:
    return "" if value is None else value


def table_csv(doc: dict[str, Any], name: str) -> str:
    """The CSV of one chart or table of the page (see TABLES)."""
    columns = TABLES[name]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if name == "categories":
        writer.writerow(["category", "label", *columns])
        for row in doc["categories"]:
            writer.writerow([row["category"], row["label"], *(_cell(row[c]) for c in columns)])
    elif name == "months-by-category":
        writer.writerow(["month", "category", *columns])
        for row in doc["months_by_category"]:
            writer.writerow([row["month"], row["category"], *(_cell(row[c]) for c in columns)])
    else:
        writer.writerow(["month", *columns])
        for row in doc["months"]:
            writer.writerow([row["month"], *(_cell(row[c]) for c in columns)])
        writer.writerow(["all", *(_cell(doc["total"][c]) for c in columns)])
    return buf.getvalue()


_PUBLIC_CACHE = {"Cache-Control": f"public, max-age={int(CACHE_SECONDS)}"}


async def get_performance(ctx: Ctx) -> web.StreamResponse:
    return json_response(await document(ctx.app, ctx.conn), headers=_PUBLIC_CACHE)


async def get_performance_csv(ctx: Ctx) -> web.StreamResponse:
    name = ctx.request.match_info["table"]
    if name not in TABLES:
        raise NotFound(f"no such table: the tables are {', '.join(TABLES)}")
    doc = await document(ctx.app, ctx.conn)
    return web.Response(
        text=table_csv(doc, name),
        content_type="text/csv",
        charset="utf-8",
        headers={**_PUBLIC_CACHE, "Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


_DOC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["generated_at", "grouping", "sellers", "total", "months", "categories",
                 "months_by_category"],
}

ROUTES = [
    Operation(
        "GET", "/api/v1/performance", get_performance,
        "Read the public performance figures", "open data",
        roles=None, response=_DOC_SCHEMA,
        description="Per month and per category of the briefs published: briefs, time to the "
        "stored shortlist, alerts, seller responses, invitations, awards and SME shares. "
        "No sign-in.",
    ),
    Operation(
        "GET", r"/performance/{table:[a-z-]+}.csv", get_performance_csv,
        "Download one table of the performance page as CSV", "open data",
        roles=None, response={"type": "string"}, content_type="text/csv", errors=(404,),
    ),
]
