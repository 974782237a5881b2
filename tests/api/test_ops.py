"""Operations: health, metrics, the OpenAPI document, and a sweep that no operation answers 5xx
to junk from any role."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.api.conftest import MakeClient
from tests.api.factories import User, make_brief


async def test_health_endpoints(client: TestClient) -> None:
    r = await client.get("/health")
    assert r.status == 200
    body = await r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["queue"]["ok"]
    assert (await client.get("/health/live")).status == 200
    ready = await (await client.get("/health/ready")).json()
    assert ready["checks"]["index"]["ok"] is True


async def test_metrics(client: TestClient, admin: dict[str, str]) -> None:
    await client.get("/api/v1/sellers", headers=admin)
    await client.get("/api/v1/sellers/12345", headers=admin)
    await client.get("/no/such/route")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/api/v1/sellers",status="200"} 1.0' in text
    assert 'route="/api/v1/sellers/{id}",status="404"' in text
    assert 'route="unmatched",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "matcher_index_sellers" in text and "queue_depth" in text


async def test_openapi_is_valid_and_complete(client: TestClient) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.status == 200
    spec = await r.json()
    validate(spec)  # OpenAPI 3.1, schemas included
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    served = set()
    for route in client.app.router.routes():  # type: ignore[union-attr]
        path = route.resource.canonical if route.resource else ""
        # Everything the API serves (the open data and the performance CSVs too), not the
        # pages.
        api = ("/api/v1", "/health", "/metrics", "/open-data/", "/performance/")
        if path.startswith(api) and route.method != "HEAD":
            served.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), route.method))
    assert served and served == documented
    publish = spec["paths"]["/api/v1/briefs/{id}/publish"]["post"]
    assert publish["security"] == [{"bearer": []}]
    assert set(publish["responses"]) >= {"201", "401", "404", "409", "503"}
    create = spec["paths"]["/api/v1/sellers"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    seller_in = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert seller_in["additionalProperties"] is False and "name" in seller_in["required"]
    assert spec["paths"]["/health"]["get"]["security"] == []


JUNK: list[Any] = [{}, {"title": 1, "name": [], "rules": "x", "frequency": None}, [1, 2], "x"]


async def test_no_operation_answers_5xx(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, admin: dict[str, str]
) -> None:
    brief_id = await make_brief(pool, buyer)
    spec = await (await client.get("/api/v1/openapi.json")).json()
    callers = [{}, admin, buyer.headers, seller.headers]
    count = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            for ident in (str(brief_id), str(seller.seller_id), "1", "99999999"):
                url = path.replace("{id}", ident).replace("{version}", ident)
                for headers in callers:
                    for body in JUNK if method in ("post", "put", "patch") else [None]:
                        r = await client.request(method.upper(), url, json=body,
                                                 headers=headers, params={"limit": "7"})
                        assert r.status < 500 or url == "/health", (method, url, r.status)
                        if r.status >= 400:
                            assert "error" in await r.json(), (method, url)
                        count += 1
    assert count > 300


async def test_app_starts_and_serves_without_redis(make_client: MakeClient) -> None:
    from tests.api.conftest import closed_port_url

    async with make_client(redis_url=closed_port_url()) as client:
        assert (await client.get("/health/live")).status == 200
        assert (await client.get("/health")).status == 503
        assert (await client.get("/metrics")).status == 200


async def test_responses_match_the_documented_schemas(
    client: TestClient, pool: asyncpg.Pool, buyer: User, seller: User, admin: dict[str, str]
) -> None:
    from jsonschema import Draft202012Validator

    spec = await (await client.get("/api/v1/openapi.json")).json()
    brief_id = await make_brief(pool, buyer)
    r = await client.post("/api/v1/rules", json={"rules": {}, "note": "n"}, headers=admin)
    version = (await r.json())["version"]
    s = seller.seller_id
    checks = [
        ("/api/v1/sellers", "/api/v1/sellers", admin),
        ("/api/v1/sellers/{id}", f"/api/v1/sellers/{s}", admin),
        ("/api/v1/briefs", "/api/v1/briefs", buyer.headers),
        ("/api/v1/briefs/{id}", f"/api/v1/briefs/{brief_id}", buyer.headers),
        ("/api/v1/briefs/{id}/shortlist", f"/api/v1/briefs/{brief_id}/shortlist", buyer.headers),
        ("/api/v1/sellers/{id}/opportunities", f"/api/v1/sellers/{s}/opportunities", admin),
        ("/api/v1/sellers/{id}/alerts", f"/api/v1/sellers/{s}/alerts", admin),
        ("/api/v1/sellers/{id}/alert-preferences", f"/api/v1/sellers/{s}/alert-preferences",
         seller.headers),
        ("/api/v1/alerts", "/api/v1/alerts", admin),
        ("/api/v1/rules", "/api/v1/rules", admin),
        ("/api/v1/rules/{version}", f"/api/v1/rules/{version}", admin),
        ("/api/v1/audit-events", "/api/v1/audit-events", admin),
        ("/api/v1/me", "/api/v1/me", seller.headers),
        ("/health", "/health", {}),
    ]
    for template, url, headers in checks:
        r = await client.get(url, headers=headers)
        assert r.status == 200, (url, await r.text())
        schema = spec["paths"][template]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        root = {**schema, "components": spec["components"]}
        errors = list(Draft202012Validator(root).iter_errors(await r.json()))
        assert not errors, (url, [e.message for e in errors[:3]])
    # And an error body against the Error schema.
    r = await client.get("/api/v1/briefs")
    error_schema = {"$ref": "#/components/schemas/Error", "components": spec["components"]}
    Draft202012Validator(error_schema).validate(await r.json())
