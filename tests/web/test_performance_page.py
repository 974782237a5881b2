"""The public dashboard /performance: no sign-in, no script, every chart with a title, a
description, a table of its numbers and a working CSV link; the numbers are the JSON's; no
private value on the page or in anything it links. In Chromium: the charts are images with
accessible names, the page works from the keyboard, and a screenshot is taken (see
tests/web/test_browser.py for where it goes)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.outcome_seed import PRIVATE, seed
from tests.web.conftest import Market
from tests.web.test_browser import SCREENSHOTS, browser, page  # noqa: F401 (fixtures)


def _admin(market: Market) -> dict[str, str]:
    return {"Authorization": f"Bearer {market.admin_token}"}


async def test_page_is_public_static_and_agrees_with_the_json(
    client: TestClient, market: Market, pool: asyncpg.Pool
) -> None:
    seeded = await seed(client, pool, _admin(market))
    r = await client.get("/performance")  # no session cookie
    assert r.status == 200, await r.text()
    html = await r.text()
    assert "<script" not in html  # readable without JavaScript
    doc = await (await client.get("/api/v1/performance")).json()

    svgs = re.findall(r"<svg[^>]*>", html)
    assert len(svgs) == 7
    for tag in svgs:
        chart_id = re.search(r'id="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
        assert f'aria-labelledby="{chart_id}-title {chart_id}-desc"' in tag and 'role="img"' in tag
        assert f'<title id="{chart_id}-title">' in html and f'<desc id="{chart_id}-desc">' in html
    # One table of numbers per section of charts, plus the SME and category tables.
    assert html.count("<table") == 5 + 2
    total = doc["total"]
    assert re.search(rf'id="total-briefs">{total["briefs_published"]}<', html)
    assert re.search(
        rf'id="total-alerts">{total["alerts_sent"]} / {total["alerts_failed"]}<', html
    )
    # The month rows of the tables are the JSON's months.
    for month in doc["months"]:
        assert f'<th scope="row">{month["month"]}</th><td>{month["briefs_published"]}</td>' in html
    assert "Alpha Digital Ltd" not in html  # names never on the dashboard, only counts

    links = sorted(set(re.findall(r'href="(/performance/[a-z-]+\.csv)"', html)))
    assert len(links) == 7
    linked = b""
    for link in links:
        lr = await client.get(link)
        assert lr.status == 200 and lr.content_type == "text/csv", link
        linked += await lr.read()
    for path in ("/api/v1/performance", "/open-data/opportunities.csv", "/open-data/ocds.json"):
        assert f'href="{path}"' in html
        linked += await (await client.get(path)).read()
    everything = html.encode() + linked
    for value in seeded.private:
        assert value.encode() not in everything, value
    assert PRIVATE.encode() not in everything
    # The web fixture's other buyer has a draft: drafts stay private too.
    assert b"secret draft" not in everything


async def test_dashboard_in_chromium(
    page: Any, client: TestClient, market: Market, pool: asyncpg.Pool  # noqa: F811
) -> None:
    await seed(client, pool, _admin(market))
    await page.goto("/performance")
    await page.get_by_role("heading", name="How the marketplace performs").wait_for()
    # Each chart is an image with its title as accessible name.
    for name in ("Briefs published per month", "Alerts sent and failed per month",
                 "Seller responses per month", "Invitations and awards per month"):
        assert await page.get_by_role("img", name=name).count() == 1, name
    assert await page.get_by_role("img").count() == 7
    table = page.locator("#table-briefs")
    assert await table.locator("tbody tr").count() >= 4
    # Keyboard: the skip link comes first and moves to the content; the first CSV link is
    # reachable with Tab and its target answers.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to main content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("location.hash") == "#main"
    for _ in range(20):
        await page.keyboard.press("Tab")
        href = await page.evaluate("document.activeElement.getAttribute('href') || ''")
        if href.endswith(".csv"):
            break
    assert href == "/open-data/opportunities.csv" or href.startswith("/performance/")
    response = await page.request.get(href)
    assert response.ok
    # The top of the page (totals, the first charts and their table): the whole page is several
    # screens of tables, too tall to read as a picture in the README.
    await page.set_viewport_size({"width": 1100, "height": 1500})
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / "performance.png"), full_page=False)
