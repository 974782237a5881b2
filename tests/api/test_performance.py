"""The public performance figures (GET /api/v1/performance, the page's CSVs) on the marketplace
of tests/outcome_seed.py, against figures computed by hand:

briefs (published at)          shortlist stored after, top 10   alerts (instant latency)
b1 2026-01-10 outcomes         60 s: alpha* 1, gamma 2 (beta* 11)  alpha sent 2 s, gamma sent 4 s,
                                                                   beta digest sent (not timed)
b2 2026-01-20 outcomes         180 s: beta* 1, delta 2            beta failed, delta sent 10 s
b3 2026-02-05 specialists      300 s: alpha* 1                    alpha sent 1 s
b4 2026-04-02 outcomes         no shortlist                       none
draft                          never counted
(* an SME; active sellers: alpha*, beta*, gamma, delta, responder; inactive: Dormant*)

responses: b1 interested (alpha), applied (beta), not for me (responder); b2 applied (delta);
b3 applied (alpha). invitations: b1 alpha*, gamma; b3 beta*. awards: b1 alpha*, b2 delta.
"""

from __future__ import annotations

import csv
import io

import asyncpg
from aiohttp.test_utils import TestClient

from tests.outcome_seed import seed

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]


async def test_figures_match_hand_computed(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    await seed(client, pool, admin)
    r = await client.get("/api/v1/performance")  # no token: public
    assert r.status == 200, await r.text()
    doc = await r.json()

    assert doc["sellers"] == {"active": 5, "sme": 2, "sme_share": 0.4}
    months = {m["month"]: m for m in doc["months"]}
    assert list(months) == MONTHS  # March has no brief: a zero row keeps the axis even
    jan, feb, mar, apr = (months[m] for m in MONTHS)
    total = doc["total"]

    assert [m["briefs_published"] for m in doc["months"]] == [2, 1, 0, 1]
    assert total["briefs_published"] == 4
    assert [m["briefs_shortlisted"] for m in doc["months"]] == [2, 1, 0, 0]
    assert jan["median_seconds_to_shortlist"] == 120.0  # 60 and 180
    assert feb["median_seconds_to_shortlist"] == 300.0
    assert mar["median_seconds_to_shortlist"] is None and apr["median_seconds_to_shortlist"] is None
    assert total["median_seconds_to_shortlist"] == 180.0  # 60, 180, 300

    assert (jan["alerts_sent"], jan["alerts_failed"]) == (4, 1)
    assert (feb["alerts_sent"], feb["alerts_failed"]) == (1, 0)
    assert (total["alerts_sent"], total["alerts_failed"]) == (5, 1)
    assert jan["median_seconds_to_deliver"] == 4.0  # 2, 4, 10: the digest is not timed
    assert feb["median_seconds_to_deliver"] == 1.0
    assert total["median_seconds_to_deliver"] == 3.0  # 1, 2, 4, 10

    assert (jan["responses_interested"], jan["responses_applied"],
            jan["responses_not_for_me"]) == (1, 2, 1)
    assert (feb["responses_interested"], feb["responses_applied"],
            feb["responses_not_for_me"]) == (0, 1, 0)
    assert (total["responses_interested"], total["responses_applied"],
            total["responses_not_for_me"]) == (1, 3, 1)

    assert [m["invitations"] for m in doc["months"]] == [2, 1, 0, 0]
    assert [m["awards"] for m in doc["months"]] == [2, 0, 0, 0]

    # SME shares: top 10 of shortlists alpha*, gamma, beta*, delta, alpha* (beta's rank 11 is
    # out): 3 of 5; invitations alpha*, gamma, beta*: 2 of 3; awards alpha*, delta: 1 of 2.
    assert (total["shortlist_top10"], total["shortlist_top10_sme"]) == (5, 3)
    assert total["shortlist_top10_sme_share"] == 0.6
    assert (total["invitations"], total["invitations_sme"]) == (3, 2)
    assert total["invitations_sme_share"] == 0.6667
    assert (total["awards"], total["awards_sme"], total["awards_sme_share"]) == (2, 1, 0.5)
    assert mar["awards_sme_share"] is None  # nothing to divide: no figure, not 0

    cats = {c["category"]: c for c in doc["categories"]}
    assert set(cats) == {"digital-outcomes", "digital-specialists"}
    outcomes, specialists = cats["digital-outcomes"], cats["digital-specialists"]
    assert outcomes["label"] == "Digital outcomes"
    assert (outcomes["briefs_published"], outcomes["briefs_shortlisted"]) == (3, 2)
    assert outcomes["median_seconds_to_shortlist"] == 120.0
    assert (outcomes["alerts_sent"], outcomes["alerts_failed"]) == (4, 1)
    assert outcomes["median_seconds_to_deliver"] == 4.0
    assert (outcomes["invitations"], outcomes["awards"]) == (2, 2)
    assert (specialists["briefs_published"], specialists["median_seconds_to_shortlist"]) == (
        1, 300.0)
    assert (specialists["responses_applied"], specialists["invitations"],
            specialists["awards"]) == (1, 1, 0)
    assert specialists["invitations_sme_share"] == 1.0

    pairs = [(row["month"], row["category"]) for row in doc["months_by_category"]]
    assert pairs == [("2026-01", "digital-outcomes"), ("2026-02", "digital-specialists"),
                     ("2026-04", "digital-outcomes")]


async def test_each_chart_has_its_csv(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    await seed(client, pool, admin)
    r = await client.get("/performance/briefs.csv")
    assert r.status == 200 and r.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows == [
        ["month", "briefs_published", "briefs_shortlisted", "median_seconds_to_shortlist"],
        ["2026-01", "2", "2", "120.0"],
        ["2026-02", "1", "1", "300.0"],
        ["2026-03", "0", "0", ""],
        ["2026-04", "1", "0", ""],
        ["all", "4", "3", "180.0"],
    ]
    r = await client.get("/performance/alerts.csv")
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[1] == ["2026-01", "4", "1", "4.0"] and rows[-1] == ["all", "5", "1", "3.0"]
    r = await client.get("/performance/categories.csv")
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[0][:4] == ["category", "label", "briefs_published", "briefs_shortlisted"]
    assert [row[0] for row in rows[1:]] == ["digital-outcomes", "digital-specialists"]
    r = await client.get("/performance/nothing.csv")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "not_found"


async def test_empty_marketplace(client: TestClient) -> None:
    r = await client.get("/api/v1/performance")
    doc = await r.json()
    assert doc["months"] == [] and doc["categories"] == []
    assert doc["total"]["briefs_published"] == 0
    assert doc["total"]["median_seconds_to_shortlist"] is None
    assert doc["sellers"] == {"active": 0, "sme": 0, "sme_share": None}
