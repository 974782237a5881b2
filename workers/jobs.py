"""arq jobs: match a published brief, deliver alerts in batches, send daily digests.

Jobs take ids, reload state and exit quietly when the record is gone (a job may run late,
twice, or after the record was deleted). All state that matters lives in PostgreSQL (outbox,
alerts), so a lost or repeated job is harmless: the relay re-enqueues what the queue lost and
every write is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from config import logs
from models import alerts as alerts_repo
from models import matches as matches_repo
from models import outbox as outbox_repo
from models import preferences as prefs_repo
from models.types import Brief
from workers import filters
from workers.context import Ctx, stopping
from workers.delivery import (
    DeliveryError,
    alert_payload,
    build_email,
    send_webhook,
)
from workers.results import ClaimBudget, Outcomes

log = logging.getLogger("workers.jobs")

SHORTLIST_SIZE = 50  # the stored shortlist holds at least this many matches


def _rule(rules: Any, name: str, default: Any) -> Any:
    return getattr(rules, name, default)


async def _load_brief(ctx: Ctx, brief_id: int) -> Brief | None:
    from models import briefs as briefs_repo

    async with ctx["pool"].acquire() as conn:
        row = await briefs_repo.get(conn, brief_id)
    if row is None or row["status"] != "published":
        return None
    return briefs_repo.row_to_brief(row)


FIRST_WAVE = 200  # a big fan-out alerts its best matches first, before scoring everyone
WAVE_GROWTH = 10  # then ten times as many, and so on up to every match
STORE_CHUNK = 1000  # matches (and their alerts) committed per transaction


async def _alert_rows(
    conn: Any, brief: Brief, matches: list[Any], rules: Any, max_alerts: int
) -> list[tuple[int, str, float]]:
    """(seller_id, channel, score) for the matched sellers who asked for this brief, best
    first, at most max_alerts."""
    threshold = float(_rule(rules, "alert_threshold", 0.0))
    candidates = [m for m in matches if m.score >= threshold]
    prefs = await prefs_repo.get_many(conn, [m.seller_id for m in candidates])
    rows: list[tuple[int, str, float]] = []
    for m in candidates:
        p = prefs.get(m.seller_id)
        if p is not None and filters.allows(p, brief, m.score):
            channel = filters.channel_for(p)
            assert channel is not None
            rows.append((m.seller_id, channel, float(m.score)))
            if len(rows) >= max_alerts:
                break
    return rows


def _kept(matches: list[Any], rules: Any) -> list[Any]:
    """What is stored of a brief's matches (best first): the shortlist a buyer reads (the
    best `shortlist_size`) and every match that reaches the alert threshold, so that each
    alerted seller sees the brief among its opportunities."""
    size = int(_rule(rules, "shortlist_size", SHORTLIST_SIZE))
    threshold = float(_rule(rules, "alert_threshold", 0.0))
    return [m for m in matches if m.rank <= size or m.score >= threshold]


def _waves(top_k: int, indexed: int) -> list[int]:
    waves = []
    k = FIRST_WAVE
    while k < top_k and k < indexed:
        waves.append(k)
        k *= WAVE_GROWTH
    return [*waves, top_k]


async def match_brief(
    ctx: Ctx, outbox_id: int, brief_id: int, request_id: str | None = None
) -> dict[str, Any]:
    """Score a published brief; store its shortlist and its alerts; then start delivery.

    A brief that may alert many sellers is stored in waves: the best 200 matches and their
    alerts first (delivery starts at once), then ten times as many, up to every match, so
    the first alert does not wait for ten thousand sellers to be scored, explained and
    stored. Every wave is idempotent (alerts are unique per brief and seller) and the outbox
    row is marked done with the last one, so a re-run after a crash changes nothing.

    `request_id`: the publishing request's id (outbox rows written before it was passed have
    none); every log line of this job carries it, and so do the alerts' delivery logs.
    """
    if request_id:
        logs.request_id.set(str(request_id))  # this job's own task: its context only
    started = time.perf_counter()
    brief = await _load_brief(ctx, brief_id)
    if brief is None:
        async with ctx["pool"].acquire() as conn:
            await outbox_repo.mark_done(conn, outbox_id)
        log.info("brief gone or not published; nothing to match", extra={"brief_id": brief_id})
        return {"brief_id": brief_id, "skipped": True}

    live = ctx["live"]
    top_k = max(SHORTLIST_SIZE, int(_rule(live.rules, "max_alerts_per_brief", 100)))
    waves = _waves(top_k, len(live))
    stored_version: int | None = None
    stored: set[int] = set()  # sellers whose match is stored
    done = 0
    rows: list[tuple[int, str, float]] = []
    new_alerts = 0
    for i, k in enumerate(waves):
        last = i == len(waves) - 1
        matches, rules, version = await live.match_versioned(brief, k)
        last = last or len(matches) < k  # fewer matches than asked: this is all of them
        kept = _kept(matches, rules)
        last = last or len(kept) < len(matches)  # the rest is neither shortlisted nor alerted
        matches = kept
        max_alerts = int(_rule(rules, "max_alerts_per_brief", 100))
        async with ctx["pool"].acquire() as conn:
            rows = await _alert_rows(conn, brief, matches, rules, max_alerts)
        if version != stored_version:  # first wave, or the rules changed meanwhile
            fresh, stored_version, replace = matches, version, True
            stored = set()
        else:
            # Equal scores may come back in another order from a larger top_k: store the
            # sellers not stored yet, and only fix the ranks of the others.
            fresh = [m for m in matches if m.seller_id not in stored]
            moved = [(m.seller_id, m.rank) for m in matches if m.seller_id in stored]
            async with ctx["pool"].acquire() as conn:
                await matches_repo.set_ranks(conn, brief_id, moved)
            replace = False
        # Stored in chunks, each with its own alerts, so delivery of the first chunk starts
        # while the next ones are written.
        for lo in range(0, len(fresh) + 1, STORE_CHUNK):
            chunk = fresh[lo : lo + STORE_CHUNK]
            final = last and lo + STORE_CHUNK >= len(fresh)
            stored.update(m.seller_id for m in chunk)
            sellers = {m.seller_id for m in chunk}
            chunk_rows = [r for r in rows if r[0] in sellers]
            async with ctx["pool"].acquire() as conn, conn.transaction():
                if replace:
                    await matches_repo.replace_shortlist(conn, brief_id, chunk, version)
                    replace = False
                else:
                    await matches_repo.add_to_shortlist(conn, brief_id, chunk, version)
                new = await alerts_repo.create_many(
                    conn, brief_id, chunk_rows, request_id=request_id
                )
                if final:
                    await outbox_repo.mark_done(conn, outbox_id)
            new_alerts += new
            if new:
                await kick_delivery(ctx, new)
            if final:
                break
        done = len(matches)
        if last:
            break
    log.info(
        "brief matched: %d shortlisted, %d alerts (%d new), rules v%s, %.0f ms",
        done,
        len(rows),
        new_alerts,
        stored_version,
        (time.perf_counter() - started) * 1000,
        extra={"brief_id": brief_id},
    )
    return {"brief_id": brief_id, "shortlisted": done, "alerts": len(rows), "new": new_alerts}


async def kick_delivery(ctx: Ctx, how_many: int = 1, *, defer: float | None = None) -> None:
    """Start enough delivery jobs for the work: several share a big fan-out (and, with several
    workers, spread it), each claiming batches with SKIP LOCKED."""
    config = ctx["config"]
    jobs = max(1, min(config.deliver_jobs_per_brief, math.ceil(how_many / config.batch_size)))
    for _ in range(jobs):
        try:
            await ctx["redis"].enqueue_job("deliver_alerts", _defer_by=defer)
        except Exception as exc:  # the relay cron kicks delivery for anything left due
            log.warning("could not enqueue delivery: %s", exc)
            return


# ---------------------------------------------------------------------------------------------
# Delivery


async def _send_one(ctx: Ctx, alert: dict[str, Any]) -> None:
    settings = ctx["settings"]
    if alert["channel"] == "webhook":
        body = orjson.dumps(alert_payload(alert, ctx["links"]))
        await send_webhook(
            ctx["http"],
            alert,
            body,
            config=ctx["config"],
            allow_private=settings.webhook_allow_private,
        )
    elif alert["channel"] == "email":
        if not alert.get("email"):
            raise DeliveryError("seller has no e-mail address any more", permanent=True)
        msg = build_email(
            [alert],
            to=alert["email"],
            mail_from=ctx["config"].mail_from,
            links=ctx["links"],
            digest=False,
        )
        await ctx["mailer"].send(msg)
    else:
        raise DeliveryError(f"unknown channel {alert['channel']!r}", permanent=True)


async def send_batch(
    ctx: Ctx, batch: list[dict[str, Any]], outcomes: Outcomes, *, budgeted: bool = True
) -> None:
    """Send claimed alerts concurrently (bounded by the worker-wide semaphore). If cancelled
    (shutdown), the alerts not finished are handed back at once instead of waiting for their
    lock to expire."""
    sem: asyncio.Semaphore = ctx["sem"]
    started: set[int] = set()
    finished: set[int] = set()

    budget: ClaimBudget | None = ctx.get("budget") if budgeted else None

    async def one(alert: dict[str, Any]) -> None:
        try:
            async with sem:
                started.add(alert["id"])
                try:
                    await _send_one(ctx, alert)
                except DeliveryError as exc:
                    failed.add(alert["id"])
                    outcomes.fail(alert, exc)
                except Exception as exc:  # a bug must not leave the alert locked
                    log.exception("sending alert failed", extra=_alert_extra(alert))
                    failed.add(alert["id"])
                    outcomes.fail(alert, DeliveryError(f"{type(exc).__name__}: {exc}"))
                else:
                    outcomes.ok(alert["id"])
                finished.add(alert["id"])
        finally:
            if budget is not None:
                await asyncio.shield(budget.release(1))

    failed: set[int] = set()
    tasks = [asyncio.create_task(one(a)) for a in batch]
    try:
        await asyncio.gather(*tasks)
        _log_batch(batch, failed)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        unfinished = [a["id"] for a in batch if a["id"] not in finished]
        await outcomes.flush()
        async with ctx["pool"].acquire() as conn:
            await alerts_repo.release(
                conn, unfinished, not_attempted=[i for i in unfinished if i not in started]
            )
        log.info("shutdown: handed back %d alerts", len(unfinished))
        raise


def _alert_extra(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {"alert_id": alert["id"], "brief_id": alert.get("brief_id"),
            "request_id": alert.get("request_id")}


def _log_batch(batch: list[dict[str, Any]], failed: set[int]) -> None:
    """One line per brief in the batch (not per alert: thousands a second), carrying the
    publishing request's id so a brief can be followed from publish to delivery."""
    per_brief: dict[tuple[Any, Any], list[int]] = {}
    for alert in batch:
        counts = per_brief.setdefault((alert.get("brief_id"), alert.get("request_id")), [0, 0])
        counts[alert["id"] in failed] += 1
    for (brief_id, rid), (sent, not_sent) in per_brief.items():
        log.info("alerts delivered: %d sent, %d not (retried later or failed)", sent, not_sent,
                 extra={"brief_id": brief_id, "request_id": rid})


