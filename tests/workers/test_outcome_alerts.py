"""Invitation and award alerts on the whole path: the API (with its pages) on a real HTTP server,
a real arq worker, a real webhook receiver (aiohttp) and a real SMTP server (aiosmtpd). The
signed answer links the alerts carry are followed against the same server: GET asks, POST
records."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import Settings
from models import accounts
from tests.workers.conftest import (
    SECRET_KEY,
    Sink,
    Smtp,
    make_seller,
    running_worker,
    settings_for,
    wait_for,
)

PUBLIC = "http://marketplace.test"
BRIEF = {
    "title": "Python data pipeline on AWS",
    "summary": "Build data pipelines in Python with PostgreSQL",
    "category": "digital-outcomes",
    "location": "London",
    "essential_skills": ["python", "postgresql"],
}


@pytest.fixture
async def api(clean_db) -> AsyncIterator[TestClient]:
    settings = Settings(
        database_url=clean_db.database_url,
        redis_url=clean_db.redis_url,
        data_dir=clean_db.data_dir,
        webhook_allow_private=True,
        secret_key=SECRET_KEY,  # the worker's: links signed there are checked here
        public_url=PUBLIC,
    )
    async with TestClient(TestServer(create_app(settings, pages=True))) as client:
        yield client


async def _token(pool: asyncpg.Pool, role: str, **kw: object) -> dict[str, str]:
    async with pool.acquire() as conn:
        account_id = await accounts.create_account(conn, role=role, name=role, **kw)  # type: ignore[arg-type]
        token = await accounts.issue_token(conn, account_id)
    return {"Authorization": f"Bearer {token}"}


def _path(url: str) -> str:
    """A link from an alert, as a path on the test server (the public host is a placeholder)."""
    assert url.startswith(PUBLIC + "/"), url
    return urlsplit(url).path


def _email_links(msg: EmailMessage) -> dict[str, str]:
    text = msg.get_content().replace("\r\n", "\n")  # as received over SMTP
    found = dict(re.findall(r"^\s+(Interested|Not for me|Applied|Details): (\S+)$", text, re.M))
    return found


async def _count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def test_invitations_awards_and_answer_links(
    clean_db, pool: asyncpg.Pool, api: TestClient, sink: Sink, smtp: Smtp
) -> None:
    async with pool.acquire() as conn:
        # Both asked for alerts but set a threshold no match reaches: only an invitation or an
        # award reaches them.
        hook = await make_seller(conn, "Hook Ltd", {
            "frequency": "instant", "webhook_url": sink.url, "webhook_secret": "s3cret-s3cret-16",
            "min_score": 1.0})
        mail = await make_seller(conn, "Mail Ltd", {
            "frequency": "instant", "email": "bids@mail.test", "min_score": 1.0})
    sink.secrets[hook] = "s3cret-s3cret-16"
    buyer = await _token(pool, "buyer", organisation="Department for Tests")

    async with running_worker(settings_for(clean_db, smtp.url)):
        r = await api.post("/api/v1/briefs", json=BRIEF, headers=buyer)
        brief_id = (await r.json())["id"]
        r = await api.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer)
        assert r.status == 201, await r.text()

        async def shortlisted() -> bool:
            return await _count(pool, "SELECT count(*) FROM matches WHERE brief_id = $1",
                                brief_id) >= 2

        await wait_for(shortlisted)
        assert await _count(pool, "SELECT count(*) FROM alerts") == 0  # below both thresholds

        r = await api.post(f"/api/v1/briefs/{brief_id}/invitations",
                           json={"seller_ids": [hook, mail]}, headers=buyer)
        assert (await r.json())["alerted"] == sorted([hook, mail])

        async def invitations_delivered() -> bool:
            return sum(sink.delivered.values()) == 1 and len(smtp.box.messages) == 1

        await wait_for(invitations_delivered)

        # The webhook: kind, event, a page the seller can open, signed answer links.
        (key, body), = sink.bodies.items()
        assert sink.bad_signatures == []
        assert (body["type"], body["kind"], body["seller_id"]) == (
            "opportunity.invited", "invited", hook)
        assert body["brief"]["url"] == f"{PUBLIC}/seller/opportunities/{brief_id}"
        assert set(body["responses"]) == {"interested", "not_for_me", "applied"}

        # The e-mail: subject, the same page, the answer links.
        msg = smtp.box.messages[0]
        assert msg["To"] == "bids@mail.test"
        assert msg["Subject"] == f"You are invited to apply: {BRIEF['title']}"
        links = _email_links(msg)
        assert links["Details"] == f"{PUBLIC}/seller/opportunities/{brief_id}"
        assert "/api/v1/briefs" not in msg.get_content()

        # Following a link: GET only asks (a mail scanner changes nothing), POST records.
        applied = _path(links["Applied"])
        page = await api.get(applied)
        assert page.status == 200 and "Confirm: Applied" in await page.text()
        assert await _count(pool, "SELECT count(*) FROM responses") == 0
        done = await api.post(applied)
        assert done.status == 200 and "Answer recorded" in await done.text()
        not_for_me = _path(body["responses"]["not_for_me"])
        done = await api.post(not_for_me, data={"reason": "timing"})
        assert done.status == 200
        async with pool.acquire() as conn:
            answers = {r["seller_id"]: (r["response"], r["reason"]) for r in await conn.fetch(
                "SELECT seller_id, response, reason FROM responses WHERE brief_id = $1",
                brief_id)}
            via = await conn.fetchval(
                "SELECT count(*) FROM audit_events WHERE action = 'response.recorded'"
                " AND data->>'via' = 'link'")
        assert answers == {mail: ("applied", None), hook: ("not_for_me", "timing")}
        assert via == 2
        # A link for one seller's answer cannot be turned into another's.
        token = applied.rsplit("/", 1)[1]
        forged = token[:3] + ("A" if token[3] != "A" else "B") + token[4:]
        assert (await api.post(f"/respond/{forged}")).status == 404

        # The award: the winner is told by e-mail, without answer links (answers are closed).
        r = await api.post(f"/api/v1/briefs/{brief_id}/award", json={"seller_id": mail},
                           headers=buyer)
        assert (await r.json())["winner_alerted"] is True

        async def award_delivered() -> bool:
            return len(smtp.box.messages) == 2

        await wait_for(award_delivered)
        won = smtp.box.messages[1]
        assert won["Subject"] == f"You won: {BRIEF['title']}"
        assert "The buyer awarded you this opportunity" in won.get_content()
        assert set(_email_links(won)) == {"Details"}
        # The old answer link now meets a closed brief: nothing changes.
        late = await api.post(applied)
        assert late.status == 409
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seller_id, kind, channel, status FROM alerts WHERE brief_id = $1", brief_id)
    assert {tuple(r) for r in rows} == {
        (hook, "invited", "webhook", "sent"),
        (mail, "invited", "email", "sent"),
        (mail, "awarded", "email", "sent"),
    }
    assert dict(sink.delivered) == {key: 1}
