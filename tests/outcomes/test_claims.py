"""Seller claims: a seller's own categories, SME status and past work wait for an admin; only
an admin approves or rejects; approving applies the claim (matching sees it within a second);
a seller keeps editing everything else freely."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from api.keys import LIVE
from tests.api.factories import User, make_seller, make_user
from tests.api.test_errors import error_of, fields_of
from tests.api.test_tokens_sellers import events


def _url(seller_id: int | None, suffix: str = "") -> str:
    return f"/api/v1/sellers/{seller_id}{suffix}"


async def _json(r: Any, status: int = 200) -> Any:
    assert r.status == status, (r.status, await r.text())
    return await r.json()


async def test_a_sellers_own_claims_wait_for_an_admin(
    client: TestClient, admin: dict[str, str], buyer: User, pool: asyncpg.Pool
) -> None:
    seller_id = await make_seller(pool, categories=["digital-outcomes"], sme=False,
                                  case_studies=[])
    me = await make_user(pool, "seller", seller_id=seller_id)
    other = await make_user(pool, "seller")
    study = {"title": "Benefits platform", "organisation": "Home Office",
             "category": "digital-outcomes", "won_at": "2024-03-01"}
    body = await _json(await client.patch(_url(seller_id), headers=me.headers, json={
        "summary": "New summary", "skills": ["rust"], "day_rate": 700,
        "locations": ["Leeds"], "categories": ["digital-outcomes", "digital-specialists"],
        "sme": True, "case_studies": [study],
    }))
    # Free fields apply at once; the claims do not.
    assert body["summary"] == "New summary" and body["skills"] == ["rust"]
    assert body["day_rate"] == 700 and body["locations"] == ["Leeds"]
    assert body["categories"] == ["digital-outcomes"] and body["sme"] is False
    assert body["case_studies"] == []
    pending = {c["kind"]: c for c in body["pending_claims"]}
    assert set(pending) == {"category", "sme", "past_work"}
    assert pending["category"]["value"] == {"category": "digital-specialists"}
    assert pending["sme"]["value"] == {"sme": True}
    assert pending["past_work"]["value"]["organisation"] == "Home Office"
    # Saving the same profile again asks once.
    again = await _json(await client.put(_url(seller_id), headers=me.headers, json={
        "name": "Renamed Ltd", "summary": "New summary",
        "categories": ["digital-outcomes", "digital-specialists"], "sme": True,
        "case_studies": [study]}))
    assert again["name"] == "Renamed Ltd"
    assert sorted(c["id"] for c in again["pending_claims"]) == sorted(
        c["id"] for c in body["pending_claims"])

    # Who sees the claims: the seller itself and admins; nobody else.
    mine = await _json(await client.get(_url(seller_id, "/claims"), headers=me.headers))
    assert len(mine["items"]) == 3
    await error_of(await client.get(_url(seller_id, "/claims"), headers=other.headers), 403)
    await error_of(await client.get(_url(seller_id, "/claims"), headers=buyer.headers), 403)
    await error_of(await client.get(_url(seller_id, "/claims")), 401)
    queue = await _json(await client.get("/api/v1/claims", headers=admin))
    assert {c["seller_name"] for c in queue["items"]} == {"Renamed Ltd"}
    await error_of(await client.get("/api/v1/claims", headers=me.headers), 403)

    # Nobody but an admin decides.
    claim = pending["category"]["id"]
    approve = _url(seller_id, f"/claims/{claim}/approve")
    for user in (me, other, buyer):
        await error_of(await client.post(approve, headers=user.headers), 403)
        await error_of(await client.post(_url(seller_id, f"/claims/{claim}/reject"),
                                         headers=user.headers), 403)
    # The claim must belong to the seller in the path.
    await error_of(await client.post(_url(other.seller_id, f"/claims/{claim}/approve"),
                                     headers=admin), 404)
    await error_of(await client.post(_url(seller_id, "/claims/999999/approve"),
                                     headers=admin), 404)
    decided = await _json(await client.post(approve, headers=admin,
                                            json={"note": "checked the framework"}))
    assert decided["status"] == "approved" and decided["note"] == "checked the framework"
    await error_of(await client.post(approve, headers=admin), 409)
    r = await _json(await client.post(
        _url(seller_id, f"/claims/{pending['sme']['id']}/reject"), headers=admin))
    assert r["status"] == "rejected"
    await _json(await client.post(
        _url(seller_id, f"/claims/{pending['past_work']['id']}/approve"), headers=admin))

    row = await _json(await client.get(_url(seller_id), headers=admin))
    assert row["categories"] == ["digital-outcomes", "digital-specialists"]
    assert row["sme"] is False  # rejected
    assert [c["organisation"] for c in row["case_studies"]] == ["Home Office"]
    assert row["case_studies"][0]["won_at"] == "2024-03-01"
    left = await _json(await client.get(_url(seller_id, "/claims?status=pending"),
                                        headers=me.headers))
    assert left["items"] == []
    actions = await events(pool, "seller", seller_id)
    assert actions.count("claim.filed") == 3
    assert {"claim.approved", "claim.rejected"} <= set(actions)


async def test_what_a_seller_may_and_may_not_change(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    award = {"title": "Won brief", "organisation": "HMRC", "category": "digital-outcomes",
             "won_at": "2023-05-01", "brief_id": 1}
    own = {"title": "Own work", "organisation": "DWP", "category": "digital-outcomes"}
    seller_id = await make_seller(pool, categories=["digital-outcomes", "digital-specialists"],
                                  case_studies=[award, own])
    me = await make_user(pool, "seller", seller_id=seller_id)
    # Past work linked to a brief is an award's record: a seller cannot add one.
    err = await error_of(await client.patch(_url(seller_id), headers=me.headers, json={
        "case_studies": [award, own, {"title": "Fake win", "brief_id": 5}]}), 422)
    assert fields_of(err) == {"case_studies.2.brief_id"}
    # Narrowing is free: a seller drops a category and its own past work at once; an award's
    # record stays (outcomes are not the seller's to remove).
    body = await _json(await client.patch(_url(seller_id), headers=me.headers, json={
        "categories": ["digital-specialists"], "case_studies": []}))
    assert body["categories"] == ["digital-specialists"]
    assert [c["title"] for c in body["case_studies"]] == ["Won brief"]
    assert body["pending_claims"] == []
    # An admin's edits are verified facts: applied at once, no claims.
    body = await _json(await client.patch(_url(seller_id), headers=admin, json={
        "categories": ["digital-outcomes"], "sme": True}))
    assert body["categories"] == ["digital-outcomes"] and body["sme"] is True
    assert "pending_claims" not in body
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM seller_claims") == 0


async def _rank(client: TestClient, buyer: User, brief: dict[str, Any], seller_id: int
                ) -> int | None:
    r = await client.post("/api/v1/briefs/preview?limit=50", json=brief, headers=buyer.headers)
    items = (await r.json())["items"]
    return next((i["rank"] for i in items if i["seller_id"] == seller_id), None)


async def _until(check: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the live index did not follow"
        await asyncio.sleep(0.1)


async def test_pending_claims_do_not_rank_until_approved(
    client: TestClient, admin: dict[str, str], buyer: User, pool: asyncpg.Pool
) -> None:
    """Through the live index: a seller's own new category and past work for the buyer change
    nothing until an admin approves them, then they do (within a second)."""
    live = client.server.app[LIVE]
    summary = "Python data pipelines and cloud services for government departments."
    rivals = [await make_seller(pool, summary=summary, skills=["python", "aws"],
                                categories=["digital-outcomes"]) for _ in range(5)]
    climber = await make_seller(pool, summary=summary, skills=["python"],
                                categories=["digital-specialists"])
    me = await make_user(pool, "seller", seller_id=climber)
    brief = {"title": "Python data pipelines", "summary": summary,
             "category": "digital-outcomes", "location": "London",
             "essential_skills": ["python", "aws"]}
    await _until(lambda: _has(live, [*rivals, climber]))
    assert await _rank(client, buyer, brief, rivals[0]) is not None
    assert await _rank(client, buyer, brief, climber) is None  # not in the brief's category

    # The seller claims the category (and renames itself, a free change that shows when the
    # index has taken the edit in).
    body = await _json(await client.patch(_url(climber), headers=me.headers, json={
        "name": "Climber Ltd", "categories": ["digital-specialists", "digital-outcomes"]}))
    await _until(lambda: _named(live, climber, "Climber Ltd"))
    assert await _rank(client, buyer, brief, climber) is None
    claim = body["pending_claims"][0]["id"]
    await _json(await client.post(_url(climber, f"/claims/{claim}/approve"), headers=admin))
    await _until(lambda: _ranked(client, buyer, brief, climber))
    before = await _rank(client, buyer, brief, climber)
    assert before is not None and before > 1  # in, below the rivals with both skills

    # Past work for this very buyer: pending, nothing moves; approved, it climbs to the top.
    study = {"title": "Benefit statistics pipeline", "category": "digital-outcomes",
             "organisation": "Department for Work and Pensions", "won_at": "2025-01-10"}
    body = await _json(await client.patch(_url(climber), headers=me.headers, json={
        "name": "Climber Two Ltd", "case_studies": [study]}))
    await _until(lambda: _named(live, climber, "Climber Two Ltd"))
    assert await _rank(client, buyer, brief, climber) == before
    claim = body["pending_claims"][0]["id"]
    await _json(await client.post(_url(climber, f"/claims/{claim}/approve"), headers=admin))

    async def climbed() -> bool:
        return await _rank(client, buyer, brief, climber) == 1

    await _until(climbed)


async def _has(live: Any, ids: list[int]) -> bool:
    return all(live.seller_name(i) is not None for i in ids)


async def _named(live: Any, seller_id: int, name: str) -> bool:
    return bool(live.seller_name(seller_id) == name)


async def _ranked(client: TestClient, buyer: User, brief: dict[str, Any], seller_id: int
                  ) -> bool:
    return await _rank(client, buyer, brief, seller_id) is not None
