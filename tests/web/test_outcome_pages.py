"""Outcome pages over real HTTP: the buyer's invite form on the stored shortlist, the seller's
answer buttons and opportunity page, and the signed answer and unsubscribe links (valid,
tampered, expired, used for the wrong purpose)."""

from __future__ import annotations

import time

import asyncpg
from aiohttp.test_utils import TestClient

from models import matches, preferences
from tests.web.conftest import SECRET_KEY, Market, csrf_of, sign_in
from workers.links import LINK_MAX_AGE, Links


async def store_shortlist(pool: asyncpg.Pool, brief_id: int, seller_ids: list[int]) -> None:
    """What the worker's match job writes for a published brief."""
    async with pool.acquire() as conn:
        await matches.replace_shortlist(
            conn, brief_id,
            [{"seller_id": s, "score": 0.8 - 0.05 * i, "rank": i + 1,
              "explanation": {"summary": "Matched because it fits."}}
             for i, s in enumerate(seller_ids)],
            rules_version=1,
        )


async def _answers(pool: asyncpg.Pool, brief_id: int) -> dict[int, tuple[str, str | None]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seller_id, response, reason FROM responses WHERE brief_id = $1", brief_id
        )
    return {r["seller_id"]: (r["response"], r["reason"]) for r in rows}


async def test_buyer_invites_from_the_stored_shortlist(
    client: TestClient, market: Market, pool: asyncpg.Pool
) -> None:
    brief_id = market.brief_ids[1]
    await store_shortlist(pool, brief_id, market.seller_ids[:4])
    async with pool.acquire() as conn:
        await preferences.upsert(conn, market.seller_ids[1], {"frequency": "instant",
                                                               "email": "a@example.org"})
    sign_in(client, market.buyer_token)
    html = await (await client.get(f"/buyer/briefs/{brief_id}")).text()
    assert html.count('type="checkbox" name="seller_id"') == 4
    assert ">Invite</button>" in html
    csrf = csrf_of(html)
    url = f"/buyer/briefs/{brief_id}/invitations"
    r = await client.post(url, data=[("csrf_token", csrf), ("seller_id", str(market.seller_ids[1])),
                                     ("seller_id", str(market.seller_ids[2]))],
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].endswith("?invited=2")
    page = await (await client.get(r.headers["Location"])).text()
    assert "Invited 2 sellers." in page
    assert page.count('type="checkbox" name="seller_id"') == 2
    assert page.count('class="chip invited"') == 2
    async with pool.acquire() as conn:
        invited = await conn.fetch("SELECT seller_id FROM invitations WHERE brief_id = $1",
                                   brief_id)
        alerted = await conn.fetch(
            "SELECT seller_id FROM alerts WHERE brief_id = $1 AND kind = 'invited'", brief_id)
    assert {r["seller_id"] for r in invited} == set(market.seller_ids[1:3])
    assert [r["seller_id"] for r in alerted] == [market.seller_ids[1]]
    # Nothing ticked, junk, no CSRF token, another buyer's brief.
    r = await client.post(url, data={"csrf_token": csrf})
    assert r.status == 422
    r = await client.post(url, data={"csrf_token": csrf, "seller_id": "x"})
    assert r.status == 422
    r = await client.post(url, data={"seller_id": str(market.seller_ids[3])})
    assert r.status == 403
    sign_in(client, market.other_buyer_token)
    other_csrf = csrf_of(await (await client.get("/buyer/briefs/new")).text())
    r = await client.post(url, data={"csrf_token": other_csrf,
                                     "seller_id": str(market.seller_ids[3])})
    assert r.status == 404
    assert (await client.get(f"/buyer/briefs/{brief_id}")).status == 404


