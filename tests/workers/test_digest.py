"""Preferences and the daily digest: one e-mail per seller with every matched brief since the
last digest, none when there is nothing, never the same brief twice."""

from __future__ import annotations

import asyncpg
from arq.jobs import JobStatus

from models import alerts as alerts_repo
from models import preferences as prefs_repo
from tests.workers.conftest import (
    Smtp,
    make_seller,
    publish_brief,
    running_worker,
    settings_for,
    wait_for,
)
from workers.enqueue import create_queue


async def _run_job(redis, name: str) -> None:  # type: ignore[no-untyped-def]
    job = await redis.enqueue_job(name)
    assert job is not None

    async def done() -> bool:
        return await job.status() == JobStatus.not_found

    await wait_for(done)


async def _statuses(pool: asyncpg.Pool, seller_id: int) -> list[tuple[str, str]]:
    async with pool.acquire() as conn:
        return [
            (a["channel"], a["status"]) for a in await alerts_repo.list_for_seller(conn, seller_id)
        ]


async def test_daily_digest_and_pause(clean_db, pool: asyncpg.Pool, smtp: Smtp) -> None:
    async with pool.acquire() as conn:
        daily = await make_seller(conn, "Daily Ltd", {"frequency": "daily", "email": "d@d.test"})
        instant = await make_seller(conn, "Now Ltd", {"frequency": "instant", "email": "n@n.test"})
        paused = await make_seller(
            conn, "Paused Ltd", {"frequency": "instant", "email": "p@p.test", "paused": True}
        )
        b1, _ = await publish_brief(conn, title="Python data pipeline one")
        b2, _ = await publish_brief(conn, title="Python data pipeline two")

    settings = settings_for(clean_db, smtp.url)
    async with running_worker(settings):  # the relay picks up the outbox rows
        redis = await create_queue(clean_db.redis_url)
        try:

            async def matched() -> bool:
                return (
                    len(await _statuses(pool, daily)) == 2
                    and await _statuses(pool, instant) == [("email", "sent")] * 2
                )

            await wait_for(matched)
            assert await _statuses(pool, daily) == [("digest", "pending")] * 2
            assert await _statuses(pool, paused) == []
            assert {m["To"] for m in smtp.box.messages} == {"n@n.test"}

            await _run_job(redis, "send_daily_digests")
            digests = [m for m in smtp.box.messages if m["To"] == "d@d.test"]
            assert len(digests) == 1
            text = digests[0].get_content()
            assert "Python data pipeline one" in text and "Python data pipeline two" in text
            assert digests[0]["Subject"] == "2 new opportunities for you"
            assert digests[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert await _statuses(pool, daily) == [("digest", "sent")] * 2

            # Nothing new: no e-mail at all.
            await _run_job(redis, "send_daily_digests")
            assert len([m for m in smtp.box.messages if m["To"] == "d@d.test"]) == 1

            # Resume the paused seller; a third brief reaches it and waits for the next digest.
            async with pool.acquire() as conn:
                assert await prefs_repo.set_paused(conn, paused, False)
                b3, _ = await publish_brief(conn, title="Python data pipeline three")

            async def third() -> bool:
                return await _statuses(pool, paused) == [("email", "sent")]

            await wait_for(third)
            # The same day: the digest waits (at most one a day)...
            await _run_job(redis, "send_daily_digests")
            assert len([m for m in smtp.box.messages if m["To"] == "d@d.test"]) == 1
            # ...a day later it carries only the new brief.
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE alert_preferences SET last_digest_at = now() - interval '1 day'"
                )
            await _run_job(redis, "send_daily_digests")
        finally:
            await redis.aclose()
    digests = [m for m in smtp.box.messages if m["To"] == "d@d.test"]
    assert len(digests) == 2
    text = digests[1].get_content()
    assert "Python data pipeline three" in text and "pipeline one" not in text
    # Every alert was carried exactly once by e-mail.
    assert all(n == 1 for n in smtp.box.by_alert.values())
    assert {b1, b2, b3}


async def test_digest_alerts_follow_a_switch_to_instant(
    clean_db, pool: asyncpg.Pool, smtp: Smtp
) -> None:
    """A brief matched while the seller was on the daily digest is sent at once when the seller
    switches to instant (the digest only collects sellers on daily: it would wait for ever)."""
    async with pool.acquire() as conn:
        seller = await make_seller(conn, "Switch Ltd", {"frequency": "daily", "email": "s@s.test"})
        await publish_brief(conn, title="Python data pipeline switched")
    async with running_worker(settings_for(clean_db, smtp.url)):

        async def waiting() -> bool:
            return await _statuses(pool, seller) == [("digest", "pending")]

        await wait_for(waiting)
        async with pool.acquire() as conn:
            await prefs_repo.upsert(conn, seller, {"frequency": "instant", "email": "s@s.test"})

        async def sent() -> bool:
            return await _statuses(pool, seller) == [("email", "sent")]

        await wait_for(sent)
    assert [m["To"] for m in smtp.box.messages] == ["s@s.test"]
    assert "Python data pipeline switched" in smtp.box.messages[0]["Subject"]
