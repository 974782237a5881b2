"""The outcomes funnel on a small marketplace with hand-computed expectations.

Sellers and briefs come through the API (created, published); stored shortlists through the
matches repository (what the match job writes); delivered alerts, invitations, responses and
awards as rows (`_outcome_rows`) until the invitation, response and award endpoints land."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from models import matches
from tests.api.factories import User
from tests.api.test_errors import error_of

STEPS = ("matched", "alerted", "interested", "not_for_me", "applied", "invited", "awarded")


async def _seller(client: TestClient, admin: dict[str, str], name: str, sme: bool) -> int:
    r = await client.post("/api/v1/sellers", headers=admin, json={
        "name": name, "summary": "Python services", "categories": ["digital-outcomes",
                                                                   "digital-specialists"],
        "skills": ["python"], "locations": ["London"], "sme": sme})
    assert r.status == 201, await r.text()
    return int((await r.json())["id"])


async def _brief(client: TestClient, buyer: User, category: str) -> int:
    r = await client.post("/api/v1/briefs", headers=buyer.headers, json={
        "title": f"A {category} brief", "summary": "Python work", "category": category,
        "location": "London", "essential_skills": ["python"]})
    brief_id = int((await r.json())["id"])
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    assert r.status == 201, await r.text()
    return brief_id


async def _outcome_rows(
    pool: asyncpg.Pool,
    brief_id: int,
    *,
    version: int | None = None,
    matched: list[int] = (),  # type: ignore[assignment]
    sent: list[int] = (),  # type: ignore[assignment]
    pending: list[int] = (),  # type: ignore[assignment]
    responses: dict[int, tuple[str, str | None]] | None = None,
    invited: list[int] = (),  # type: ignore[assignment]
    winner: int | None = None,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if matched:
            await matches.replace_shortlist(conn, brief_id, [
                {"seller_id": s, "score": 0.9 - 0.1 * i, "rank": i + 1, "explanation": {}}
                for i, s in enumerate(matched)], version or 0)
        for seller_id in [*sent, *pending]:
            await conn.execute(
                "INSERT INTO alerts (brief_id, seller_id, channel, status, kind)"
                " VALUES ($1, $2, 'email', $3, 'match')",
                brief_id, seller_id, "sent" if seller_id in sent else "pending")
        for seller_id, (response, reason) in (responses or {}).items():
            await conn.execute(
                "INSERT INTO responses (brief_id, seller_id, response, reason)"
                " VALUES ($1, $2, $3, $4)", brief_id, seller_id, response, reason)
        for seller_id in invited:
            await conn.execute("INSERT INTO invitations (brief_id, seller_id) VALUES ($1, $2)",
                               brief_id, seller_id)
        if winner is not None:
            await conn.execute(
                "UPDATE briefs SET status = 'awarded', winner_seller_id = $2, awarded_at = now()"
                " WHERE id = $1", brief_id, winner)


def _steps(group: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {s["step"]: (s["count"], s["sme"], s["sme_share"]) for s in group["steps"]}


def _expect(**given: tuple[int, int]) -> dict[str, tuple[int, int, float | None]]:
    out = {}
    for step in STEPS:
        n, sme = given.get(step, (0, 0))
        out[step] = (n, sme, round(sme / n, 4) if n else None)
    return out


async def test_funnel_per_rules_version_and_category(
    client: TestClient, admin: dict[str, str], buyer: User, seller: User, pool: asyncpg.Pool
) -> None:
    s1 = await _seller(client, admin, "One Ltd", sme=True)
    s2 = await _seller(client, admin, "Two Ltd", sme=False)
    s3 = await _seller(client, admin, "Three Ltd", sme=True)
    s4 = await _seller(client, admin, "Four Ltd", sme=False)
    b1 = await _brief(client, buyer, "digital-outcomes")
    b2 = await _brief(client, buyer, "digital-outcomes")
    b3 = await _brief(client, buyer, "digital-specialists")
    b4 = await _brief(client, buyer, "digital-outcomes")  # stands for an imported award
    await _outcome_rows(pool, b1, version=1, matched=[s1, s2, s3, s4], sent=[s1, s2, s3],
                        pending=[s4], invited=[s4], winner=s1,
                        responses={s1: ("applied", None), s2: ("not_for_me", "rate"),
                                   s3: ("interested", None)})
    await _outcome_rows(pool, b2, version=2, matched=[s1, s2], sent=[s2],
                        responses={s2: ("not_for_me", "skills"), s1: ("not_for_me", "timing")})
    await _outcome_rows(pool, b3, version=1, matched=[s3, s4], sent=[s3, s4], invited=[s3],
                        responses={s4: ("applied", None)}, winner=s4)
    await _outcome_rows(pool, b4, winner=s2)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE briefs SET published_at = $2 WHERE id = $1", b4,
                           datetime(2017, 3, 1, tzinfo=UTC))

    r = await client.get("/api/v1/outcomes", headers=admin)
    assert r.status == 200, await r.text()
    data = await r.json()
    keys = [(g["rules_version"], g["category"], g["briefs"]) for g in data["groups"]]
    assert keys == [(2, "digital-outcomes", 1), (1, "digital-outcomes", 1),
                    (1, "digital-specialists", 1), (None, "digital-outcomes", 1)]
    v2, v1, v1_spec, imported = data["groups"]
    assert _steps(v2) == _expect(matched=(2, 1), alerted=(1, 0), not_for_me=(2, 1))
    assert v2["not_for_me_reasons"] == {"skills": 1, "size": 0, "location": 0, "rate": 0,
                                        "timing": 1, "other": 0}
    assert _steps(v1) == _expect(matched=(4, 2), alerted=(3, 2), interested=(1, 1),
                                 not_for_me=(1, 0), applied=(1, 1), invited=(1, 0),
                                 awarded=(1, 1))
    assert v1["not_for_me_reasons"]["rate"] == 1
    assert _steps(v1_spec) == _expect(matched=(2, 1), alerted=(2, 1), applied=(1, 0),
                                      invited=(1, 1), awarded=(1, 0))
    assert _steps(imported) == _expect(awarded=(1, 0))
    assert data["total"]["briefs"] == 4
    assert _steps(data["total"]) == _expect(
        matched=(8, 4), alerted=(6, 3), interested=(1, 1), not_for_me=(3, 1), applied=(2, 1),
        invited=(2, 1), awarded=(3, 1))

    # Filters: one rules version; one category; briefs published since a date.
    data = await (await client.get("/api/v1/outcomes?rules_version=1", headers=admin)).json()
    assert [g["category"] for g in data["groups"]] == ["digital-outcomes", "digital-specialists"]
    assert _steps(data["total"])["matched"] == (6, 3, 0.5)
    data = await (await client.get("/api/v1/outcomes?category=digital-specialists",
                                   headers=admin)).json()
    assert [(g["rules_version"], g["category"]) for g in data["groups"]] == [
        (1, "digital-specialists")]
    assert data["filters"]["category"] == "digital-specialists"
    data = await (await client.get("/api/v1/outcomes?since=2020-01-01", headers=admin)).json()
    assert data["total"]["briefs"] == 3
    assert _steps(data["total"])["awarded"] == (2, 1, 0.5)

    # Admins only; bad filters are 422.
    await error_of(await client.get("/api/v1/outcomes", headers=buyer.headers), 403)
    await error_of(await client.get("/api/v1/outcomes", headers=seller.headers), 403)
    await error_of(await client.get("/api/v1/outcomes?since=yesterday", headers=admin), 422)
    await error_of(await client.get("/api/v1/outcomes?rules_version=-1", headers=admin), 422)
