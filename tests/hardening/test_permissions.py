"""Permissions as a matrix: every endpoint, every role, the exact answer.

The table below is the whole permission model in one place; a reviewer reads it row by row.
Rules it encodes (api/auth.py): no token -> 401; a role that may never use an operation -> 403;
another seller's private resources -> 403 (seller ids are public); another buyer's brief -> 404
(brief ids reveal nothing). Each cell runs against fresh targets (a new draft, a new token, ...)
so that one role's change (publishing, revoking) never decides another role's answer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from models import accounts, briefs, categories, claims
from tests.api.factories import make_brief
from tests.hardening.conftest import ROLES, Serve, World

A, ADM, B, OB, S, OS = ROLES  # anonymous, admin, buyer, other_buyer, seller, other_seller

# Targets: {seller} is the seller role's own company, {draft}/{published} briefs of the buyer
# role, {token} one of the buyer role's tokens, {alert} a failed alert, {version} a rules version,
# {missing} an id that exists nowhere, {category} a new category, {claim} a pending claim of the
# seller role's company.
#                                                     anon admin buyer o.buy seller o.sel
MATRIX: dict[str, tuple[int, int, int, int, int, int]] = {
    "POST /api/v1/tokens":                              (401, 201, 403, 403, 403, 403),
    "DELETE /api/v1/tokens/{token}":                    (401, 204, 204, 403, 403, 403),
    "DELETE /api/v1/tokens/{missing}":                  (401, 404, 404, 404, 404, 404),
    "GET /api/v1/me":                                   (401, 200, 200, 200, 200, 200),
    "POST /api/v1/sellers":                             (401, 201, 403, 403, 403, 403),
    "GET /api/v1/sellers":                              (401, 200, 200, 200, 403, 403),
    "GET /api/v1/sellers/{seller}":                     (401, 200, 200, 200, 200, 403),
    "GET /api/v1/sellers/{missing}":                    (401, 404, 404, 404, 403, 403),
    "PUT /api/v1/sellers/{seller}":                     (401, 200, 403, 403, 200, 403),
    "PATCH /api/v1/sellers/{seller}":                   (401, 200, 403, 403, 200, 403),
    "GET /api/v1/sellers/{seller}/opportunities":       (401, 200, 403, 403, 200, 403),
    "GET /api/v1/sellers/{seller}/alerts":              (401, 200, 403, 403, 200, 403),
    "GET /api/v1/sellers/{seller}/alert-preferences":   (401, 200, 403, 403, 200, 403),
    "PUT /api/v1/sellers/{seller}/alert-preferences":   (401, 200, 403, 403, 200, 403),
    "POST /api/v1/briefs":                              (401, 201, 201, 201, 403, 403),
    "GET /api/v1/briefs":                               (401, 200, 200, 200, 403, 403),
    "GET /api/v1/briefs/{draft}":                       (401, 200, 200, 404, 403, 403),
    "GET /api/v1/briefs/{missing}":                     (401, 404, 404, 404, 403, 403),
    "PATCH /api/v1/briefs/{draft}":                     (401, 200, 200, 404, 403, 403),
    "POST /api/v1/briefs/{draft}/publish":              (401, 201, 201, 404, 403, 403),
    "POST /api/v1/briefs/{published}/close":            (401, 200, 200, 404, 403, 403),
    "GET /api/v1/briefs/{draft}/shortlist":             (401, 200, 200, 404, 403, 403),
    "GET /api/v1/briefs/{published}/shortlist":         (401, 200, 200, 404, 403, 403),
    "POST /api/v1/briefs/preview":                      (401, 200, 200, 200, 403, 403),
    "GET /api/v1/alerts":                               (401, 200, 403, 403, 403, 403),
    "POST /api/v1/alerts/{alert}/redrive":              (401, 200, 403, 403, 403, 403),
    "GET /api/v1/rules":                                (401, 200, 403, 403, 403, 403),
    "GET /api/v1/rules/{version}":                      (401, 200, 403, 403, 403, 403),
    "POST /api/v1/rules":                               (401, 201, 403, 403, 403, 403),
    "POST /api/v1/rules/{version}/activate":            (401, 200, 403, 403, 403, 403),
    "POST /api/v1/rules/preview":                       (401, 200, 403, 403, 403, 403),
    "GET /api/v1/audit-events":                         (401, 200, 403, 403, 403, 403),
    "GET /api/v1/categories":                           (401, 200, 200, 200, 200, 200),
    "GET /api/v1/categories/{category}":                (401, 200, 200, 200, 200, 200),
    "POST /api/v1/categories":                          (401, 201, 403, 403, 403, 403),
    "PUT /api/v1/categories/{category}":                (401, 200, 403, 403, 403, 403),
    "DELETE /api/v1/categories/{category}":             (401, 204, 403, 403, 403, 403),
    "GET /api/v1/claims":                               (401, 200, 403, 403, 403, 403),
    "GET /api/v1/sellers/{seller}/claims":              (401, 200, 403, 403, 200, 403),
    "POST /api/v1/sellers/{seller}/claims/{claim}/approve": (401, 200, 403, 403, 403, 403),
    "POST /api/v1/sellers/{seller}/claims/{claim}/reject":  (401, 200, 403, 403, 403, 403),
    "GET /api/v1/outcomes":                             (401, 200, 403, 403, 403, 403),
    # Nothing recorded yet to fit on: the admin is told so (422).
    "POST /api/v1/outcomes/fit":                        (401, 422, 403, 403, 403, 403),
    "GET /api/v1/openapi.json":                         (200, 200, 200, 200, 200, 200),
    "GET /health":                                      (200, 200, 200, 200, 200, 200),
    "GET /health/live":                                 (200, 200, 200, 200, 200, 200),
    "GET /health/ready":                                (200, 200, 200, 200, 200, 200),
    "GET /metrics":                                     (200, 200, 200, 200, 200, 200),
}

SELLER_BODY = {
    "summary": "Python and user research", "categories": ["digital-outcomes"],
    "skills": ["python"], "locations": ["London"], "day_rate": 500,
}
BRIEF_BODY = {
    "title": "Matrix brief", "summary": "A Python service", "category": "digital-outcomes",
    "location": "London", "essential_skills": ["python"], "nice_to_have_skills": [],
}


def _body(method: str, path: str) -> dict[str, Any] | None:
    unique = uuid.uuid4().hex[:8]
    bodies: dict[str, dict[str, Any]] = {
        "POST /api/v1/tokens": {"role": "buyer", "name": "New buyer"},
        "POST /api/v1/sellers": {"name": f"New Seller {unique}", **SELLER_BODY},
        "PUT /api/v1/sellers/{seller}": {"name": f"Renamed Seller {unique}", **SELLER_BODY},
        "PATCH /api/v1/sellers/{seller}": {"summary": "Changed summary"},
        "PUT /api/v1/sellers/{seller}/alert-preferences": {"frequency": "daily",
                                                            "email": "bids@example.com"},
        "POST /api/v1/briefs": BRIEF_BODY,
        "PATCH /api/v1/briefs/{draft}": {"summary": "Changed"},
        "POST /api/v1/briefs/preview": BRIEF_BODY,
        "POST /api/v1/rules": {"rules": {}, "note": "matrix"},
        "POST /api/v1/rules/{version}/activate": {"note": "matrix"},
        "POST /api/v1/rules/preview": {"rules": {}, "briefs": 5},
        "POST /api/v1/categories": {"id": f"new-{unique}", "label": "New category"},
        "PUT /api/v1/categories/{category}": {"label": "Renamed category"},
        "POST /api/v1/outcomes/fit": {},
    }
    return bodies.get(f"{method} {path}")


async def _draft(world: World) -> int:
    return await make_brief(world.pool, world.users[B])


async def _published(world: World) -> int:
    brief_id = await _draft(world)
    async with world.pool.acquire() as conn:
        await briefs.publish(conn, brief_id)
    return brief_id


async def _token(world: World) -> int:
    async with world.pool.acquire() as conn:
        return (await accounts.create_token(conn, world.users[B].account_id))[0]


async def _alert(world: World) -> int:
    brief_id = await _published(world)
    async with world.pool.acquire() as conn:
        return int(await conn.fetchval(
            "INSERT INTO alerts (brief_id, seller_id, channel, status, attempts)"
            " VALUES ($1, $2, 'email', 'failed', 8) RETURNING id",
            brief_id, world.ids["seller"],
        ))


async def _category(world: World) -> str:
    category_id = f"matrix-{uuid.uuid4().hex[:8]}"
    async with world.pool.acquire() as conn:
        await categories.create(conn, category_id, "Matrix category", None)
    return category_id


async def _claim(world: World) -> int:
    """A pending claim of the seller role's company."""
    async with world.pool.acquire() as conn:
        row = await claims.create(conn, world.ids["seller"], "category",
                                  {"category": "digital-specialists"}, None)
        if row is None:  # the same claim is pending already
            return int(await conn.fetchval(
                "SELECT id FROM seller_claims WHERE seller_id = $1 AND status = 'pending'",
                world.ids["seller"]))
        return int(row["id"])