async def test_seller_answers_with_the_buttons(
    client: TestClient, market: Market, pool: asyncpg.Pool
) -> None:
    brief_id = market.brief_ids[1]
    await store_shortlist(pool, brief_id, [market.seller_id])
    sign_in(client, market.seller_token)
    listing = await (await client.get("/seller")).text()
    assert f'action="/seller/opportunities/{brief_id}/response"' in listing
    csrf = csrf_of(listing)
    url = f"/seller/opportunities/{brief_id}/response"
    r = await client.post(url, data={"csrf_token": csrf, "response": "not_for_me",
                                     "reason": "timing"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/seller?answered=not_for_me"
    assert await _answers(pool, brief_id) == {market.seller_id: ("not_for_me", "timing")}
    # The same form sends the reason list with every button: it counts for "not for me" only.
    r = await client.post(url, data={"csrf_token": csrf, "response": "applied",
                                     "reason": "timing", "back": "detail"},
                          allow_redirects=False)
    assert r.headers["Location"] == f"/seller/opportunities/{brief_id}?answered=applied"
    assert await _answers(pool, brief_id) == {market.seller_id: ("applied", None)}
    detail = await (await client.get(r.headers["Location"])).text()
    assert "Recorded: you applied." in detail and "Your answer: <strong>Applied</strong>" in detail
    # Junk answers, no CSRF token, a brief that is not this seller's opportunity.
    assert (await client.post(url, data={"csrf_token": csrf, "response": "maybe"})).status == 422
    assert (await client.post(url, data={"response": "applied"})).status == 403
    other = f"/seller/opportunities/{market.brief_ids[2]}/response"
    r = await client.post(other, data={"csrf_token": csrf, "response": "applied"})
    assert r.status == 404
    assert (await client.get(f"/seller/opportunities/{market.brief_ids[2]}")).status == 404
    # A buyer has no seller pages.
    sign_in(client, market.buyer_token)
    assert (await client.get(f"/seller/opportunities/{brief_id}")).status == 403


async def test_answer_links_valid_tampered_expired(
    client: TestClient, market: Market, pool: asyncpg.Pool
) -> None:
    brief_id = market.brief_ids[1]
    await store_shortlist(pool, brief_id, [market.seller_id])
    links = Links(SECRET_KEY)
    token = links.response_token(market.seller_id, brief_id, "not_for_me")
    # GET asks and changes nothing (no sign-in needed: the link is the credential).
    page = await client.get(f"/respond/{token}")
    assert page.status == 200
    html = await page.text()
    assert "Confirm: Not for me" in html and 'name="reason"' in html
    assert await _answers(pool, brief_id) == {}
    # A reason outside the list is refused; then the POST records.
    assert (await client.post(f"/respond/{token}", data={"reason": "bored"})).status == 422
    done = await client.post(f"/respond/{token}", data={"reason": "size"})
    assert done.status == 200 and "Answer recorded" in await done.text()
    assert await _answers(pool, brief_id) == {market.seller_id: ("not_for_me", "size")}

    # Tampered: another key, a changed payload, the unsubscribe purpose, garbage.
    forged = [
        Links("not-the-key").response_token(market.seller_id, brief_id, "applied"),
        links.response_token(market.seller_id, brief_id, "applied")[:-12] + "A" * 12,
        links.unsubscribe_token(market.seller_id),
        "x" * 40,
    ]
    body, ts, sig = token.split(".")
    forged.append(f"{body[:4]}{'B' if body[4] != 'B' else 'C'}{body[5:]}.{ts}.{sig}")
    for bad in forged:
        for method in (client.get, client.post):
            r = await method(f"/respond/{bad}")
            assert r.status == 404, bad
            assert "not valid" in await r.text()
    # Expired: issued longer ago than the lifetime allows.
    old = Links(SECRET_KEY, clock=lambda: time.time() - LINK_MAX_AGE - 60)
    for path in (f"/respond/{old.response_token(market.seller_id, brief_id, 'applied')}",
                 f"/unsubscribe/{old.unsubscribe_token(market.seller_id)}"):
        for method in (client.get, client.post):
            r = await method(path)
            assert r.status == 410, path
            assert "expired" in await r.text()
    assert await _answers(pool, brief_id) == {market.seller_id: ("not_for_me", "size")}
    # An answer token is no unsubscribe token.
    assert (await client.post(f"/unsubscribe/{token}")).status == 404
    # A valid link for a brief that is not the seller's opportunity: nothing to answer.
    stranger = links.response_token(market.seller_id, market.brief_ids[3], "applied")
    assert (await client.get(f"/respond/{stranger}")).status == 404
    assert (await client.post(f"/respond/{stranger}")).status == 404