async def deliver_alerts(ctx: Ctx) -> dict[str, int]:
    """Claim due instant alerts in batches and send them until none is due."""
    config = ctx["config"]
    outcomes: Outcomes = ctx["outcomes"]
    budget: ClaimBudget = ctx["budget"]
    claimed = 0
    while not stopping(ctx):
        slots = await budget.reserve(config.batch_size)
        if not slots:
            continue
        try:
            async with ctx["pool"].acquire() as conn:
                batch = await alerts_repo.claim_due(
                    conn, limit=slots, lock_seconds=config.lock_seconds
                )
        except BaseException:
            await budget.release(slots)
            raise
        await budget.release(slots - len(batch))  # each sent alert gives its own slot back
        if not batch:
            break
        claimed += len(batch)
        await send_batch(ctx, batch, outcomes)
    await outcomes.flush()
    if claimed:
        await _schedule_retry(ctx)
    return {"claimed": claimed}


async def _schedule_retry(ctx: Ctx) -> None:
    """Wake delivery when the earliest retry is due, instead of waiting for the relay tick."""
    async with ctx["pool"].acquire() as conn:
        wait = await alerts_repo.next_retry_in(conn)
    if wait is not None and wait < 600:
        await kick_delivery(ctx, 1, defer=wait + 0.05)