async def _fixed(key: str, world: World) -> int:
    return world.ids[key]


async def _missing(world: World) -> int:
    return 987_654_321


TARGETS: dict[str, Callable[[World], Awaitable[int | str]]] = {
    "category": _category,
    "claim": _claim,
    "draft": _draft,
    "published": _published,
    "token": _token,
    "alert": _alert,
    "missing": _missing,
    "seller": lambda w: _fixed("seller", w),
    "version": lambda w: _fixed("rules", w),
}


async def _call(http: aiohttp.ClientSession, world: World, role: str, key: str) -> int:
    method, template = key.split(" ", 1)
    path = template
    for name in re.findall(r"\{(\w+)\}", template):
        path = path.replace(f"{{{name}}}", str(await TARGETS[name](world)))
    async with http.request(method, world.url(path), json=_body(method, template),
                            headers=world.headers(role)) as r:
        if r.status >= 400:
            error = (await r.json())["error"]
            assert set(error) == {"code", "message", "details"}, (key, role, error)
        if r.status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer"), key
        return r.status


def _shape(key: str) -> str:
    return re.sub(r"\{\w+\}", "{}", key)


async def test_permission_matrix(serve: Serve) -> None:
    actual: dict[str, tuple[int, ...]] = {}
    async with serve() as world, aiohttp.ClientSession() as http:
        spec = await (await http.get(world.url("/api/v1/openapi.json"))).json()
        for key in MATRIX:
            actual[key] = tuple([await _call(http, world, role, key) for role in ROLES])
    wrong = {
        key: f"expected {MATRIX[key]}, got {got}" for key, got in actual.items()
        if got != MATRIX[key]
    }
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    # Every documented operation has a row (a new endpoint cannot slip in unreviewed).
    shape = {_shape(k) for k in MATRIX}
    documented = {_shape(f"{m.upper()} {p}") for p, ops in spec["paths"].items() for m in ops}
    assert documented <= shape, sorted(documented - shape)


