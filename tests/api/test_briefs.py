"""Briefs: drafts, strict publishing (one transaction with audit and outbox, enqueued after
commit, 201 even without a queue), close, and the shortlist (live preview, then stored)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from models import matches, sellers
from tests.api.conftest import MakeClient, closed_port_url
from tests.api.factories import BRIEF_DEFAULTS, User, make_brief, make_seller
from tests.api.test_errors import error_of, fields_of
from tests.api.test_tokens_sellers import events
from tests.conftest import Servers


async def poll(fetch: Any, ready: Any, seconds: float = 5.0) -> Any:
    """Call `fetch` until `ready(result)` (the live index applies changes within a second)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await fetch()
        if ready(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_draft_lifecycle(client: TestClient, buyer: User, pool: asyncpg.Pool) -> None:
    r = await client.post("/api/v1/briefs", json={"title": "Just an idea"}, headers=buyer.headers)
    assert r.status == 201, await r.text()
    draft = await r.json()
    assert draft["status"] == "draft"
    assert draft["organisation"] == "Department for Work and Pensions"  # the buyer's
    url = f"/api/v1/briefs/{draft['id']}"
    r = await client.patch(url, json={"summary": "More words", "category": "digital-outcomes"},
                           headers=buyer.headers)
    assert r.status == 200 and (await r.json())["summary"] == "More words"
    got = await (await client.get(url, headers=buyer.headers)).json()
    assert got["category"] == "digital-outcomes"
    listed = await (await client.get("/api/v1/briefs?status=draft", headers=buyer.headers)).json()
    assert [b["id"] for b in listed["items"]] == [draft["id"]]
    # Drafts validate loosely, but still by type, and the category is one from the list (checked
    # against the database once the body is otherwise valid).
    r = await client.patch(url, json={"category": "cakes!", "max_day_rate": -1},
                           headers=buyer.headers)
    assert fields_of(await error_of(r, 422)) == {"category", "max_day_rate"}
    r = await client.patch(url, json={"category": "cakes"}, headers=buyer.headers)
    assert fields_of(await error_of(r, 422)) == {"category"}
    r = await client.post("/api/v1/briefs", json={"summary": "no title"}, headers=buyer.headers)
    assert fields_of(await error_of(r, 422)) == {"title"}
    assert await events(pool, "brief", draft["id"]) == ["brief.updated", "brief.created"]


async def test_publish_is_strict(client: TestClient, buyer: User, pool: asyncpg.Pool) -> None:
    r = await client.post("/api/v1/briefs", json={"title": "Thin"}, headers=buyer.headers)
    brief_id = (await r.json())["id"]
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    err = await error_of(r, 422)
    assert fields_of(err) == {"summary", "category", "location", "essential_skills"}
    # Nothing was written by the failed attempt.
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        assert await conn.fetchval("SELECT status FROM briefs WHERE id = $1", brief_id) == "draft"
    assert await events(pool, "brief", brief_id) == ["brief.created"]


async def test_publish_commits_status_audit_and_outbox_together(
    client: TestClient, buyer: User, pool: asyncpg.Pool, clean_db: Servers
) -> None:
    brief_id = await make_brief(pool, buyer)
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    assert r.status == 201, await r.text()
    published = await r.json()
    assert published["status"] == "published" and published["published_at"]
    async with pool.acquire() as conn:
        # xmin is the id of the transaction that wrote a row: one transaction wrote both.
        xids = {
            await conn.fetchval("SELECT xmin::text FROM briefs WHERE id = $1", brief_id),
            await conn.fetchval(
                "SELECT xmin::text FROM audit_events WHERE action = 'brief.published'"
                " AND entity_id = $1", str(brief_id)),
        }
        assert len(xids) == 1 and None not in xids
        # The outbox row was updated since (marked enqueued), so its xmin moved on; now() is
        # the transaction's start time, the same for every row written in it.
        times = {
            await conn.fetchval("SELECT published_at FROM briefs WHERE id = $1", brief_id),
            await conn.fetchval(
                "SELECT created_at FROM audit_events WHERE action = 'brief.published'"),
            await conn.fetchval("SELECT created_at FROM outbox"),
        }
        assert len(times) == 1
        row = await conn.fetchrow("SELECT id, job, enqueued_at FROM outbox")
    assert row["job"] == "match_brief" and row["id"] == published["outbox_id"]
    # Enqueued after commit: the arq job exists under the outbox id and the row says so.
    assert row["enqueued_at"] is not None
    redis = Redis.from_url(clean_db.redis_url)
    try:
        assert await redis.exists(f"arq:job:outbox:{row['id']}")
    finally:
        await redis.aclose()
    # Publishing twice is a conflict, and writes nothing more.
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    assert (await error_of(r, 409))["code"] == "conflict"
    r = await client.patch(f"/api/v1/briefs/{brief_id}", json={"title": "x"},
                           headers=buyer.headers)
    await error_of(r, 409)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
    # Close: published -> closed, once.
    r = await client.post(f"/api/v1/briefs/{brief_id}/close", headers=buyer.headers)
    assert r.status == 200 and (await r.json())["status"] == "closed"
    await error_of(await client.post(f"/api/v1/briefs/{brief_id}/close", headers=buyer.headers),
                   409)
    assert await events(pool, "brief", brief_id) == ["brief.closed", "brief.published"]


async def test_publish_answers_201_when_the_queue_is_down(
    make_client: MakeClient, buyer: User, pool: asyncpg.Pool
) -> None:
    brief_id = await make_brief(pool, buyer)
    async with make_client(redis_url=closed_port_url()) as client:
        started = asyncio.get_running_loop().time()
        r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
        took = asyncio.get_running_loop().time() - started
        assert r.status == 201, await r.text()
        assert took < 2.0
        health = await client.get("/health")
        assert health.status == 503
        assert (await health.json())["checks"]["queue"]["ok"] is False
        assert (await client.get("/health/ready")).status == 200
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT job, args, enqueued_at, done_at FROM outbox")
    # Committed but not enqueued: the relay cron will enqueue it when the queue is back. The
    # publishing request's id rides along (match and delivery logs carry it).
    assert row["job"] == "match_brief" and row["args"] == [brief_id, r.headers["X-Request-Id"]]
    assert row["enqueued_at"] is None


async def test_buyers_see_only_their_own_briefs(
    client: TestClient, buyer: User, other_buyer: User, seller: User, admin: dict[str, str],
    pool: asyncpg.Pool,
) -> None:
    brief_id = await make_brief(pool, buyer)
    base = f"/api/v1/briefs/{brief_id}"
    for method, path in (("GET", base), ("PATCH", base), ("POST", base + "/publish"),
                         ("POST", base + "/close"), ("GET", base + "/shortlist")):
        kwargs: dict[str, Any] = {"json": {"title": "mine now"}} if method == "PATCH" else {}
        r = await client.request(method, path, headers=other_buyer.headers, **kwargs)
        assert (await error_of(r, 404))["code"] == "not_found", (method, path)
        r = await client.request(method, path, headers=seller.headers, **kwargs)
        await error_of(r, 403)
        await error_of(await client.request(method, path, **kwargs), 401)
    listed = await (await client.get("/api/v1/briefs", headers=other_buyer.headers)).json()
    assert listed["items"] == []
    everything = await (await client.get("/api/v1/briefs", headers=admin)).json()
    assert [b["id"] for b in everything["items"]] == [brief_id]
    assert (await client.get(base, headers=admin)).status == 200


async def test_shortlist_preview_then_stored(
    client: TestClient, buyer: User, pool: asyncpg.Pool
) -> None:
    near = await make_seller(pool, name="Python Accessibility Co")
    far = await make_seller(pool, name="Catering Ltd", summary="Sandwiches and coffee",
                            skills=["catering"], categories=["user-research-studios"])
    brief_id = await make_brief(pool, buyer)
    url = f"/api/v1/briefs/{brief_id}/shortlist"

    async def fetch() -> dict[str, Any]:
        r = await client.get(url, headers=buyer.headers)
        assert r.status == 200, await r.text()
        return dict(await r.json())

    preview = await poll(fetch, lambda d: d["items"])
    assert preview["source"] == "preview" and preview["status"] == "draft"
    ids = [i["seller_id"] for i in preview["items"]]
    assert ids[0] == near and far not in ids
    top = preview["items"][0]
    assert top["seller_name"] == "Python Accessibility Co" and top["rank"] == 1
    assert 0 < top["score"] <= 1 and top["explanation"]["summary"]
    # The unsaved preview of the same text gives the same ranking, and stores nothing.
    r = await client.post("/api/v1/briefs/preview?limit=5", json=BRIEF_DEFAULTS,
                          headers=buyer.headers)
    assert r.status == 200, await r.text()
    assert [i["seller_id"] for i in (await r.json())["items"]] == ids
    # After publishing, the stored shortlist (written here as the worker would) is served.
    assert (await client.post(f"/api/v1/briefs/{brief_id}/publish",
                              headers=buyer.headers)).status == 201
    stored = await fetch()
    assert stored == {"items": [], "source": "stored", "rules_version": None,
                      "status": "published", "limit": 50, "offset": 0}
    async with pool.acquire() as conn:
        await matches.replace_shortlist(conn, brief_id, [
            {"seller_id": near, "score": 0.9, "rank": 1, "explanation": {"summary": "why"}},
        ], 0)
    stored = await fetch()
    assert stored["source"] == "stored" and stored["rules_version"] == 0
    assert stored["items"] == [{"seller_id": near, "seller_name": "Python Accessibility Co",
                                "score": 0.9, "rank": 1, "explanation": {"summary": "why"}}]


async def test_preview_names_follow_renames_and_deletes(
    client: TestClient, buyer: User, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    """Preview names come from the live index (no query per preview): a rename through the API
    shows within a second, and a deleted seller leaves the preview within a second."""
    near = await make_seller(pool, name="Python Accessibility Co")
    url = "/api/v1/briefs/preview?limit=5"

    async def fetch() -> dict[int, str]:
        r = await client.post(url, json=BRIEF_DEFAULTS, headers=buyer.headers)
        assert r.status == 200, await r.text()
        return {i["seller_id"]: i["seller_name"] for i in (await r.json())["items"]}

    assert (await poll(fetch, lambda d: near in d))[near] == "Python Accessibility Co"
    r = await client.patch(f"/api/v1/sellers/{near}", json={"name": "Renamed Co"}, headers=admin)
    assert r.status == 200, await r.text()
    started = asyncio.get_running_loop().time()
    assert (await poll(fetch, lambda d: d.get(near) == "Renamed Co"))[near] == "Renamed Co"
    assert asyncio.get_running_loop().time() - started < 1.5
    async with pool.acquire() as conn:  # no API deletes sellers; the repository does
        assert await sellers.delete(conn, near)
    assert near not in await poll(fetch, lambda d: near not in d)


async def test_preview_validates_and_needs_a_buyer(
    client: TestClient, buyer: User, seller: User
) -> None:
    r = await client.post("/api/v1/briefs/preview", json={"title": "", "summary": "python"},
                          headers=buyer.headers)
    assert r.status == 200
    r = await client.post("/api/v1/briefs/preview", json={"essential_skills": "python"},
                          headers=buyer.headers)
    assert fields_of(await error_of(r, 422)) == {"essential_skills"}
    r = await client.post("/api/v1/briefs/preview", json={}, headers=seller.headers)
    await error_of(r, 403)
