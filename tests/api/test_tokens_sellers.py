"""Tokens (admin issues accounts) and sellers (admin creates, a seller edits its own)."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from models import audit
from tests.api.factories import User, make_seller
from tests.api.test_errors import error_of, fields_of

SELLER = {
    "name": "Acme Digital Ltd",
    "summary": "Service design and Python engineering for government.",
    "categories": ["digital-outcomes"],
    "skills": ["python", "service design"],
    "locations": ["Leeds"],
    "day_rate": 550,
    "sme": True,
}


async def events(pool: asyncpg.Pool, entity: str, entity_id: int) -> list[str]:
    async with pool.acquire() as conn:
        rows = await audit.list_events(conn, entity=entity, entity_id=str(entity_id))
    return [r["action"] for r in rows]


async def test_admin_issues_tokens_that_work(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.post("/api/v1/tokens", json={"role": "buyer", "name": "Ann",
                                                  "organisation": "HMRC"}, headers=admin)
    assert r.status == 201, await r.text()
    made = await r.json()
    assert made["role"] == "buyer" and made["token"] and made["account_id"]
    headers = {"Authorization": f"Bearer {made['token']}"}
    me = await (await client.get("/api/v1/me", headers=headers)).json()
    assert me == {"id": made["account_id"], "role": "buyer", "name": "Ann",
                  "organisation": "HMRC", "seller_id": None}
    assert "token.created" in await events(pool, "token", made["token_id"])
    # The owner may revoke its own token; afterwards it no longer works.
    r = await client.delete(f"/api/v1/tokens/{made['token_id']}", headers=headers)
    assert r.status == 204
    await error_of(await client.get("/api/v1/me", headers=headers), 401)
    await error_of(await client.delete(f"/api/v1/tokens/{made['token_id']}", headers=admin), 409)
    await error_of(await client.delete("/api/v1/tokens/999999", headers=admin), 404)


async def test_seller_tokens_need_a_real_seller(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.post("/api/v1/tokens", json={"role": "seller", "name": "S"}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"seller_id"}
    r = await client.post("/api/v1/tokens", json={"role": "seller", "name": "S",
                                                  "seller_id": 424242}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"seller_id"}
    r = await client.post("/api/v1/tokens", json={"role": "buyer", "name": "B",
                                                  "seller_id": 1}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"seller_id"}
    r = await client.post("/api/v1/tokens", json={"role": "boss", "name": "B"}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"role"}
    seller_id = await make_seller(pool)
    r = await client.post("/api/v1/tokens", json={"role": "seller", "name": "S",
                                                  "seller_id": seller_id}, headers=admin)
    assert r.status == 201


async def test_only_admins_issue_tokens(
    client: TestClient, buyer: User, seller: User
) -> None:
    body = {"role": "admin", "name": "me"}
    await error_of(await client.post("/api/v1/tokens", json=body), 401)
    for user in (buyer, seller):
        err = await error_of(await client.post("/api/v1/tokens", json=body, headers=user.headers),
                             403)
        assert err["code"] == "forbidden"
    # Someone else's token cannot be revoked by a non-admin.
    r = await client.delete("/api/v1/tokens/1", headers=buyer.headers)
    assert r.status in (403, 404)


async def test_seller_lifecycle(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.post("/api/v1/sellers", json=SELLER, headers=admin)
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["id"] and created["name"] == "Acme Digital Ltd" and created["sme"] is True
    # The same company under another spelling is a duplicate.
    r = await client.post("/api/v1/sellers", json={**SELLER, "name": "ACME Digital Limited"},
                          headers=admin)
    assert (await error_of(r, 409))["code"] == "conflict"
    seller_id = created["id"]
    got = await (await client.get(f"/api/v1/sellers/{seller_id}", headers=admin)).json()
    assert got == created
    r = await client.patch(f"/api/v1/sellers/{seller_id}", json={"day_rate": None,
                                                                 "skills": ["go"]}, headers=admin)
    assert r.status == 200
    patched = await r.json()
    assert patched["day_rate"] is None and patched["skills"] == ["go"]
    assert patched["summary"] == SELLER["summary"]
    # PUT replaces the profile.
    r = await client.put(f"/api/v1/sellers/{seller_id}", json={"name": "Acme Digital Ltd"},
                         headers=admin)
    replaced = await r.json()
    assert replaced["skills"] == [] and replaced["summary"] == ""
    assert await events(pool, "seller", seller_id) == [
        "seller.replaced", "seller.updated", "seller.created"
    ]
    # An explicit null for a non-nullable field is an error, not a wipe.
    r = await client.patch(f"/api/v1/sellers/{seller_id}", json={"name": None}, headers=admin)
    assert fields_of(await error_of(r, 422)) == {"name"}
    # Renaming onto another company's name: 409, and nothing changes.
    other = await make_seller(pool, name="Other Co")
    r = await client.patch(f"/api/v1/sellers/{other}", json={"name": "Acme Digital"},
                           headers=admin)
    await error_of(r, 409)
    assert await events(pool, "seller", other) == []
    await error_of(await client.patch("/api/v1/sellers/999999", json={"sme": False},
                                      headers=admin), 404)


async def test_seller_list_pages(
    client: TestClient, admin: dict[str, str], pool: asyncpg.Pool, buyer: User
) -> None:
    ids = [await make_seller(pool, name=f"Pager {i}") for i in range(5)]
    seen: list[int] = []
    cursor = 0
    while True:
        r = await client.get(f"/api/v1/sellers?limit=2&cursor={cursor}", headers=buyer.headers)
        page = await r.json()
        seen += [s["id"] for s in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == ids
    r = await client.get("/api/v1/sellers?q=pager%203", headers=admin)
    assert [s["name"] for s in (await r.json())["items"]] == ["Pager 3"]


async def test_who_may_edit_a_seller(
    client: TestClient, seller: User, other_seller: User, buyer: User
) -> None:
    own = f"/api/v1/sellers/{seller.seller_id}"
    r = await client.patch(own, json={"summary": "We do research."}, headers=seller.headers)
    assert r.status == 200 and (await r.json())["summary"] == "We do research."
    # A seller reads itself, not its competitors' profiles.
    assert (await client.get(own, headers=seller.headers)).status == 200
    await error_of(await client.get(own, headers=other_seller.headers), 403)
    await error_of(await client.patch(own, json={"sme": True}, headers=other_seller.headers), 403)
    await error_of(await client.patch(own, json={"sme": True}, headers=buyer.headers), 403)
    await error_of(await client.patch(own, json={"sme": True}), 401)
    # Only an admin (de)activates a seller; sending the unchanged flag back is fine.
    await error_of(await client.patch(own, json={"active": False}, headers=seller.headers), 403)
    r = await client.patch(own, json={"active": True}, headers=seller.headers)
    assert r.status == 200
    # Buyers browse sellers, sellers do not list them, nobody but admins creates them.
    assert (await client.get(own, headers=buyer.headers)).status == 200
    await error_of(await client.get("/api/v1/sellers", headers=seller.headers), 403)
    await error_of(await client.post("/api/v1/sellers", json=SELLER, headers=buyer.headers), 403)
