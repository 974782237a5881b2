"""The demo loader on a real database: first run creates sellers, accounts and briefs from the
Digital Marketplace slice in marketplace/demo/; a second run adds nothing."""

from __future__ import annotations

import asyncpg

from marketplace.demo_data import (
    DEMO_DIR,
    brief_fields,
    derived_profile,
    load_demo,
    read_awarded,
    sellers_from_rows,
)
from models import accounts


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
        for t in ("sellers", "briefs", "accounts", "tokens", "outbox")
    }


async def test_demo_loads_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        report = await load_demo(conn)
        assert not report.skipped
        first = await _counts(conn)
        assert report.sellers == first["sellers"] > 100  # ~200 winning suppliers
        assert report.briefs == 30 and report.published == 20
        own = await conn.fetchval(
            "SELECT count(*) FROM briefs WHERE buyer_account_id = $1", report.buyer_account_id
        )
        assert own == 30
        statuses = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM briefs WHERE buyer_account_id = $1"
                " GROUP BY status", report.buyer_account_id,
            )
        )
        assert statuses == {"published": 20, "draft": 10}
        # every published demo brief has a match job waiting in the outbox
        assert len(report.outbox) == 20 and first["outbox"] >= 20
        # sellers have text to match on: a summary, skills and case studies
        empty = await conn.fetchval(
            "SELECT count(*) FROM sellers WHERE summary = '' OR cardinality(skills) = 0"
            " OR jsonb_array_length(case_studies) = 0"
        )
        assert empty == 0
        # the demo tokens authenticate with the right roles
        buyer = await accounts.authenticate(conn, report.tokens["buyer"])
        seller = await accounts.authenticate(conn, report.tokens["seller"])
        assert buyer is not None and buyer.role == "buyer"
        assert seller is not None and seller.role == "seller"
        assert seller.seller_id == report.seller_id

        again = await load_demo(conn)
        assert again.skipped and again.sellers == 0 and not again.tokens
        assert await _counts(conn) == first


async def test_demo_skips_when_operator_has_sellers(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO sellers (name, name_key) VALUES ('Mine Ltd', 'mine')"
        )
        report = await load_demo(conn)
        assert report.skipped
        assert await conn.fetchval("SELECT count(*) FROM sellers") == 1
        assert await conn.fetchval("SELECT count(*) FROM briefs") == 0


def test_slice_is_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in DEMO_DIR.iterdir())
    assert total < 1_000_000
    provenance = (DEMO_DIR / "PROVENANCE.md").read_text()
    assert "Open Government Licence v3.0" in provenance


def test_brief_fields_from_a_real_page() -> None:
    raw = {
        "id": 1, "title": " Developer ", "Organisation the work is for": "HMRC",
        "Location": "No specific location, for example they can work remotely",
        "Summary of the work": "Build things", "Specialist role": "Developer",
        "Essential skills and experience": "• Python\n• Agile delivery\n",
        "Nice-to-have skills and experience": "", "Maximum day rate": "£1,650 per day",
        "Budget range": "",
    }
    fields = brief_fields(raw)
    assert fields["title"] == "Developer"
    assert fields["category"] == "digital-specialists" and fields["role"] == "developer"
    assert fields["location"] == "Offsite"
    assert fields["essential_skills"] == ["Python", "Agile delivery"]
    assert fields["nice_to_have_skills"] == []
    assert fields["max_day_rate"] == 1650.0 and fields["budget"] is None


def test_sellers_from_rows_group_spellings() -> None:
    rows = read_awarded(DEMO_DIR / "opportunities-awarded-2016-2017.csv")
    sellers = sellers_from_rows(rows)
    assert 100 < len(sellers) < len(rows)
    assert sum(len(s["case_studies"]) for s in sellers) == len(rows)
    profile = derived_profile(
        [{"title": "User research for a GOV.UK discovery", "organisation": "GDS",
          "category": "digital-outcomes", "role": "", "location": "London"}]
    )
    assert "user research" in profile["skills"] and "discovery" in profile["skills"]
    assert profile["locations"] == ["London"] and "GDS" in profile["summary"]
