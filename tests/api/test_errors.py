"""Every error is JSON {"error": {"code", "message", "details"}}; no input gives a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from models import accounts
from tests.api.factories import User, make_user


async def error_of(r: ClientResponse, status: int) -> dict[str, Any]:
    assert r.status == status, (r.status, await r.text())
    assert r.content_type == "application/json"
    body = await r.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def fields_of(error: dict[str, Any]) -> set[str]:
    return {d["field"] for d in error["details"]}


async def test_unknown_route_and_method(client: TestClient, admin: dict[str, str]) -> None:
    err = await error_of(await client.get("/api/v1/nothing-here", headers=admin), 404)
    assert err["code"] == "not_found"
    r = await client.delete("/api/v1/sellers", headers=admin)
    err = await error_of(r, 405)
    assert err["code"] == "method_not_allowed"
    assert "GET" in err["details"]["allowed"]


async def test_malformed_json_is_400(client: TestClient, admin: dict[str, str]) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    for raw in (b"{", b"{'name': 1}", b"\xff\xfe{}", b'{"name": "\\ud800"}', b""):
        err = await error_of(await client.post("/api/v1/sellers", data=raw, headers=headers), 400)
        assert err["code"] == "bad_json", raw


async def test_wrong_content_type_is_415(client: TestClient, admin: dict[str, str]) -> None:
    r = await client.post("/api/v1/sellers", data="name=x", headers={
        **admin, "Content-Type": "application/x-www-form-urlencoded"})
    assert (await error_of(r, 415))["code"] == "unsupported_media_type"


async def test_oversized_body_is_413(client: TestClient, admin: dict[str, str]) -> None:
    big = {"name": "Big", "summary": "x" * (1024 * 1024 + 10)}
    err = await error_of(await client.post("/api/v1/sellers", json=big, headers=admin), 413)
    assert err["code"] == "payload_too_large"


async def test_validation_names_the_fields(client: TestClient, admin: dict[str, str]) -> None:
    body = {
        "name": "",  # too short
        "categories": ["not a lot!"],  # not a category id
        "day_rate": "lots",  # wrong type
        "colour": "blue",  # unknown field
        "skills": ["ok"] * 101,  # list too long
    }
    err = await error_of(await client.post("/api/v1/sellers", json=body, headers=admin), 422)
    assert err["code"] == "validation_error"
    assert {"name", "categories.0", "day_rate", "colour", "skills"} <= fields_of(err)
    # A JSON array is not an object.
    err = await error_of(await client.post("/api/v1/sellers", json=[1], headers=admin), 422)
    assert fields_of(err) == {"body"}


async def test_control_characters_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    for name in ("nul\u0000byte", "bell\u0007", "new\nline"):
        r = await client.post("/api/v1/sellers", json={"name": name}, headers=admin)
        assert fields_of(await error_of(r, 422)) == {"name"}, name
    # Newlines and tabs are fine in free text, and injection-looking text is stored as text.
    text = "Line one\n\tLine two; DROP TABLE sellers; -- <script>alert(1)</script>"
    r = await client.post(
        "/api/v1/sellers", json={"name": "Robert'); DROP TABLE x;--", "summary": text},
        headers=admin,
    )
    assert r.status == 201, await r.text()
    assert (await r.json())["summary"] == text


async def test_bad_query_parameters(client: TestClient, admin: dict[str, str]) -> None:
    for query in ("limit=0", "limit=201", "limit=abc", "cursor=-1", "unknown=1", "limit=1&limit=2"):
        r = await client.get(f"/api/v1/sellers?{query}", headers=admin)
        await error_of(r, 422)


async def test_ids_out_of_range_are_404(client: TestClient, admin: dict[str, str]) -> None:
    for raw in ("0", "9223372036854775808", "9" * 5000):
        err = await error_of(await client.get(f"/api/v1/sellers/{raw}", headers=admin), 404)
        assert err["code"] == "not_found"
    await error_of(await client.get("/api/v1/sellers/abc", headers=admin), 404)


async def test_anonymous_and_bad_tokens_are_401(
    client: TestClient, pool: asyncpg.Pool, buyer: User
) -> None:
    r = await client.get("/api/v1/briefs")
    assert (await error_of(r, 401))["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer " + "x" * 5000):
        await error_of(await client.get("/api/v1/briefs", headers={"Authorization": header}), 401)
    # Expired token.
    expired = await make_user(pool, "buyer", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    await error_of(await client.get("/api/v1/briefs", headers=expired.headers), 401)
    # Revoked token.
    assert (await client.get("/api/v1/briefs", headers=buyer.headers)).status == 200
    async with pool.acquire() as conn:
        account = await accounts.authenticate(conn, buyer.token)
        assert account is not None and account.token_id is not None
        assert await accounts.revoke_token(conn, account.token_id)
    await error_of(await client.get("/api/v1/briefs", headers=buyer.headers), 401)


async def test_tokens_are_stored_hashed(pool: asyncpg.Pool, buyer: User) -> None:
    async with pool.acquire() as conn:
        stored = await conn.fetch("SELECT token_hash FROM tokens")
    assert all(bytes(r["token_hash"]) != buyer.token.encode() for r in stored)
    assert accounts.hash_token(buyer.token) in {bytes(r["token_hash"]) for r in stored}


async def test_request_id_is_echoed(client: TestClient) -> None:
    r = await client.get("/health/live", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = await client.get("/nope")
    assert len(r.headers["X-Request-Id"]) == 32
