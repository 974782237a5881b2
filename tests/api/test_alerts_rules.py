"""Opportunities, alerts and preferences (a seller's own only), failed-alert re-drive, and
rules (admin only: versions, validation naming the field, activation with who/when/why)."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from api.keys import QUEUE
from models import alerts, matches
from tests.api.factories import User, make_brief
from tests.api.test_errors import error_of, fields_of
from tests.api.test_tokens_sellers import events


async def _published_with_alert(pool: asyncpg.Pool, buyer: User, seller: User) -> int:
    brief_id = await make_brief(pool, buyer)
    assert seller.seller_id is not None
    async with pool.acquire() as conn:
        await conn.execute("UPDATE briefs SET status = 'published', published_at = now()"
                           " WHERE id = $1", brief_id)
        await matches.replace_shortlist(conn, brief_id, [
            {"seller_id": seller.seller_id, "score": 0.7, "rank": 1,
             "explanation": {"summary": "python and accessibility"}}], 3)
        await alerts.create_many(conn, brief_id, [(seller.seller_id, "webhook", 0.7)])
    return brief_id


async def test_opportunities_and_alerts_are_the_sellers_own(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, other_seller: User,
    admin: dict[str, str],
) -> None:
    brief_id = await _published_with_alert(pool, buyer, seller)
    base = f"/api/v1/sellers/{seller.seller_id}"
    r = await client.get(base + "/opportunities", headers=seller.headers)
    assert r.status == 200, await r.text()
    items = (await r.json())["items"]
    assert [(i["brief_id"], i["rank"], i["score"]) for i in items] == [(brief_id, 1, 0.7)]
    assert items[0]["explanation"]["summary"] == "python and accessibility"
    r = await client.get(base + "/alerts", headers=seller.headers)
    listed = (await r.json())["items"]
    assert [(a["brief_id"], a["channel"], a["status"], a["attempts"]) for a in listed] == [
        (brief_id, "webhook", "pending", 0)]
    for path in ("/opportunities", "/alerts", "/alert-preferences"):
        await error_of(await client.get(base + path, headers=other_seller.headers), 403)
        await error_of(await client.get(base + path, headers=buyer.headers), 403)
        await error_of(await client.get(base + path), 401)
        assert (await client.get(base + path, headers=admin)).status == 200
    await error_of(await client.get("/api/v1/sellers/999999/alerts", headers=admin), 404)


async def test_alert_preferences(
    client: TestClient, pool: asyncpg.Pool, seller: User, other_seller: User
) -> None:
    url = f"/api/v1/sellers/{seller.seller_id}/alert-preferences"
    before = await (await client.get(url, headers=seller.headers)).json()
    assert before["frequency"] == "off" and before["webhook_secret_set"] is False
    prefs = {
        "frequency": "instant", "email": "bids@acme.example",
        "webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "s3cret-s3cret-s3cret",
        "categories": ["digital-outcomes"], "locations": ["London"], "keywords": ["python"],
        "exclude_keywords": ["catering"], "min_score": 0.3, "min_budget": 10000,
    }
    r = await client.put(url, json=prefs, headers=seller.headers)
    assert r.status == 200, await r.text()
    saved = await r.json()
    assert "webhook_secret" not in saved and saved["webhook_secret_set"] is True
    assert saved["keywords"] == ["python"] and saved["min_score"] == 0.3
    # Omitting the secret keeps it; everything else is replaced.
    r = await client.put(url, json={"frequency": "daily", "webhook_url": prefs["webhook_url"]},
                         headers=seller.headers)
    again = await r.json()
    assert again["webhook_secret_set"] is True and again["keywords"] == []
    assert again["frequency"] == "daily"
    async with pool.acquire() as conn:
        secret = await conn.fetchval(
            "SELECT webhook_secret FROM alert_preferences WHERE seller_id = $1", seller.seller_id)
    assert secret == prefs["webhook_secret"]
    bad = {"frequency": "hourly", "email": "not-an-email", "min_score": 2,
           "webhook_secret": "short"}
    r = await client.put(url, json=bad, headers=seller.headers)
    assert fields_of(await error_of(r, 422)) == {"frequency", "email", "min_score",
                                                 "webhook_secret"}
    r = await client.put(url, json={"frequency": "instant"}, headers=other_seller.headers)
    await error_of(r, 403)
    assert "preferences.updated" in await events(pool, "seller", seller.seller_id or 0)


async def test_private_webhooks_are_refused_unless_allowed(
    make_client: object, pool: asyncpg.Pool, seller: User
) -> None:
    url = f"/api/v1/sellers/{seller.seller_id}/alert-preferences"
    async with make_client(webhook_allow_private=False) as client:  # type: ignore[operator]
        for hook in ("http://a\u0000b.example/", "http://127.0.0.1/hook",
                     "http://localhost:8080/x", "http://10.1.2.3/", "ftp://example.com/x"):
            r = await client.put(url, json={"frequency": "instant", "webhook_url": hook},
                                 headers=seller.headers)
            assert fields_of(await error_of(r, 422)) == {"webhook_url"}, hook
        r = await client.put(url, json={"frequency": "instant",
                                        "webhook_url": "https://hooks.example.com/x",
                                        "webhook_secret": "s" * 16},
                             headers=seller.headers)
        assert r.status == 200


async def test_failed_alerts_and_redrive(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, admin: dict[str, str]
) -> None:
    brief_id = await _published_with_alert(pool, buyer, seller)
    async with pool.acquire() as conn:
        claimed = await alerts.claim_due(conn, limit=10, lock_seconds=30)
        assert [c["brief_id"] for c in claimed] == [brief_id]
        failed = await alerts.mark_failures(conn, [(claimed[0]["id"], "HTTP 500", None)])
    alert_id = failed[0]
    r = await client.get("/api/v1/alerts?status=failed", headers=admin)
    items = (await r.json())["items"]
    assert [(a["id"], a["status"], a["last_error"]) for a in items] == [
        (alert_id, "failed", "HTTP 500")]
    await error_of(await client.get("/api/v1/alerts?status=sent", headers=admin), 422)
    await error_of(await client.get("/api/v1/alerts", headers=seller.headers), 403)
    url = f"/api/v1/alerts/{alert_id}/redrive"
    await error_of(await client.post(url, headers=seller.headers), 403)
    r = await client.post(url, headers=admin)
    assert r.status == 200 and (await r.json())["status"] == "pending"
    # Delivery is asked for at once (after the commit), not left to the relay's next tick.
    queue = client.server.app[QUEUE].redis
    assert queue is not None
    assert "deliver_alerts" in [job.function for job in await queue.queued_jobs()]
    await error_of(await client.post(url, headers=admin), 409)
    await error_of(await client.post("/api/v1/alerts/999999/redrive", headers=admin), 404)
    assert await events(pool, "alert", alert_id) == ["alert.redriven"]


async def test_rules_versions_and_activation(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    overview = await (await client.get("/api/v1/rules", headers=admin)).json()
    assert overview["active_version"] == 0 and overview["versions"] == []
    assert "weights" in overview["active"]
    body = {"rules": {"weights": {"text": 2.0}, "shortlist_threshold": 0.1, "alert_threshold": 0.2,
                      "skill_aliases": {"k8s": "kubernetes"}}, "note": "more skills"}
    r = await client.post("/api/v1/rules", json=body, headers=admin)
    assert r.status == 201, await r.text()
    created = await r.json()
    version = created["version"]
    assert created["active"] is False and created["body"]["weights"]["text"] == 2.0
    r = await client.post(f"/api/v1/rules/{version}/activate", json={"note": "better recall"},
                          headers=admin)
    assert r.status == 200 and (await r.json())["active"] is True
    overview = await (await client.get("/api/v1/rules", headers=admin)).json()
    assert overview["active_version"] == version
    assert [v["version"] for v in overview["versions"]] == [version]
    got = await (await client.get(f"/api/v1/rules/{version}", headers=admin)).json()
    assert got["body"]["skill_aliases"] == {"k8s": "kubernetes"}
    # Who, when and why.
    r = await client.get(f"/api/v1/audit-events?entity=rules&entity_id={version}",
                         headers=admin)
    audit = (await r.json())["items"]
    assert [e["action"] for e in audit] == ["rules.activated", "rules.created"]
    assert audit[0]["data"] == {"note": "better recall", "previous": 0}
    assert audit[0]["actor_id"] and audit[0]["created_at"]
    # Create-and-activate in one call; the earlier version can be reactivated.
    r = await client.post("/api/v1/rules", json={**body, "activate": True}, headers=admin)
    assert (await r.json())["active"] is True
    r = await client.post(f"/api/v1/rules/{version}/activate", json={"note": "roll back"},
                          headers=admin)
    assert (await r.json())["active"] is True
    r = await client.post(f"/api/v1/rules/{version}/activate", json={}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"note"}
    await error_of(await client.post("/api/v1/rules/999/activate", json={"note": "x"},
                                     headers=admin), 404)


async def test_rules_validation_names_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    cases = {
        "rules.weights.text": {"weights": {"text": "heavy"}},
        "rules.shortlist_threshold": {"shortlist_threshold": 7},
        "rules.colour": {"colour": "blue"},
        "rules.synonyms.cloud.0": {"synonyms": {"cloud": ["a\u0000ws"]}},
    }
    for field, rules in cases.items():
        r = await client.post("/api/v1/rules", json={"rules": rules}, headers=admin)
        err = await error_of(r, 422)
        assert fields_of(err) == {field}, (field, err)
    r = await client.post("/api/v1/rules", json={"rules": []}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"rules"}


async def test_only_admins_touch_rules(
    client: TestClient, buyer: User, seller: User
) -> None:
    for user in (buyer, seller):
        for method, path, body in (
            ("GET", "/api/v1/rules", None),
            ("POST", "/api/v1/rules", {"rules": {}}),
            ("POST", "/api/v1/rules/1/activate", {"note": "x"}),
            ("POST", "/api/v1/rules/preview", {"rules": {}}),
            ("GET", "/api/v1/audit-events", None),
        ):
            r = await client.request(method, path, json=body, headers=user.headers)
            await error_of(r, 403)
            await error_of(await client.request(method, path, json=body), 401)


async def test_rules_preview(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, admin: dict[str, str]
) -> None:
    for _ in range(3):
        await _published_with_alert(pool, buyer, seller)
    r = await client.post("/api/v1/rules/preview",
                          json={"rules": {"shortlist_threshold": 0.99, "alert_threshold": 0.99},
                                "briefs": 2}, headers=admin)
    assert r.status == 200, await r.text()
    data = await r.json()
    assert data["total"]["briefs"] == 2 and len(data["briefs"]) == 2
    assert {"overlap_ratio", "gained", "lost", "alerts_active", "alerts_candidate"} <= set(
        data["briefs"][0])
    assert data["active_version"] == 0 and "candidate" in data["outcomes"]


async def test_audit_pages(client: TestClient, admin: dict[str, str]) -> None:
    for i in range(5):
        r = await client.post("/api/v1/sellers", json={"name": f"Audited {i}"}, headers=admin)
        assert r.status == 201
    seen: list[int] = []
    url = "/api/v1/audit-events?entity=seller&limit=2"
    while True:
        page = await (await client.get(url, headers=admin)).json()
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/audit-events?entity=seller&limit=2&cursor={page['next_cursor']}"
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