# ---- tokens: hashed, revocable, expiring, compared in constant time --------------------------


async def test_tokens_are_stored_hashed_and_revocable(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        r = await http.post(world.url("/api/v1/tokens"), headers=world.headers(ADM),
                            json={"role": "buyer", "name": "Revocable"})
        created = await r.json()
        token, token_id = created["token"], created["token_id"]
        async with world.pool.acquire() as conn:
            stored = await conn.fetchrow("SELECT * FROM tokens WHERE id = $1", token_id)
        # Only the SHA-256 digest is stored: the plaintext appears in no column.
        assert bytes(stored["token_hash"]) == accounts.hash_token(token)
        assert token.encode() not in b"".join(
            v if isinstance(v, bytes) else str(v).encode() for v in stored.values()
        )
        me = {"Authorization": f"Bearer {token}"}
        assert (await http.get(world.url("/api/v1/me"), headers=me)).status == 200
        r = await http.delete(world.url(f"/api/v1/tokens/{token_id}"), headers=me)
        assert r.status == 204  # an account may revoke its own token
        r = await http.get(world.url("/api/v1/me"), headers=me)
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        r = await http.delete(world.url(f"/api/v1/tokens/{token_id}"), headers=world.headers(ADM))
        assert r.status == 409  # already revoked


async def test_tokens_expire(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        soon = datetime.now(UTC) + timedelta(seconds=1)
        async with world.pool.acquire() as conn:
            expired = await accounts.issue_token(
                conn, world.users[B].account_id, expires_at=datetime.now(UTC) - timedelta(1)
            )
            later = await accounts.issue_token(conn, world.users[B].account_id, expires_at=soon)
        r = await http.get(world.url("/api/v1/me"), headers={"Authorization": f"Bearer {expired}"})
        assert r.status == 401
        r = await http.get(world.url("/api/v1/me"), headers={"Authorization": f"Bearer {later}"})
        assert r.status == 200
        r = await http.post(world.url("/api/v1/tokens"), headers=world.headers(ADM), json={
            "role": "buyer", "name": "Past", "expires_at": "2001-01-01T00:00:00+00:00"})
        past = (await r.json())["token"]
        r = await http.get(world.url("/api/v1/me"), headers={"Authorization": f"Bearer {past}"})
        assert r.status == 401


async def test_bad_tokens_are_401_never_5xx(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        good = world.users[B].token
        for header in (f"Bearer {good[:-1]}", f"Bearer {good}x", "Bearer " + "a" * 5000,
                       "Basic dXNlcjpwYXNz", "Bearer", f"bearer  {good}  ", "Bearer \u00e9\u00e9",
                       "Bearer ' OR '1'='1"):
            r = await http.get(world.url("/api/v1/me"), headers={"Authorization": header})
            parts = header.split()
            # Scheme case and surrounding spaces do not matter; the token itself must be exact.
            expected = 200 if parts[0].lower() == "bearer" and parts[1:] == [good] else 401
            assert r.status == expected, header


def test_token_comparison_is_constant_time() -> None:
    """The final token check uses hmac.compare_digest on digests (never ==), and lookups are by
    SHA-256 of the token, so timing reveals nothing about stored tokens."""
    import inspect

    source = inspect.getsource(accounts.authenticate)
    assert "hmac.compare_digest" in source and "hash_token(token)" in source
