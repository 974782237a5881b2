"""Fitting rule weights on recorded outcomes: how each outcome counts (pure), and the API that
proposes the fitted rules (admins only, 422 while there is nothing to learn from)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from matcher import Matcher, Rules
from matcher.outcome_fit import Labelled, fit_from_outcomes, graded_pairs, grades
from matcher.rules import SIGNALS
from models import matches
from models.types import Brief, CaseStudy, Seller
from tests.api.factories import User
from tests.api.test_errors import error_of

SUMMARY = "Python data services and cloud hosting for government"


def test_grades_rank_awards_over_applications_over_silence_over_not_for_me() -> None:
    item = Labelled(Brief(id=1, title="x"), candidates=[1, 2, 3, 4, 5], winner=1, responses={
        2: ("applied", None), 3: ("not_for_me", "skills"), 4: ("not_for_me", "timing"),
        5: ("interested", None), 6: ("applied", None)})
    # 6 applied without being shortlisted: it still counts; "timing" says nothing of fit.
    assert grades(item) == {1: 3, 2: 2, 3: 0, 4: 1, 5: 1, 6: 2}


def _sellers() -> list[Seller]:
    # Identical text; only past work for the buyer tells them apart.
    return [
        Seller(id=i, name=f"S{i}", summary=SUMMARY, skills=["python"],
               case_studies=[CaseStudy(title="Earlier work", organisation="Home Office")]
               if i % 2 else [])
        for i in range(1, 9)
    ]


def _items(n: int) -> list[Labelled]:
    items = []
    for b in range(n):
        winner = 1 + 2 * (b % 4)  # always one with past work for the buyer
        items.append(Labelled(
            Brief(id=100 + b, title="Python hosting", summary=SUMMARY,
                  organisation="Home Office"),
            candidates=list(range(1, 9)), winner=winner,
            responses={2 + 2 * (b % 4): ("not_for_me", "skills")}))
    return items


def test_graded_pairs_compare_every_differently_graded_pair() -> None:
    matcher = Matcher(Rules()).fit(_sellers())
    item = _items(1)[0]  # winner 1 (grade 3), seller 2 said not for me (0), six others (1)
    x, y, used = graded_pairs(matcher, [item])
    # 1 over 2, 1 over each of the six, each of the six over 2: 13 pairs and their mirrors.
    assert used == 1 and len(y) == 26 and y.sum() == 13
    buyer = SIGNALS.index("buyer")
    assert x[y == 1][:, buyer].max() > 0


def test_fit_moves_weight_to_the_signal_outcomes_follow() -> None:
    base = Rules()
    rules, info = fit_from_outcomes(_sellers(), _items(12), base)
    assert info["briefs"] == 12

    def share(r: Rules) -> float:
        return r.weights["buyer"] / sum(r.weights.values())

    assert share(rules) > share(base)
    assert rules.alert_threshold == base.alert_threshold  # only the weights are learnt


async def _record(client: TestClient, admin: dict[str, str], buyer: User, pool: asyncpg.Pool,
                  brief_id: int, shortlist: list[int], winner: int, not_for_me: int) -> None:
    """The stored shortlist as the match job writes it; the answer and the award through the
    API (the award also makes the work the winner's past work: the fit must not learn it back).
    """
    async with pool.acquire() as conn:
        await matches.replace_shortlist(conn, brief_id, [
            {"seller_id": s, "score": 0.5, "rank": i + 1, "explanation": {}}
            for i, s in enumerate(shortlist)], 0)
    r = await client.post(f"/api/v1/sellers/{not_for_me}/opportunities/{brief_id}/response",
                          headers=admin, json={"response": "not_for_me", "reason": "skills"})
    assert r.status == 200, await r.text()
    r = await client.post(f"/api/v1/briefs/{brief_id}/award", headers=buyer.headers,
                          json={"seller_id": winner})
    assert r.status == 200, await r.text()


async def test_fit_api(
    client: TestClient, admin: dict[str, str], other_buyer: User, seller: User,
    pool: asyncpg.Pool,
) -> None:
    url = "/api/v1/outcomes/fit"
    err = await error_of(await client.post(url, json={}, headers=admin), 422)
    assert err["details"][0]["type"] == "no_outcomes"
    await error_of(await client.post(url, json={}, headers=other_buyer.headers), 403)
    await error_of(await client.post(url, json={}, headers=seller.headers), 403)

    ids = []
    for i in range(8):
        body: dict[str, Any] = {"name": f"Hosting {i} Ltd", "summary": SUMMARY,
                                "categories": ["digital-outcomes"], "skills": ["python"]}
        body["sme"] = i < 2
        if i % 2 == 0:
            body["case_studies"] = [{"title": "Earlier work", "organisation": "Home Office"}]
        r = await client.post("/api/v1/sellers", json=body, headers=admin)
        ids.append((await r.json())["id"])
    for b in range(6):
        r = await client.post("/api/v1/briefs", headers=other_buyer.headers, json={
            "title": "Python hosting", "summary": SUMMARY, "category": "digital-outcomes",
            "location": "London", "essential_skills": ["python"]})
        brief_id = (await r.json())["id"]
        assert (await client.post(f"/api/v1/briefs/{brief_id}/publish",
                                  headers=other_buyer.headers)).status == 201
        await _record(client, admin, other_buyer, pool, brief_id, ids,
                      winner=ids[2 * (b % 4)], not_for_me=ids[1 + 2 * (b % 4)])
    r = await client.post(url, json={}, headers=admin)
    assert r.status == 200, await r.text()
    proposal = await r.json()
    assert proposal["base_version"] == 0
    assert proposal["learnt_from"]["briefs"] == 6
    weights = proposal["rules"]["weights"]
    base = Rules().weights
    assert weights["buyer"] / sum(weights.values()) > base["buyer"] / sum(base.values())
    # The proposal is valid rules: the what-if preview takes it as it is.
    r = await client.post("/api/v1/rules/preview", headers=admin,
                          json={"rules": proposal["rules"], "briefs": 10})
    assert r.status == 200, await r.text()
    total = (await r.json())["total"]
    # All nine sellers (eight here, the seller fixture's company) make every top 10 under both
    # rule sets; two of them are SMEs.
    assert total["sme_share_top10"] == {"active": round(2 / 9, 4), "candidate": round(2 / 9, 4)}
