"""The public performance dashboard, `/performance`: no sign-in, no script. Charts and tables are
drawn from the document `GET /api/v1/performance` returns (api.performance.document), and each
chart links the CSV of its numbers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api import performance
from api.keys import POOL
from api.web import chart
from api.web.session import render


def _months(doc: dict[str, Any]) -> list[str]:
    return [m["month"] for m in doc["months"]]


def _series(doc: dict[str, Any], *fields: tuple[str, str]) -> list[chart.Series]:
    return [chart.Series(name, [m[key] for m in doc["months"]]) for key, name in fields]


def _minutes(values: list[Any]) -> list[float | None]:
    return [None if v is None else v / 60 for v in values]


def charts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The page's charts, in order: each with its figure, its table's columns and its CSV."""
    months = _months(doc)
    month_axis = "month the briefs were published"
    out: list[dict[str, Any]] = []

    def add(key: str, heading: str, figure: chart.BarChart, csv: str,
            columns: list[tuple[str, str, str]]) -> None:
        # A chart without columns of its own joins the section before it (same table, same CSV).
        if not columns:
            out[-1]["figures"].append(figure)
            return
        out.append({"key": key, "heading": heading, "figures": [figure], "csv": csv,
                    "columns": columns})

    add("briefs", "Briefs published", chart.grouped_bars(
        chart_id="chart-briefs", title="Briefs published per month",
        description="Bar chart: the number of briefs published in each month. The table "
        "below gives the same numbers.",
        groups=months, series=_series(doc, ("briefs_published", "briefs published")),
        x_label=month_axis, y_label="briefs",
    ), "briefs", [("briefs_published", "Briefs published", "count"),
                  ("briefs_shortlisted", "With a stored shortlist", "count"),
                  ("median_seconds_to_shortlist", "Median time to shortlist", "duration")])
    add("shortlist-time", "Time from publishing to the stored shortlist", chart.grouped_bars(
        chart_id="chart-shortlist-time",
        title="Median minutes from publishing a brief to its stored shortlist, per month",
        description="Bar chart: for the briefs published in each month that have a stored "
        "shortlist, the median time in minutes from publishing to the shortlist being stored. "
        "The table below gives the same numbers.",
        groups=months,
        series=[chart.Series("median minutes", _minutes(
            [m["median_seconds_to_shortlist"] for m in doc["months"]]))],
        x_label=month_axis, y_label="minutes", fmt="{:.1f} min",
    ), "briefs", [])
    add("alerts", "Alerts sent and failed", chart.grouped_bars(
        chart_id="chart-alerts", title="Alerts sent and failed per month",
        description="Bar chart, two bars a month: alerts sent (blue) and alerts that failed "
        "after their last try (orange) for the briefs published in each month. The table "
        "below gives the same numbers.",
        groups=months,
        series=_series(doc, ("alerts_sent", "sent"), ("alerts_failed", "failed")),
        x_label=month_axis, y_label="alerts",
    ), "alerts", [("alerts_sent", "Sent", "count"), ("alerts_failed", "Failed", "count"),
                  ("median_seconds_to_deliver", "Median delivery time (instant alerts)",
                   "duration")])
    add("delivery", "Delivery time of instant alerts", chart.grouped_bars(
        chart_id="chart-delivery",
        title="Median seconds from an instant alert being written to it being sent, per month",
        description="Bar chart: the median delivery time in seconds of the instant (e-mail and "
        "webhook) alerts sent for the briefs published in each month; daily digests are left "
        "out because they wait for their hour by design. The table below gives the same "
        "numbers.",
        groups=months,
        series=[chart.Series("median seconds",
                             [m["median_seconds_to_deliver"] for m in doc["months"]])],
        x_label=month_axis, y_label="seconds", fmt="{:.1f} s",
    ), "alerts", [])
    add("responses", "Seller responses", chart.grouped_bars(
        chart_id="chart-responses", title="Seller responses per month",
        description="Bar chart, three bars a month: responses 'interested' (blue), 'applied' "
        "(orange) and 'not for me' (green) to the briefs published in each month. The table "
        "below gives the same numbers.",
        groups=months,
        series=_series(doc, ("responses_interested", "interested"),
                       ("responses_applied", "applied"),
                       ("responses_not_for_me", "not for me")),
        x_label=month_axis, y_label="responses",
    ), "responses", [("responses_interested", "Interested", "count"),
                     ("responses_applied", "Applied", "count"),
                     ("responses_not_for_me", "Not for me", "count")])
    add("outcomes", "Invitations and awards", chart.grouped_bars(
        chart_id="chart-outcomes", title="Invitations and awards per month",
        description="Bar chart, two bars a month: sellers invited (blue) and briefs awarded "
        "(orange), for the briefs published in each month. The table below gives the same "
        "numbers.",
        groups=months, series=_series(doc, ("invitations", "invitations"), ("awards", "awards")),
        x_label=month_axis, y_label="count",
    ), "outcomes", [("invitations", "Invitations", "count"), ("awards", "Awards", "count")])
    total, sellers = doc["total"], doc["sellers"]
    steps = ["active sellers", "shortlists (top 10)", "invitations", "awards"]
    shares = [sellers["sme_share"], total["shortlist_top10_sme_share"],
              total["invitations_sme_share"], total["awards_sme_share"]]
    add("sme", "Small and medium-sized enterprises (SMEs)", chart.grouped_bars(
        chart_id="chart-sme", title="SME share of active sellers, top-10 shortlists, "
        "invitations and awards",
        description="Bar chart of four percentages: the share of SMEs among active sellers, "
        "among the sellers in the top 10 of every stored shortlist, among invited sellers and "
        "among winners. The table below gives the same numbers with their counts.",
        groups=steps,
        series=[chart.Series("SME share", [None if s is None else s * 100 for s in shares])],
        x_label="", y_label="per cent SMEs", fmt="{:.0f}%", y_max=100.0,
    ), "sme", [("shortlist_top10_sme_share", "SME share of the top 10 of shortlists", "share"),
               ("invitations_sme_share", "SME share of invitations", "share"),
               ("awards_sme_share", "SME share of awards", "share")])
    return out


async def performance_page(request: web.Request) -> web.StreamResponse:
    # The page is the same for everyone (no account, no cookie read), so shared caches may
    # keep it for the minute the figures are cached anyway.
    async with request.app[POOL].acquire() as conn:
        doc = await performance.document(request.app, conn)
    total, sellers = doc["total"], doc["sellers"]
    sme_rows = [
        ("Active sellers", sellers["sme"], sellers["active"], sellers["sme_share"]),
        ("Sellers in the top 10 of stored shortlists", total["shortlist_top10_sme"],
         total["shortlist_top10"], total["shortlist_top10_sme_share"]),
        ("Invited sellers", total["invitations_sme"], total["invitations"],
         total["invitations_sme_share"]),
        ("Winners", total["awards_sme"], total["awards"], total["awards_sme_share"]),
    ]
    response = render(request, "performance.html", {
        "doc": doc, "charts": charts(doc), "sme_rows": sme_rows,
        "cache_seconds": int(performance.CACHE_SECONDS),
    })
    response.headers["Cache-Control"] = f"public, max-age={int(performance.CACHE_SECONDS)}"
    return response
