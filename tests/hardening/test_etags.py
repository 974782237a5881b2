"""Twenty concurrent edits of one resource lose nothing silently: reads and writes answer an
ETag, and a write with a stale If-Match gets 412 (the first writer wins, the others are told)."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.hardening.conftest import Serve, World

EDITS = 20


async def _race(http: aiohttp.ClientSession, world: World, path: str, role: str,
                bodies: list[dict[str, object]], method: str = "PATCH") -> list[int]:
    url, h = world.url(path), world.headers(role)
    r = await http.get(url, headers=h)
    assert r.status == 200 and r.headers["ETag"]
    etag = r.headers["ETag"]
    answers = await asyncio.gather(*(
        http.request(method, url, json=body, headers={**h, "If-Match": etag})
        for body in bodies
    ))
    statuses = [a.status for a in answers]
    for a in answers:
        if a.status == 412:
            error = (await a.json())["error"]
            assert error["code"] == "precondition_failed" and a.headers["ETag"] != etag
        else:
            assert a.headers["ETag"] != etag
    return statuses


async def test_concurrent_edits_with_if_match_one_wins_the_rest_get_412(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        seller = f"/api/v1/sellers/{world.ids['seller']}"
        statuses = await _race(http, world, seller, "seller",
                               [{"skills": [f"skill {i}"]} for i in range(EDITS)])
        assert sorted(statuses) == [200] + [412] * (EDITS - 1), statuses
        brief = f"/api/v1/briefs/{world.ids['draft']}"
        statuses = await _race(http, world, brief, "buyer",
                               [{"summary": f"version {i}"} for i in range(EDITS)])
        assert sorted(statuses) == [200] + [412] * (EDITS - 1), statuses
        prefs = f"/api/v1/sellers/{world.ids['seller']}/alert-preferences"
        statuses = await _race(http, world, prefs, "seller",
                               [{"frequency": "daily", "email": f"e{i}@example.org"}
                                for i in range(EDITS)], method="PUT")
        assert sorted(statuses) == [200] + [412] * (EDITS - 1), statuses


async def test_etags_follow_the_resource(serve: Serve) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        url, h = world.url(f"/api/v1/briefs/{world.ids['draft']}"), world.headers("buyer")
        first = (await http.get(url, headers=h)).headers["ETag"]
        assert (await http.get(url, headers=h)).headers["ETag"] == first  # stable
        r = await http.patch(url, json={"title": "Changed"}, headers=h)  # no If-Match: applies
        assert r.status == 200 and r.headers["ETag"] != first
        assert (await http.get(url, headers=h)).headers["ETag"] == r.headers["ETag"]
        stale = await http.patch(url, json={"title": "Old view"}, headers={**h, "If-Match": first})
        assert stale.status == 412
        assert (await (await http.get(url, headers=h)).json())["title"] == "Changed"
        ok = await http.patch(url, json={"title": "New"},
                              headers={**h, "If-Match": f'W/{r.headers["ETag"]}, "other"'})
        assert ok.status == 200
        star = await http.patch(url, json={"title": "Any"}, headers={**h, "If-Match": "*"})
        assert star.status == 200
        for malformed in ("", "abc", '"a" "b"'):  # no entity tag: names no current version
            r = await http.patch(url, json={"title": "x"}, headers={**h, "If-Match": malformed})
            assert r.status == 412, malformed
        # A malformed body is told so before a stale If-Match is.
        r = await http.patch(url, json={"title": 5}, headers={**h, "If-Match": first})
        assert r.status == 422
