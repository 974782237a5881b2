"""Invitations, seller responses and awards through the HTTP API: who may do what, the state
rules (409/422), the alerts they create, the audit events, and the award as verified past work
that the live index uses within a second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from models import briefs, matches, preferences
from tests.api.factories import User, make_brief, make_seller, make_user
from tests.api.test_briefs import poll
from tests.api.test_errors import error_of, fields_of
from tests.api.test_tokens_sellers import events


@dataclass
class Scene:
    brief_id: int
    shortlisted: list[int]  # on the stored shortlist, best first
    outsider: int  # an active seller not on the shortlist


async def publish_with_shortlist(
    pool: asyncpg.Pool, owner: User, sellers_on_list: list[int], **fields: Any
) -> int:
    """A published brief whose stored shortlist holds the given sellers (what the worker's
    match job writes; the API paths under test read it). The organisation is the owner's, as
    the API sets it."""
    async with pool.acquire() as conn:
        organisation = await conn.fetchval(
            "SELECT organisation FROM accounts WHERE id = $1", owner.account_id
        )
    brief_id = await make_brief(pool, owner, **{"organisation": organisation, **fields})
    async with pool.acquire() as conn:
        await briefs.publish(conn, brief_id)
        await matches.replace_shortlist(
            conn,
            brief_id,
            [{"seller_id": s, "score": 0.9 - 0.1 * i, "rank": i + 1,
              "explanation": {"summary": "Matched because it fits."}}
             for i, s in enumerate(sellers_on_list)],
            rules_version=1,
        )
    return brief_id


async def scene(pool: asyncpg.Pool, buyer: User, seller: User) -> Scene:
    assert seller.seller_id is not None
    second = await make_seller(pool)
    outsider = await make_seller(pool)
    brief_id = await publish_with_shortlist(pool, buyer, [seller.seller_id, second])
    return Scene(brief_id, [seller.seller_id, second], outsider)


async def alerts_of(pool: asyncpg.Pool, brief_id: int) -> set[tuple[int, str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seller_id, kind, channel FROM alerts WHERE brief_id = $1", brief_id
        )
    return {(r["seller_id"], r["kind"], r["channel"]) for r in rows}


# ---------------------------------------------------------------------------------------------
# Invitations


async def test_invitations_alert_once_even_below_threshold(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User
) -> None:
    s = await scene(pool, buyer, seller)
    second = s.shortlisted[1]
    off = await make_seller(pool)
    async with pool.acquire() as conn:
        # Far above any score: a match would never alert it; an invitation does.
        await preferences.upsert(conn, s.shortlisted[0], {
            "frequency": "instant", "email": "a@example.org", "min_score": 1.0,
            "categories": ["user-research-studios"]})
        await preferences.upsert(conn, second, {"frequency": "daily", "email": "d@example.org"})
        await preferences.upsert(conn, s.outsider, {
            "frequency": "instant", "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_secret": "0123456789abcdef"})
        await preferences.upsert(conn, off, {"frequency": "off", "email": "off@example.org"})
    url = f"/api/v1/briefs/{s.brief_id}/invitations"
    every = [s.shortlisted[0], second, s.outsider, off]
    r = await client.post(url, json={"seller_ids": [*every, second]}, headers=buyer.headers)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["invited"] == sorted(every) and body["already_invited"] == []
    assert body["alerted"] == sorted([s.shortlisted[0], second, s.outsider])
    assert await alerts_of(pool, s.brief_id) == {
        (s.shortlisted[0], "invited", "email"),
        (second, "invited", "email"),  # a digest seller is told at once, by e-mail
        (s.outsider, "invited", "webhook"),
    }
    items = {i["seller_id"]: i for i in body["items"]}
    assert items[off]["alert_status"] is None and items[second]["alert_status"] == "pending"
    assert items[s.outsider]["rank"] is None and items[s.shortlisted[0]]["rank"] == 1

    # Again: nothing new, no second alert.
    again = await (await client.post(url, json={"seller_ids": every}, headers=buyer.headers)).json()
    assert again["invited"] == [] and again["already_invited"] == sorted(every)
    assert len(await alerts_of(pool, s.brief_id)) == 3
    listed = await (await client.get(url, headers=buyer.headers)).json()
    assert sorted(i["seller_id"] for i in listed["items"]) == sorted(every)
    assert await events(pool, "brief", s.brief_id) == ["brief.invited"]

    # The invited outsider now has the brief among its opportunities (no score: not matched).
    outsider = await make_user(pool, "seller", seller_id=s.outsider)
    opps = await (await client.get(f"/api/v1/sellers/{s.outsider}/opportunities",
                                   headers=outsider.headers)).json()
    assert [(o["brief_id"], o["score"], o["rank"], o["open"]) for o in opps["items"]] == [
        (s.brief_id, None, None, True)
    ]
    assert opps["items"][0]["invited_at"]


async def test_invitation_permissions_and_states(
    client: TestClient, pool: asyncpg.Pool, buyer: User, other_buyer: User, seller: User,
    admin: dict[str, str],
) -> None:
    s = await scene(pool, buyer, seller)
    url = f"/api/v1/briefs/{s.brief_id}/invitations"
    one = {"seller_ids": [s.outsider]}
    # Another buyer's brief looks like no brief at all; sellers may not invite.
    await error_of(await client.post(url, json=one, headers=other_buyer.headers), 404)
    await error_of(await client.get(url, headers=other_buyer.headers), 404)
    await error_of(await client.post(url, json=one, headers=seller.headers), 403)
    await error_of(await client.post(url, json=one), 401)
    # Bad bodies: unknown or inactive sellers, empty lists, junk.
    inactive = await make_seller(pool, active=False)
    err = await error_of(
        await client.post(url, json={"seller_ids": [inactive, 10**12]}, headers=buyer.headers),
        422,
    )
    assert fields_of(err) == {"seller_ids"} and len(err["details"]) == 2
    for bad in ({"seller_ids": []}, {"seller_ids": [0]}, {"seller_ids": "1"}, {}, {"x": 1}):
        await error_of(await client.post(url, json=bad, headers=buyer.headers), 422)
    # A draft, a closed brief and one past its closing date take no invitations.
    draft = await make_brief(pool, buyer)
    r = await client.post(f"/api/v1/briefs/{draft}/invitations", json=one, headers=buyer.headers)
    await error_of(r, 409)
    past = await publish_with_shortlist(
        pool, buyer, [], closes_at=date.today() - timedelta(days=2)
    )
    r = await client.post(f"/api/v1/briefs/{past}/invitations", json=one, headers=buyer.headers)
    assert "closing date" in (await error_of(r, 409))["message"]
    await client.post(f"/api/v1/briefs/{s.brief_id}/close", headers=buyer.headers)
    await error_of(await client.post(url, json=one, headers=buyer.headers), 409)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM invitations") == 0
    # An admin may invite to any open brief.
    other = await publish_with_shortlist(pool, other_buyer, [])
    r = await client.post(f"/api/v1/briefs/{other}/invitations", json=one, headers=admin)
    assert r.status == 200 and (await r.json())["invited"] == [s.outsider]


# ---------------------------------------------------------------------------------------------
# Responses


async def test_seller_answers_until_the_brief_closes(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, other_seller: User,
    admin: dict[str, str],
) -> None:
    s = await scene(pool, buyer, seller)
    me = seller.seller_id
    url = f"/api/v1/sellers/{me}/opportunities/{s.brief_id}/response"
    r = await client.post(url, json={"response": "interested"}, headers=seller.headers)
    assert r.status == 200, await r.text()
    first = await r.json()
    assert (first["response"], first["reason"], first["previous"]) == ("interested", None, None)
    r = await client.post(url, json={"response": "not_for_me", "reason": "rate"},
                          headers=seller.headers)
    changed = await r.json()
    assert (changed["response"], changed["reason"], changed["previous"]) == (
        "not_for_me", "rate", "interested")
    # An admin may answer for a seller.
    r = await client.post(url, json={"response": "applied"}, headers=admin)
    assert (await r.json())["response"] == "applied"
    opps = await (await client.get(f"/api/v1/sellers/{me}/opportunities",
                                   headers=seller.headers)).json()
    assert [(o["response"], o["reason"]) for o in opps["items"]] == [("applied", None)]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT action, data FROM audit_events WHERE entity = 'brief' AND entity_id = $1"
            " ORDER BY id", str(s.brief_id))
    assert [(r["action"], r["data"]["response"], r["data"]["via"]) for r in rows] == [
        ("response.recorded", "interested", "api"),
        ("response.recorded", "not_for_me", "api"),
        ("response.recorded", "applied", "api"),
    ]

    # Another seller cannot answer for this one; buyers cannot answer at all.
    await error_of(await client.post(url, json={"response": "applied"},
                                     headers=other_seller.headers), 403)
    await error_of(await client.post(url, json={"response": "applied"},
                                     headers=buyer.headers), 403)
    # Not this seller's opportunity (not shortlisted, not invited), or no such brief.
    theirs = f"/api/v1/sellers/{other_seller.seller_id}/opportunities/{s.brief_id}/response"
    await error_of(await client.post(theirs, json={"response": "applied"},
                                     headers=other_seller.headers), 404)
    missing = f"/api/v1/sellers/{me}/opportunities/{10**12}/response"
    await error_of(await client.post(missing, json={"response": "applied"},
                                     headers=seller.headers), 404)
    # Bad bodies.
    for bad in ({"response": "maybe"}, {"response": "applied", "reason": "skills"},
                {"response": "not_for_me", "reason": "bored"}, {}, {"response": "applied", "x": 1}):
        await error_of(await client.post(url, json=bad, headers=seller.headers), 422)

    # Closed: the answer stands and can no longer change.
    await client.post(f"/api/v1/briefs/{s.brief_id}/close", headers=buyer.headers)
    err = await error_of(
        await client.post(url, json={"response": "interested"}, headers=seller.headers), 409)
    assert err["details"] == {"status": "closed"}
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT response FROM responses WHERE brief_id = $1 AND seller_id = $2",
            s.brief_id, me) == "applied"


async def test_answers_stop_at_the_closing_date(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User
) -> None:
    assert seller.seller_id is not None
    brief_id = await publish_with_shortlist(
        pool, buyer, [seller.seller_id], closes_at=date.today() - timedelta(days=2)
    )
    url = f"/api/v1/sellers/{seller.seller_id}/opportunities/{brief_id}/response"
    r = await client.post(url, json={"response": "applied"}, headers=seller.headers)
    assert "closing date" in (await error_of(r, 409))["message"]


# ---------------------------------------------------------------------------------------------
# Awards


async def test_award_to_a_shortlisted_seller_becomes_past_work(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User
) -> None:
    s = await scene(pool, buyer, seller)
    winner = s.shortlisted[1]
    async with pool.acquire() as conn:
        await preferences.upsert(conn, winner, {"frequency": "instant", "email": "w@example.org"})
    r = await client.post(f"/api/v1/briefs/{s.brief_id}/award", json={"seller_id": winner},
                          headers=buyer.headers)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["status"] == "awarded" and body["winner_seller_id"] == winner
    assert body["winner_alerted"] is True and body["eligible_because"] == ["shortlisted"]
    assert body["awarded_at"]
    assert await alerts_of(pool, s.brief_id) == {(winner, "awarded", "email")}
    r = await client.get(f"/api/v1/sellers/{winner}", headers=buyer.headers)
    past = (await r.json())["case_studies"]
    assert [(c["brief_id"], c["organisation"], c["category"]) for c in past] == [
        (s.brief_id, "Department for Work and Pensions", "digital-outcomes")]
    assert past[0]["won_at"] == date.today().isoformat()
    assert await events(pool, "brief", s.brief_id) == ["brief.awarded"]
    assert await events(pool, "seller", winner) == ["seller.past_work_added"]
    # Decided once: a second award or a no-award is a conflict; answers are closed too.
    again = await client.post(f"/api/v1/briefs/{s.brief_id}/award",
                              json={"outcome": "no_award"}, headers=buyer.headers)
    await error_of(again, 409)
    url = f"/api/v1/sellers/{seller.seller_id}/opportunities/{s.brief_id}/response"
    await error_of(await client.post(url, json={"response": "applied"},
                                     headers=seller.headers), 409)


async def test_award_eligibility_permissions_and_no_award(
    client: TestClient, pool: asyncpg.Pool, buyer: User, other_buyer: User, seller: User,
    admin: dict[str, str],
) -> None:
    s = await scene(pool, buyer, seller)
    url = f"/api/v1/briefs/{s.brief_id}/award"
    # Another buyer cannot award this brief (it does not exist for them); sellers cannot award.
    await error_of(await client.post(url, json={"seller_id": s.outsider},
                                     headers=other_buyer.headers), 404)
    await error_of(await client.post(url, json={"seller_id": s.shortlisted[0]},
                                     headers=seller.headers), 403)
    # The outsider neither applied, was invited nor shortlisted: 422; unknown seller: 422.
    err = await error_of(await client.post(url, json={"seller_id": s.outsider},
                                           headers=buyer.headers), 422)
    assert fields_of(err) == {"seller_id"}
    await error_of(await client.post(url, json={"seller_id": 10**12}, headers=buyer.headers), 422)
    for bad in ({}, {"outcome": "no_award", "seller_id": s.outsider}, {"outcome": "maybe"},
                {"seller_id": "x"}, {"outcome": "awarded"}):
        await error_of(await client.post(url, json=bad, headers=buyer.headers), 422)
    # Invited: now eligible (an admin awards, after the brief closed).
    r = await client.post(f"/api/v1/briefs/{s.brief_id}/invitations",
                          json={"seller_ids": [s.outsider]}, headers=buyer.headers)
    assert r.status == 200
    await client.post(f"/api/v1/briefs/{s.brief_id}/close", headers=buyer.headers)
    r = await client.post(url, json={"seller_id": s.outsider}, headers=admin)
    body = await r.json()
    assert r.status == 200 and body["eligible_because"] == ["invited"]
    assert body["winner_alerted"] is False  # it has no alert preferences

    # No award: unsuccessful, no winner, no past work.
    other = await publish_with_shortlist(pool, buyer, [s.shortlisted[0]])
    r = await client.post(f"/api/v1/briefs/{other}/award", json={"outcome": "no_award"},
                          headers=buyer.headers)
    body = await r.json()
    assert (body["status"], body["winner_seller_id"]) == ("unsuccessful", None)
    assert await events(pool, "brief", other) == ["brief.unsuccessful"]
    # A draft cannot be awarded.
    draft = await make_brief(pool, buyer)
    await error_of(await client.post(f"/api/v1/briefs/{draft}/award",
                                     json={"outcome": "no_award"}, headers=buyer.headers), 409)


async def test_applied_seller_is_eligible(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User
) -> None:
    """A seller that is neither shortlisted nor invited any more... but applied: the answer
    alone makes it eligible."""
    s = await scene(pool, buyer, seller)
    me = seller.seller_id
    r = await client.post(f"/api/v1/sellers/{me}/opportunities/{s.brief_id}/response",
                          json={"response": "applied"}, headers=seller.headers)
    assert r.status == 200
    async with pool.acquire() as conn:  # the shortlist is recomputed without it
        await conn.execute("DELETE FROM matches WHERE brief_id = $1 AND seller_id = $2",
                           s.brief_id, me)
    r = await client.post(f"/api/v1/briefs/{s.brief_id}/award", json={"seller_id": me},
                          headers=buyer.headers)
    assert (await r.json())["eligible_because"] == ["applied"]


async def test_award_reaches_the_live_index_as_same_buyer_work(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User
) -> None:
    """The award is appended to the seller row; the API's live index sees it within a second
    and the next brief of the same buyer explains the winner with "worked for ... before"."""
    winner = await make_seller(
        pool, name="Zephyr Digital Ltd",
        summary="Python and accessibility engineering for digital services on AWS.",
    )
    brief_id = await publish_with_shortlist(pool, buyer, [winner])
    preview = {
        "title": "Python accessibility work", "summary": "Python and accessibility.",
        "category": "digital-outcomes", "location": "London",
        "essential_skills": ["python", "accessibility"],
    }

    async def fetch() -> dict[str, Any] | None:
        r = await client.post("/api/v1/briefs/preview?limit=50", json=preview,
                              headers=buyer.headers)
        assert r.status == 200, await r.text()
        items = (await r.json())["items"]
        return next((i for i in items if i["seller_id"] == winner), None)

    # The live index sees the new seller within a second.
    before = await poll(fetch, lambda i: i is not None)
    assert before is not None
    assert "worked for" not in before["explanation"]["summary"]
    assert before["explanation"]["signals"]["buyer"] == 0
    r = await client.post(f"/api/v1/briefs/{brief_id}/award", json={"seller_id": winner},
                          headers=buyer.headers)
    assert r.status == 200
    after = await poll(fetch, lambda i: i["explanation"]["signals"]["buyer"] > 0, seconds=3.0)
    assert after["explanation"]["signals"]["buyer"] > 0
    # The same organisation as the brief's buyer: said as "you", never as a similar buyer.
    assert "worked for you before" in after["explanation"]["summary"]
