"""what_if on the real database and a real live index: nothing sent, nothing stored, and the
figures follow from the two rule sets."""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from api.whatif import what_if
from live import LiveMatcher
from tests.conftest import Servers
from tests.web.conftest import Market


async def test_what_if_compares_active_and_candidate(
    pool: asyncpg.Pool, market: Market, clean_db: Servers
) -> None:
    live = LiveMatcher(pool, clean_db.database_url)
    await live.start()
    try:
        same = await what_if(pool, live, live.rules, last_n=50)
        assert same["total"]["briefs"] == len(market.brief_ids)
        assert same["total"]["mean_overlap_ratio"] == 1.0
        assert same["total"]["gained"] == same["total"]["lost"] == 0
        assert same["total"]["alerts_delta"] == 0
        assert same["outcomes"]["n_awarded"] == 1
        assert same["outcomes"]["active"] == same["outcomes"]["candidate"]

        # Nobody reaches an alert threshold of 1; a threshold of 0.99 on the shortlist empties it.
        strict = replace(live.rules, shortlist_threshold=0.99, alert_threshold=1.0)
        result = await what_if(pool, live, strict, last_n=2)
        assert result["total"]["briefs"] == 2
        assert result["total"]["alerts_candidate"] == 0
        assert result["total"]["alerts_delta"] == -result["total"]["alerts_active"]
        lost = {s for b in result["briefs"] for s in b["lost"]}
        assert lost and all(str(s) in result["seller_names"] for s in lost)
        assert all(b["gained"] == [] for b in result["briefs"])
        assert result["outcomes"]["candidate"]["mrr"] == 0.0
        capped = replace(live.rules, max_alerts_per_brief=1, alert_threshold=0.0)
        result = await what_if(pool, live, capped)
        assert all(b["alerts_candidate"] <= 1 for b in result["briefs"])
    finally:
        await live.stop()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        assert await conn.fetchval("SELECT count(*) FROM alerts") == 0
        assert await conn.fetchval("SELECT count(*) FROM rule_sets") == 0

