"""Open data: the Digital Marketplace CSV (header, rows), the OCDS release package (valid against
the vendored OCDS 1.1 schemas), caching (ETag, 304), streaming past one cursor page, and a
privacy check over every public byte of the service."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from api import performance
from api.keys import OPERATIONS
from models import open_data
from tests.api.conftest import MakeClient
from tests.outcome_seed import PRIVATE, seed

OCDS = Path(__file__).resolve().parents[1] / "data" / "ocds"

# The header of the Digital Marketplace's opportunity-data.csv (dos-opportunities-2016-2017.csv),
# vendored here in its order.
DM_HEADER = [
    "ID", "Opportunity", "Link", "Framework", "Category", "Specialist", "Organisation Name",
    "Buyer Domain", "Location Of The Work", "Published At", "Open For",
    "Expected Contract Length", "Applications from SMEs", "Applications from Large Organisations",
    "Total Organisations", "Status", "Winning supplier", "Size of supplier", "Contract amount",
    "Contract start date",
]


def package_validator() -> Draft4Validator:
    release = json.loads((OCDS / "release-schema.json").read_text())
    package = json.loads((OCDS / "release-package-schema.json").read_text())
    registry: Registry = Registry().with_resource(
        release["id"], Resource.from_contents(release, default_specification=DRAFT4)
    )
    Draft4Validator.check_schema(package)
    return Draft4Validator(package, registry=registry)


def release_validator() -> Draft4Validator:
    release = json.loads((OCDS / "release-schema.json").read_text())
    Draft4Validator.check_schema(release)
    return Draft4Validator(release)


async def test_opportunities_csv_layout_and_rows(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    seeded = await seed(client, pool, admin)
    r = await client.get("/open-data/opportunities.csv")  # no token
    assert r.status == 200 and r.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[0] == DM_HEADER
    b = seeded.briefs
    assert rows[1:] == [
        [str(b["b1"]), "Python service for tax credits", "", "", "digital-outcomes", "",
         "Ministry of Tests", "", "London", "2026-01-10", "355 days", "",
         "1", "0", "1", "awarded", "Alpha Digital Ltd", "sme", "", ""],
        [str(b["b2"]), "Data platform for pensions", "", "", "digital-outcomes", "",
         "Ministry of Tests", "", "London", "2026-01-20", "345 days", "",
         "0", "1", "1", "awarded", "Delta Digital Ltd", "large", "", ""],
        [str(b["b3"]), "Developer for benefits", "", "", "digital-specialists", "developer",
         "Ministry of Tests", "", "London", "2026-02-05", "47 weeks", "",
         "1", "0", "1", "live", "", "", "", ""],
        [str(b["b4"]), "Accessibility audit", "", "", "digital-outcomes", "",
         "Ministry of Tests", "", "London", "2026-04-02", "39 weeks", "",
         "0", "0", "0", "live", "", "", "", ""],
    ]  # the draft is not there


async def test_imported_brief_keeps_unknown_counts_empty(
    client: TestClient, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        seller = await conn.fetchval(
            "INSERT INTO sellers (name, name_key, sme) VALUES ('Imported Winner Ltd',"
            " 'importedwinner', false) RETURNING id")
        await conn.execute(
            "INSERT INTO briefs (external_id, title, organisation, category, role, status,"
            " published_at, budget, winner_seller_id) VALUES ('4242', 'Imported work', 'GDS',"
            " 'digital-specialists', 'delivery manager', 'awarded', '2017-03-01T00:00Z', 12500,"
            " $1)", seller)
    rows = list(csv.reader(io.StringIO(await (await client.get(
        "/open-data/opportunities.csv")).text())))
    assert rows[1][4:6] == ["digital-specialists", "deliveryManager"]
    # Applications happened on the old marketplace: unknown here, so empty rather than 0; the
    # contract amount is the one the importer kept.
    assert rows[1][12:] == ["", "", "", "awarded", "Imported Winner Ltd", "large", "12500", ""]


async def test_ocds_package_is_valid_and_complete(
    make_client: MakeClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    async with make_client(ocds_prefix="ocds-test01", public_url="https://market.example") as c:
        seeded = await seed(c, pool, admin)
        r = await c.get("/open-data/ocds.json")
        assert r.status == 200 and r.content_type == "application/json"
        package = orjson.loads(await r.read())
    errors = sorted(package_validator().iter_errors(package), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    for release in package["releases"]:  # each release against the release schema itself too
        assert not list(release_validator().iter_errors(release))
    assert package["version"] == "1.1"
    assert package["uri"] == "https://market.example/open-data/ocds.json"
    releases = package["releases"]
    tenders = [r for r in releases if r["tag"] == ["tender"]]
    awards = [r for r in releases if r["tag"] == ["award"]]
    b = seeded.briefs
    assert [t["ocid"] for t in tenders] == [f"ocds-test01-{b[k]}" for k in ("b1", "b2", "b3", "b4")]
    assert len(awards) == 2
    assert len({(r["ocid"], r["id"]) for r in releases}) == len(releases)
    b1 = tenders[0]
    assert b1["date"] == "2026-01-10T10:00:00Z"
    assert b1["tender"]["title"] == "Python service for tax credits"
    assert b1["tender"]["tenderPeriod"] == {"startDate": "2026-01-10T10:00:00Z",
                                            "endDate": "2026-12-31T23:59:59Z"}
    assert b1["buyer"]["name"] == "Ministry of Tests"
    assert b1["tender"]["items"][0]["classification"]["id"] == "digital-outcomes"
    a1 = next(a for a in awards if a["ocid"] == f"ocds-test01-{b['b1']}")
    assert a1["awards"][0]["date"] == "2026-02-01T12:00:00Z"
    assert a1["awards"][0]["suppliers"][0]["name"] == "Alpha Digital Ltd"
    supplier = next(p for p in a1["parties"] if "supplier" in p["roles"])
    assert supplier["details"] == {"scale": "sme"}
    assert supplier["id"] == a1["awards"][0]["suppliers"][0]["id"]
    a2 = next(a for a in awards if a["ocid"] == f"ocds-test01-{b['b2']}")
    assert next(p for p in a2["parties"] if "supplier" in p["roles"])["details"] == {
        "scale": "large"}
    assert package["publishedDate"] >= "2026-02-15T12:00:00Z"


async def test_schemas_catch_a_broken_release() -> None:
    """The validation can fail: a release without its ocid, or with a bad tag, is refused."""
    broken = {"version": "1.1", "releases": [{"id": "x", "date": "2026-01-01T00:00:00Z",
                                              "tag": [], "initiationType": "tender"}]}
    messages = [e.message for e in package_validator().iter_errors(broken)]
    assert any("ocid" in m for m in messages) and any("[]" in m for m in messages)


@pytest.mark.parametrize("path", ["/open-data/opportunities.csv", "/open-data/ocds.json"])
async def test_exports_are_cacheable(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str], path: str
) -> None:
    seeded = await seed(client, pool, admin)
    r = await client.get(path)
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    r2 = await client.get(path, headers={"If-None-Match": etag})
    assert r2.status == 304 and await r2.read() == b""
    r3 = await client.get(path, headers={"If-Modified-Since": modified})
    assert r3.status == 304
    r4 = await client.get(path, headers={"If-None-Match": '"something-else"'})
    assert r4.status == 200 and len(await r4.read()) > 0
    # Closing a brief changes the export: a new ETag, a full answer for the old one.
    r = await client.post(f"/api/v1/briefs/{seeded.briefs['b3']}/close",
                          headers=seeded.buyer_headers)
    assert r.status == 200, await r.text()
    r5 = await client.get(path, headers={"If-None-Match": etag})
    assert r5.status == 200 and r5.headers["ETag"] != etag


async def test_exports_stream_past_one_cursor_page(client: TestClient, pool: asyncpg.Pool) -> None:
    n = open_data.PAGE * 2 + 7
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO briefs (title, summary, category, status, published_at)"
            " SELECT 'Brief ' || i, repeat('words ', 40), 'digital-outcomes', 'published',"
            " now() FROM generate_series(1, $1) i", n)
    text = await (await client.get("/open-data/opportunities.csv")).text()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == n + 1 and rows[-1][1] == f"Brief {n}"
    package = orjson.loads(await (await client.get("/open-data/ocds.json")).read())
    assert len(package["releases"]) == n
    assert package["releases"][-1]["tender"]["title"] == f"Brief {n}"


def _public_paths(operations: list[Any]) -> list[str]:
    paths = []
    for op in operations:
        if op.roles is not None or op.method != "GET":
            continue
        if "{table" in op.path:
            paths += [f"/performance/{name}.csv" for name in performance.TABLES]
        else:
            assert "{" not in op.path, f"a public path with parameters to cover: {op.path}"
            paths.append(op.path)
    return paths


async def test_no_private_value_reaches_a_public_byte(
    client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    seeded = await seed(client, pool, admin)
    paths = _public_paths(client.server.app[OPERATIONS])  # type: ignore[union-attr]
    assert {"/api/v1/performance", "/open-data/opportunities.csv",
            "/open-data/ocds.json", "/performance/briefs.csv"} <= set(paths)
    everything = b""
    for path in paths:
        r = await client.get(path)
        assert r.status in (200, 503), (path, r.status)
        everything += await r.read()
    # The page itself is served with the web pages (tests/web); its bytes are checked there
    # too, and here its data source is: every figure the page shows comes from these.
    assert b"Alpha Digital Ltd" in everything  # a winner is public, as on the DM
    for value in seeded.private:
        assert value.encode() not in everything, value
    assert PRIVATE.encode() not in everything
    assert b"@example.com" not in everything
