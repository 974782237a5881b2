from aiohttp.test_utils import TestClient


async def test_health_and_openapi(client: TestClient, admin: dict[str, str]) -> None:
    r = await client.get("/health")
    assert r.status == 200, await r.text()
    r = await client.get("/api/v1/openapi.json")
    assert r.status == 200
    r = await client.get("/api/v1/me", headers=admin)
    assert r.status == 200, await r.text()
