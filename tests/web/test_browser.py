"""Browser tests: Playwright (Python) driving Debian's Chromium against the real server.

Chromium comes from the OS (`apt-get install chromium`); Playwright's own browser download is
never used. Without /usr/bin/chromium the tests skip with a plain reason, or fail when CI is
set (CI must always run them). Each test saves a screenshot of its page in a temporary folder,
or in MARKETPLACE_SCREENSHOTS_DIR when set (to refresh the README's pictures:
`MARKETPLACE_SCREENSHOTS_DIR=docs/screenshots make test`), so a test run leaves the tree clean.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from models import briefs as briefs_repo
from models import matches as matches_repo
from models import preferences
from models import rules as rules_repo
from tests.conftest import Servers
from tests.web.conftest import Market, settings_for
from tests.workers.conftest import running_worker, worker_config

CHROMIUM = Path(os.environ.get("MARKETPLACE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("MARKETPLACE_SCREENSHOTS_DIR")
    or Path(tempfile.gettempdir()) / "marketplace-screenshots"
)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium not installed at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run the browser tests)")
    pytest.skip("Chromium not installed: apt-get install chromium")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Any, server: TestServer) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=str(server.make_url("/")).rstrip("/"), viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    pg = await context.new_page()
    try:
        yield pg
    finally:
        await context.close()


async def sign_in(page: Any, token: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


async def test_buyer_drafts_publishes_and_sees_the_shortlist(
    page: Any, market: Market, clean_db: Servers, pool: asyncpg.Pool
) -> None:
    await sign_in(page, market.buyer_token)
    assert page.url.endswith("/buyer/briefs")
    await page.get_by_role("link", name="Write a brief").first.click()
    await page.get_by_label("Title").fill("Python data platform for pensions")
    await page.get_by_label("Summary").fill(
        "Build Python data pipelines on AWS with PostgreSQL for pension statistics."
    )
    await page.get_by_label("Category").select_option("digital-outcomes")
    await page.get_by_label("Location").fill("London")
    await page.get_by_label("Essential skills").fill("python\npostgresql")
    # The preview updates while typing (debounced fetch of the preview fragment).
    preview = page.locator("#preview")
    await preview.get_by_text("Python Cloud Builders Ltd").wait_for()
    assert await preview.locator(".seller-card").count() >= 1
    assert "Matched skills" in await preview.inner_text()
    await page.get_by_role("button", name="Save draft").click()
    await page.get_by_text("Draft saved.").wait_for()
    brief_id = int(re.search(r"/buyer/briefs/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    await shot(page, "buyer.png")

    # Publishing enqueues match_brief; a real worker stores the shortlist; the page polls it.
    async with running_worker(settings_for(clean_db), worker_config()):
        await page.get_by_role("button", name="Publish").click()
        await page.get_by_text("Published.").wait_for()
        stored = page.locator("#shortlist ol.shortlist[data-stored]")
        await stored.wait_for(timeout=30_000)
    assert "Python Cloud Builders Ltd" in await stored.inner_text()
    async with pool.acquire() as conn:
        row = await briefs_repo.get(conn, brief_id)
        assert row is not None and row["status"] == "published"
        assert await matches_repo.count_for_brief(conn, brief_id) >= 1


async def test_seller_changes_alert_settings(
    page: Any, market: Market, pool: asyncpg.Pool
) -> None:
    await sign_in(page, market.seller_token)
    await page.get_by_role("navigation").get_by_role("link", name="Alert settings").click()
    await page.get_by_label("Daily digest e-mail").check()
    await page.get_by_label("E-mail address").fill("bids@python-cloud.example")
    await page.get_by_label("digital outcomes").check()
    await page.get_by_label("Keywords", exact=True).fill("python\npostgresql")
    await page.get_by_label("Exclude keywords").fill("java")
    await page.get_by_label("Minimum match score (0 to 1)").fill("0.2")
    # Keyboard: the save button is reachable with Tab and pressed with Enter.
    await page.get_by_label("Minimum match score (0 to 1)").focus()
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Save alert settings"
    await page.keyboard.press("Enter")
    await page.get_by_text("Alert settings saved.").wait_for()
    async with pool.acquire() as conn:
        prefs = await preferences.get(conn, market.seller_id)
    assert prefs is not None
    assert prefs["frequency"] == "daily" and prefs["email"] == "bids@python-cloud.example"
    assert prefs["keywords"] == ["python", "postgresql"] and prefs["exclude_keywords"] == ["java"]
    assert prefs["categories"] == ["digital-outcomes"] and prefs["min_score"] == 0.2
    await shot(page, "seller.png")


async def test_admin_previews_and_activates_a_rule_change(
    page: Any, market: Market, pool: asyncpg.Pool
) -> None:
    await sign_in(page, market.admin_token)
    assert page.url.endswith("/admin/rules")
    editor = page.get_by_label("Rules (JSON)")
    rules = await editor.input_value()
    assert '"weights"' in rules
    body = json.loads(rules)
    # Skills over wording, and a higher shortlist bar: some sellers drop out of the top 10.
    body["weights"].update(text=0.2, skills=6.0)
    body["shortlist_threshold"] = 0.2
    body["alert_threshold"] = 0.2
    await editor.fill(json.dumps(body, indent=2, sort_keys=True))
    await page.get_by_role("button", name="Preview").click()
    await page.locator("#whatif").wait_for()
    chart = page.locator("figure.chart-figure svg")
    await chart.wait_for()
    assert await page.locator("svg line[stroke-dasharray]").count() == 4  # threshold lines
    assert await page.locator("#per-brief tbody tr").count() == len(market.brief_ids)
    assert await page.locator("#lost li").count() >= 1
    quality = await page.locator("#quality").inner_text()
    assert "candidate" in quality and "active" in quality
    await shot(page, "admin.png")
    await page.get_by_label("Reason for activating").fill("Skills matter more than wording")
    await page.get_by_role("button", name="Activate").click()
    await page.get_by_text(re.compile(r"Version \d+ is now active")).wait_for()
    async with pool.acquire() as conn:
        active = await rules_repo.get_active(conn)
    assert active is not None and active[1]["weights"]["skills"] == 6.0
    assert await page.locator("#active-version").inner_text() == str(active[0])
