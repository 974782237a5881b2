"""Outcome pages in Chromium (the browser fixtures of test_browser.py): a buyer ticks sellers on
the stored shortlist and invites them; a seller answers with the buttons and through a signed
link from an alert."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from tests.web.conftest import SECRET_KEY, Market
from tests.web.test_browser import browser, page, shot, sign_in  # noqa: F401  (fixtures)
from tests.web.test_outcome_pages import store_shortlist
from workers.links import Links


async def test_buyer_ticks_sellers_and_invites_them(
    page: Any, market: Market, pool: asyncpg.Pool  # noqa: F811
) -> None:
    brief_id = market.brief_ids[1]
    await store_shortlist(pool, brief_id, market.seller_ids[:4])
    await sign_in(page, market.buyer_token)
    await page.goto(f"/buyer/briefs/{brief_id}")
    await page.get_by_label("Accessible Services Co").check()
    await page.get_by_label("Data Science Partners").check()
    await page.get_by_role("button", name="Invite").click()
    await page.get_by_text("Invited 2 sellers.").wait_for()
    shortlist = page.locator("#shortlist")
    assert await shortlist.locator(".chip.invited").count() == 2
    # The invited ones have no checkbox any more; the others still do.
    assert await page.get_by_label("Accessible Services Co").count() == 0
    assert await page.get_by_label("Python Cloud Builders Ltd").count() == 1
    await shot(page, "buyer-invite.png")
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT seller_id FROM invitations WHERE brief_id = $1", brief_id)
    assert {r["seller_id"] for r in rows} == set(market.seller_ids[1:3])


async def test_seller_answers_with_buttons_and_a_link(
    page: Any, market: Market, pool: asyncpg.Pool  # noqa: F811
) -> None:
    first, second = market.brief_ids[1], market.brief_ids[2]
    await store_shortlist(pool, first, [market.seller_id])
    await store_shortlist(pool, second, [market.seller_id])
    await sign_in(page, market.seller_token)
    assert page.url.endswith("/seller")
    card = page.locator(f"#opportunity-{first}")
    await card.get_by_label("Reason").select_option("timing")
    await card.get_by_role("button", name="Not for me").click()
    await page.get_by_text("Recorded: not for you.").wait_for()
    answered = await page.locator(f"#opportunity-{first}").inner_text()
    assert "Your answer: Not for me (Timing)." in answered
    await shot(page, "seller-answer.png")
    # The opportunity's own page (where alerts link to): change the answer.
    await page.locator(f"#opportunity-{first}").get_by_role("link").first.click()
    assert re.search(rf"/seller/opportunities/{first}$", page.url)
    await page.get_by_role("button", name="Applied").click()
    await page.get_by_text("Recorded: you applied.").wait_for()

    # A signed link from an alert, opened signed out: confirm, then recorded.
    await page.context.clear_cookies()
    token = Links(SECRET_KEY).response_token(market.seller_id, second, "interested")
    await page.goto(f"/respond/{token}")
    await page.get_by_role("button", name="Confirm: Interested").click()
    await page.get_by_role("heading", name="Answer recorded").wait_for()
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT brief_id, response, reason FROM responses WHERE seller_id = $1",
            market.seller_id,
        )
    assert {(r["brief_id"], r["response"], r["reason"]) for r in rows} == {
        (first, "applied", None), (second, "interested", None)}
