"""Admin pages for claims, outcomes and fitting rules on outcomes: over HTTP (who may open
them, CSRF, bad filters) and in Chromium (approve and reject claims, filter the funnel, fit
from outcomes into the what-if preview)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from models import claims, responses
from tests.web.conftest import Market, csrf_of, sign_in
from tests.web.test_browser import browser, page, shot  # noqa: F401  (fixtures)
from tests.web.test_browser import sign_in as browser_sign_in
from tests.web.test_outcome_pages import store_shortlist


async def _claims(pool: asyncpg.Pool, market: Market) -> tuple[int, int]:
    async with pool.acquire() as conn:
        category = await claims.create(conn, market.seller_ids[1], "category",
                                       {"category": "user-research-studios"}, None)
        sme = await claims.create(conn, market.seller_ids[2], "sme", {"sme": True}, None)
    assert category is not None and sme is not None
    return int(category["id"]), int(sme["id"])


async def test_only_admins_open_the_pages(client: TestClient, market: Market) -> None:
    for path in ("/admin/claims", "/admin/outcomes"):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/signin")
        for token in (market.buyer_token, market.seller_token):
            await sign_in(client, token)
            r = await client.get(path)
            assert r.status == 403, path
        client.session.cookie_jar.clear()


async def test_claim_decisions_need_an_admin_and_a_form_token(
    client: TestClient, market: Market, pool: asyncpg.Pool
) -> None:
    category, _ = await _claims(pool, market)
    url = f"/admin/claims/{market.seller_ids[1]}/{category}/approve"
    await sign_in(client, market.seller_token)
    r = await client.post(url, data={"csrf_token": "x"})
    assert r.status == 403
    await sign_in(client, market.admin_token)
    html = await (await client.get("/admin/claims")).text()
    assert "Category: User research studios" in html and "Is an SME" in html
    r = await client.post(url, data={"csrf_token": "wrong"})
    assert r.status == 403  # form expired
    # The claim must be this seller's.
    r = await client.post(f"/admin/claims/{market.seller_ids[2]}/{category}/approve",
                          data={"csrf_token": csrf_of(html)})
    assert r.status == 404
    r = await client.post(url, data={"csrf_token": csrf_of(html), "note": "framework checked"},
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/admin/claims?approved={category}"
    r = await client.post(url, data={"csrf_token": csrf_of(html)})
    assert r.status == 409
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT categories FROM sellers WHERE id = $1",
                                  market.seller_ids[1])
        note = await conn.fetchval("SELECT note FROM seller_claims WHERE id = $1", category)
    assert "user-research-studios" in row["categories"] and note == "framework checked"


async def test_outcomes_page_says_which_filter_is_wrong(
    client: TestClient, market: Market
) -> None:
    await sign_in(client, market.admin_token)
    r = await client.get("/admin/outcomes?since=yesterday")
    assert r.status == 422
    assert "since:" in await r.text()
    r = await client.get("/admin/outcomes?category=digital-outcomes&rules_version=1")
    assert r.status == 200


async def test_admin_works_through_claims_outcomes_and_a_fit_in_chromium(
    page: Any, market: Market, pool: asyncpg.Pool  # noqa: F811
) -> None:
    category, sme = await _claims(pool, market)
    # Outcomes to learn from: brief 0 was awarded to seller 0 (the seed) from a shortlist of
    # four; seller 1 said "not for me".
    await store_shortlist(pool, market.brief_ids[0], market.seller_ids[:4])
    async with pool.acquire() as conn:
        await responses.upsert(conn, market.brief_ids[0], market.seller_ids[1], "not_for_me",
                               "skills")
    await browser_sign_in(page, market.admin_token)

    await page.goto("/admin/claims")
    await page.locator(f"#claim-{category}").get_by_role("button", name="Approve").click()
    await page.get_by_text(f"Claim {category} approved.").wait_for()
    assert await page.locator(f"#claim-{category}").count() == 0
    await shot(page, "admin-claims.png")
    await page.locator(f"#claim-{sme}").get_by_role("button", name="Reject").click()
    await page.get_by_text(f"Claim {sme} rejected.").wait_for()
    await page.locator("#no-claims").wait_for()

    await page.goto("/admin/outcomes")
    total = page.locator("#funnel-total")
    # Seed: four briefs; brief 0 now has a stored shortlist of four (one SME-free seller set),
    # one "not for me" and its award.
    cells = await total.locator("td").all_inner_texts()
    assert cells[0] == "4"  # briefs
    assert cells[1].startswith("4")  # matched
    assert cells[4].startswith("1")  # not for me
    assert cells[7].startswith("1")  # awarded
    await page.get_by_label("Category").select_option("digital-specialists")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url("**/admin/outcomes?*category=digital-specialists*")
    cells = await page.locator("#funnel-total td").all_inner_texts()
    assert cells[0] == "0"
    await page.goto("/admin/outcomes")
    await shot(page, "admin-outcomes.png")

    await page.goto("/admin/rules")
    await page.get_by_role("button", name="Fit from outcomes").click()
    await page.get_by_text("Proposed weights fitted on 1 brief with outcomes").wait_for()
    proposal = await page.locator("#f-rules").input_value()
    assert '"weights"' in proposal
    await page.locator("#whatif").wait_for()
    for side in ("active", "candidate"):
        share = await page.locator(f"#sme-share-{side}").inner_text()
        assert share.endswith("%"), share
    await shot(page, "admin-fit.png")
