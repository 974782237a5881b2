"""The published schema and the server agree: bodies are validated strictly (what the schema
calls a date or a number is not taken from another JSON type), and the constraints the server
applies are written into the schema."""

from __future__ import annotations

import random

import aiohttp
import jsonschema

from matcher.rules import DEFAULT_WEIGHTS, SIGNALS, Rules, RulesError
from tests.hardening.conftest import Serve


async def test_bodies_are_strictly_typed(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        url, h = world.url("/api/v1/briefs"), world.headers("buyer")
        for wrong in ({"closes_at": 0}, {"closes_at": 1.5e9}, {"closes_at": True},
                      {"max_day_rate": "500"}, {"max_day_rate": True}, {"title": 5}):
            r = await http.post(url, json={"title": "Strict", **wrong}, headers=h)
            assert r.status == 422, wrong
            assert [d["field"] for d in (await r.json())["error"]["details"]] == [*wrong], wrong
        r = await http.post(url, json={"title": "Strict", "closes_at": "2027-01-31",
                                       "max_day_rate": 650}, headers=h)
        assert r.status == 201
        assert (await r.json())["closes_at"] == "2027-01-31"
        # JSON Schema counts 2.0 as an integer: so does the server.
        r = await http.post(world.url("/api/v1/tokens"), headers=world.headers("admin"),
                            json={"role": "seller", "name": "Integral",
                                  "seller_id": float(world.ids["seller"])})
        assert r.status == 201, await r.text()


async def test_spec_and_server_agree_on_dependent_fields(serve: Serve) -> None:
    """Constraints between fields are in the schema: seller_id with role seller only; a reason
    with not_for_me only; an award names a seller or says no_award; a date query is a date."""
    async with serve() as world, aiohttp.ClientSession() as http:
        spec = await (await http.get(world.url("/api/v1/openapi.json"))).json()
        schemas = spec["components"]["schemas"]
        assert "if" in schemas["TokenIn"] and "if" in schemas["ResponseIn"]
        assert len(schemas["AwardIn"]["oneOf"]) == 2
        admin = world.headers("admin")
        r = await http.post(world.url("/api/v1/tokens"), headers=admin,
                            json={"role": "buyer", "name": "B", "seller_id": world.ids["seller"]})
        assert r.status == 422
        r = await http.get(world.url("/api/v1/outcomes"), params={"since": "0"}, headers=admin)
        assert r.status == 422
        r = await http.get(world.url("/api/v1/outcomes"), params={"since": "2026-01-01"},
                           headers=admin)
        assert r.status == 200
        r = await http.get(world.url("/api/v1/categories/0"), headers=admin)
        assert r.status == 404
        params = spec["paths"]["/api/v1/categories/{category_id}"]["get"]["parameters"]
        assert params[0]["schema"]["type"] == "string"


def test_the_rules_schema_says_what_the_server_refuses() -> None:
    validator = jsonschema.Draft202012Validator(Rules.json_schema())
    rng = random.Random(15)
    cases = [{s: 0 for s in SIGNALS}, {s: 0 for s in SIGNALS if DEFAULT_WEIGHTS[s] > 0}]
    cases += [{s: rng.choice([0, 0, 0, 2]) for s in SIGNALS if rng.random() < 0.9}
              for _ in range(2000)]
    for weights in cases:
        in_spec = validator.is_valid({"weights": weights})
        try:
            Rules.from_dict({"weights": weights})
            accepted = True
        except RulesError:
            accepted = False
        assert in_spec == accepted, weights


async def test_the_live_spec_carries_the_rules_constraints(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        spec = await (await http.get(world.url("/api/v1/openapi.json"))).json()

    def refusals(node: object) -> list[dict[str, object]]:
        if isinstance(node, dict):
            found = [node["not"]] if isinstance(node.get("not"), dict) else []
            return found + [r for v in node.values() for r in refusals(v)]
        if isinstance(node, list):
            return [r for v in node for r in refusals(v)]
        return []

    assert any(set(r.get("required", [])) >= {"text", "skills"} for r in refusals(spec))