# ---------------------------------------------------------------------------------------------
# Daily digest


async def send_daily_digests(ctx: Ctx) -> dict[str, int]:
    """One e-mail per seller on the daily digest with every matched brief not sent yet.

    Each brief is one alert row (unique per brief and seller) that turns 'sent' with the digest
    that carried it, so no brief is ever in two digests or in a digest and an instant alert.
    """
    config = ctx["config"]
    sent = failed = 0
    async with ctx["pool"].acquire() as conn:
        sellers = await prefs_repo.digest_due_sellers(
            conn, min_interval_seconds=config.digest_interval_seconds
        )
    for seller_id in sellers:
        if stopping(ctx):
            break
        async with ctx["pool"].acquire() as conn:
            batch = await alerts_repo.claim_digest(
                conn, seller_id, lock_seconds=config.lock_seconds
            )
        if not batch or not batch[0].get("email"):
            continue
        msg = build_email(
            batch,
            to=batch[0]["email"],
            mail_from=config.mail_from,
            links=ctx["links"],
            digest=True,
        )
        ids = [a["id"] for a in batch]
        try:
            await ctx["mailer"].send(msg)
        except DeliveryError as exc:
            failed += 1
            outcomes = Outcomes(ctx)
            for alert in batch:
                outcomes.fail(alert, exc)
            await outcomes.flush()
            log.warning("digest failed: %s", exc, extra={"seller_id": seller_id})
            continue
        async with ctx["pool"].acquire() as conn, conn.transaction():
            await alerts_repo.mark_sent(conn, ids)
            await prefs_repo.mark_digest_sent(conn, seller_id)
        sent += 1
    return {"digests": sent, "failed": failed}
