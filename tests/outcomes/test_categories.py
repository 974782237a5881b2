"""Categories as an admin-managed list: who may read and change it, validation of briefs,
sellers, alert preferences and rules against it, and deletes refused while in use."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from tests.api.factories import User, make_brief, make_seller
from tests.api.test_errors import error_of, fields_of
from tests.api.test_tokens_sellers import events

URL = "/api/v1/categories"


async def test_everyone_signed_in_reads_only_admins_change(
    client: TestClient, admin: dict[str, str], buyer: User, seller: User
) -> None:
    for headers in (admin, buyer.headers, seller.headers):
        r = await client.get(URL, headers=headers)
        assert r.status == 200
        ids = [c["id"] for c in (await r.json())["items"]]
        assert set(ids) == {"digital-outcomes", "digital-specialists",
                            "user-research-participants", "user-research-studios"}
    await error_of(await client.get(URL), 401)
    body = {"id": "cloud-hosting", "label": "Cloud hosting"}
    for user in (buyer, seller):
        await error_of(await client.post(URL, json=body, headers=user.headers), 403)
        await error_of(await client.put(f"{URL}/digital-outcomes", json={"label": "x"},
                                        headers=user.headers), 403)
        await error_of(await client.delete(f"{URL}/digital-outcomes", headers=user.headers),
                       403)
    r = await client.get(f"{URL}/digital-outcomes", headers=seller.headers)
    assert (await r.json())["label"] == "Digital outcomes"
    await error_of(await client.get(f"{URL}/no-such", headers=seller.headers), 404)


async def test_admin_manages_the_list(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.post(URL, json={"id": "72000000-5", "label": "IT services (CPV)"},
                          headers=admin)
    assert r.status == 201, await r.text()
    r = await client.post(URL, json={"id": "72200000-7", "label": "Software programming",
                                     "parent_id": "72000000-5"}, headers=admin)
    assert (await r.json())["parent_id"] == "72000000-5"
    await error_of(await client.post(URL, json={"id": "72000000-5", "label": "again"},
                                     headers=admin), 409)
    err = await error_of(await client.post(URL, json={"id": "bad id!", "label": "x"},
                                           headers=admin), 422)
    assert fields_of(err) == {"id"}
    err = await error_of(await client.post(URL, json={"id": "orphan", "label": "x",
                                                      "parent_id": "nowhere"}, headers=admin),
                         422)
    assert fields_of(err) == {"parent_id"}
    # A parent that descends from the category would be a loop.
    err = await error_of(await client.put(f"{URL}/72000000-5", json={
        "label": "IT services", "parent_id": "72200000-7"}, headers=admin), 422)
    assert err["details"][0]["type"] == "cycle"
    r = await client.put(f"{URL}/72000000-5", json={"label": "IT services"}, headers=admin)
    assert r.status == 200 and (await r.json())["label"] == "IT services"
    await error_of(await client.put(f"{URL}/missing", json={"label": "x"}, headers=admin), 404)
    # A parent with a child is in use.
    err = await error_of(await client.delete(f"{URL}/72000000-5", headers=admin), 409)
    assert err["details"]["uses"] == {"children": 1}
    assert (await client.delete(f"{URL}/72200000-7", headers=admin)).status == 204
    assert (await client.delete(f"{URL}/72000000-5", headers=admin)).status == 204
    await error_of(await client.delete(f"{URL}/72000000-5", headers=admin), 404)
    assert await events(pool, "category", "72000000-5") == [  # type: ignore[arg-type]
        "category.deleted", "category.updated", "category.created"]


async def test_briefs_sellers_preferences_and_rules_validate_against_the_list(
    client: TestClient, admin: dict[str, str], buyer: User, seller: User, pool: asyncpg.Pool
) -> None:
    brief = {"title": "Hosting", "category": "cloud-hosting"}
    err = await error_of(await client.post("/api/v1/briefs", json=brief,
                                           headers=buyer.headers), 422)
    assert fields_of(err) == {"category"} and err["details"][0]["type"] == "unknown_category"
    seller_body = {"name": "Cloudy Ltd", "categories": ["digital-outcomes", "cloud-hosting"],
                   "case_studies": [{"title": "Hosting", "category": "cloud-hosting"}]}
    err = await error_of(await client.post("/api/v1/sellers", json=seller_body,
                                           headers=admin), 422)
    assert fields_of(err) == {"categories.1", "case_studies.0.category"}
    prefs = {"frequency": "instant", "email": "a@example.org", "categories": ["cloud-hosting"]}
    prefs_url = f"/api/v1/sellers/{seller.seller_id}/alert-preferences"
    err = await error_of(await client.put(prefs_url, json=prefs, headers=seller.headers), 422)
    assert fields_of(err) == {"categories.0"}
    rules = {"rules": {"category_overrides": {"cloud-hosting": {"alert_threshold": 0.5}}}}
    err = await error_of(await client.post("/api/v1/rules", json=rules, headers=admin), 422)
    assert fields_of(err) == {"rules.category_overrides.cloud-hosting"}

    # Once the admin adds the category, all four accept it.
    r = await client.post(URL, json={"id": "cloud-hosting", "label": "Cloud hosting"},
                          headers=admin)
    assert r.status == 201
    r = await client.post("/api/v1/briefs", json=brief, headers=buyer.headers)
    assert r.status == 201
    brief_id = (await r.json())["id"]
    assert (await client.post("/api/v1/sellers", json=seller_body, headers=admin)).status == 201
    assert (await client.put(prefs_url, json=prefs, headers=seller.headers)).status == 200
    assert (await client.post("/api/v1/rules", json=rules, headers=admin)).status == 201

    # ...and it cannot be deleted while anything names it; the details say what.
    err = await error_of(await client.delete(f"{URL}/cloud-hosting", headers=admin), 409)
    assert err["details"]["uses"] == {"briefs": 1, "sellers": 1, "alert_preferences": 1,
                                      "rule_sets": 1}
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM briefs WHERE id = $1", brief_id)
        await conn.execute("DELETE FROM sellers WHERE name = 'Cloudy Ltd'")
        await conn.execute("DELETE FROM alert_preferences")
        await conn.execute("DELETE FROM rule_sets")
    assert (await client.delete(f"{URL}/cloud-hosting", headers=admin)).status == 204


async def test_publishing_needs_a_category(
    client: TestClient, buyer: User, pool: asyncpg.Pool
) -> None:
    await make_seller(pool)
    brief_id = await make_brief(pool, buyer, category="")
    r = await client.post(f"/api/v1/briefs/{brief_id}/publish", headers=buyer.headers)
    assert fields_of(await error_of(r, 422)) == {"category"}
