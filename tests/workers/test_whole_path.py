"""The whole path on real servers: sellers with preferences, a published brief, a real arq
worker, a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import asyncio

import asyncpg
from arq.jobs import JobStatus

from models import alerts as alerts_repo
from models import matches as matches_repo
from tests.workers.conftest import (
    SECRET_KEY,
    Sink,
    Smtp,
    make_seller,
    publish_brief,
    running_worker,
    settings_for,
    wait_for,
    worker_config,
)
from workers.enqueue import create_queue, enqueue_outbox
from workers.links import Links


async def test_publish_to_delivery(clean_db, pool: asyncpg.Pool, sink: Sink, smtp: Smtp) -> None:
    async with pool.acquire() as conn:
        hook = await make_seller(
            conn,
            "Hook Ltd",
            {"frequency": "instant", "webhook_url": sink.url, "webhook_secret": "s3cret"},
        )
        mail = await make_seller(
            conn, "Mail Ltd", {"frequency": "instant", "email": "bids@mail.test"}
        )
        silent = await make_seller(conn, "Silent Ltd", None)  # never asked for alerts
        off = await make_seller(conn, "Off Ltd", {"frequency": "off", "email": "x@off.test"})
        unrelated = await make_seller(
            conn,
            "Studios Ltd",
            {"frequency": "instant", "email": "s@studio.test"},
            summary="User research studios with viewing rooms",
            categories=["user-research-studios"],
            skills=["user research"],
        )
        brief_id, outbox_id = await publish_brief(conn)
    sink.secrets[hook] = "s3cret"

    settings = settings_for(clean_db, smtp.url)
    async with running_worker(settings):
        redis = await create_queue(clean_db.redis_url)
        try:
            assert await enqueue_outbox(redis, pool, outbox_id, "match_brief", [brief_id])
        finally:
            await redis.aclose()

        async def delivered() -> bool:
            async with pool.acquire() as conn:
                counts = await alerts_repo.counts_by_status(conn, brief_id)
            return counts.get("sent", 0) == 2

        await wait_for(delivered)

    async with pool.acquire() as conn:
        shortlist = await matches_repo.list_for_brief(conn, brief_id)
        alerts = await alerts_repo.list_for_brief(conn, brief_id)
        done = await conn.fetchval(
            "SELECT done_at IS NOT NULL FROM outbox WHERE id = $1", outbox_id
        )
        mine = await matches_repo.list_for_seller(conn, hook)
    assert done
    shortlisted = {m["seller_id"] for m in shortlist}
    assert {hook, mail, silent, off} <= shortlisted and unrelated not in shortlisted
    assert all(m["explanation"].get("summary") for m in shortlist)
    assert [m["rank"] for m in shortlist] == sorted(m["rank"] for m in shortlist)
    assert mine and mine[0]["brief_id"] == brief_id
    # Only the two sellers who opted in get an alert; one row each, both sent on the first try.
    assert {(a["seller_id"], a["channel"], a["status"], a["attempts"]) for a in alerts} == {
        (hook, "webhook", "sent", 1),
        (mail, "email", "sent", 1),
    }

    hook_alert = next(a for a in alerts if a["seller_id"] == hook)
    assert dict(sink.delivered) == {str(hook_alert["id"]): 1}
    assert sink.bad_signatures == []
    body = sink.bodies[str(hook_alert["id"])]
    assert body["brief"]["id"] == brief_id and body["why_you"]

    assert len(smtp.box.messages) == 1
    msg = smtp.box.messages[0]
    assert msg["To"] == "bids@mail.test"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = msg["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://marketplace.test/unsubscribe/")
    assert Links(SECRET_KEY).verify_unsubscribe(link.rsplit("/", 1)[1]) == mail
    text = msg.get_content()
    assert "Python data pipeline on AWS" in text and "Why you:" in text


async def test_rerun_never_duplicates(clean_db, pool: asyncpg.Pool, sink: Sink) -> None:
    """The same match job twice (the relay and the API both enqueued it): one alert, one
    delivery."""
    async with pool.acquire() as conn:
        hook = await make_seller(
            conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url}
        )
        brief_id, outbox_id = await publish_brief(conn)
    settings = settings_for(clean_db, None)
    async with running_worker(settings):
        redis = await create_queue(clean_db.redis_url)
        try:
            await redis.enqueue_job("match_brief", outbox_id, brief_id)

            async def sent() -> bool:
                async with pool.acquire() as conn:
                    return (await alerts_repo.counts_by_status(conn, brief_id)).get("sent") == 1

            await wait_for(sent)
            job = await redis.enqueue_job("match_brief", outbox_id, brief_id)
            assert job is not None

            async def finished() -> bool:  # no result is kept: a finished job is not found
                return await job.status() == JobStatus.not_found

            await wait_for(finished)
            await asyncio.sleep(0.3)  # any delivery it started has had time to run
        finally:
            await redis.aclose()
    async with pool.acquire() as conn:
        alerts = await alerts_repo.list_for_seller(conn, hook)
    assert len(alerts) == 1
    assert sum(sink.delivered.values()) == 1


async def test_relay_enqueues_what_the_queue_lost(clean_db, pool: asyncpg.Pool, sink: Sink) -> None:
    """An outbox row that was never enqueued (Redis was down at publish) is processed."""
    async with pool.acquire() as conn:
        await make_seller(conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url})
        _, outbox_id = await publish_brief(conn)
    async with running_worker(settings_for(clean_db, None)):

        async def delivered() -> bool:
            return sum(sink.delivered.values()) == 1

        await wait_for(delivered, within=20)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT enqueued_at, done_at FROM outbox WHERE id = $1", outbox_id
        )
    assert row["enqueued_at"] is not None and row["done_at"] is not None


async def test_retry_with_backoff(clean_db, pool: asyncpg.Pool, sink: Sink) -> None:
    """A receiver answering 500 twice then 200: delivered once, on the third attempt, with the
    same idempotency key every time."""
    sink.behaviour = lambda key, n: 500 if n <= 2 else 200
    async with pool.acquire() as conn:
        seller = await make_seller(
            conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url}
        )
        brief_id, outbox_id = await publish_brief(conn)
    async with running_worker(settings_for(clean_db, None), worker_config(relay_every_seconds=30)):
        redis = await create_queue(clean_db.redis_url)
        try:
            await enqueue_outbox(redis, pool, outbox_id, "match_brief", [brief_id])
        finally:
            await redis.aclose()

        async def delivered() -> bool:
            return sum(sink.delivered.values()) == 1

        await wait_for(delivered, within=20)
        await wait_for(lambda: _status_is(pool, seller, "sent"), within=5)
        async with pool.acquire() as conn:
            alerts = await alerts_repo.list_for_seller(conn, seller)
    assert len(alerts) == 1
    assert alerts[0]["status"] == "sent" and alerts[0]["attempts"] == 3
    assert alerts[0]["last_error"] is None
    key = str(alerts[0]["id"])
    assert dict(sink.hits) == {key: 3} and dict(sink.delivered) == {key: 1}


async def _status_is(pool: asyncpg.Pool, seller_id: int, status: str) -> bool:
    async with pool.acquire() as conn:
        alerts = await alerts_repo.list_for_seller(conn, seller_id)
    return bool(alerts) and alerts[0]["status"] == status


async def test_failed_after_last_try_and_redrive(clean_db, pool: asyncpg.Pool, sink: Sink) -> None:
    state = {"up": False}
    sink.behaviour = lambda key, n: 200 if state["up"] else 503
    async with pool.acquire() as conn:
        seller = await make_seller(
            conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url}
        )
        await publish_brief(conn)
    async with running_worker(settings_for(clean_db, None), worker_config(max_attempts=2)):
        await wait_for(lambda: _status_is(pool, seller, "failed"), within=20)
        async with pool.acquire() as conn:
            failed = await alerts_repo.list_failed(conn)
            assert [a["seller_id"] for a in failed] == [seller]
            assert failed[0]["last_error"] == "HTTP 503 from receiver"
            assert failed[0]["attempts"] == 2
            state["up"] = True
            assert await alerts_repo.redrive(conn, failed[0]["id"])
            assert not await alerts_repo.redrive(conn, failed[0]["id"])  # not failed any more
        await wait_for(lambda: _status_is(pool, seller, "sent"), within=20)
    assert sum(sink.delivered.values()) == 1


async def test_cancelled_worker_finishes_in_flight(
    clean_db, pool: asyncpg.Pool, sink: Sink
) -> None:
    """Cancelled by its host process (`marketplace up` stopping): in-flight deliveries finish
    within the grace period instead of being cut off."""
    sink.behaviour = lambda key, n: 0.5
    async with pool.acquire() as conn:
        seller = await make_seller(
            conn, "Hook Ltd", {"frequency": "instant", "webhook_url": sink.url}
        )
        await publish_brief(conn)
    async with running_worker(settings_for(clean_db, None)):
        await wait_for(lambda: _hit(sink), within=20, every=0.02)
    # Leaving the block cancelled the worker while the receiver was still answering.
    assert await _status_is(pool, seller, "sent")
    assert sum(sink.delivered.values()) == 1


async def _hit(sink: Sink) -> bool:
    return sum(sink.hits.values()) >= 1
