"""Open data, no sign-in: every published brief and award in the field's own formats.

- `GET /open-data/opportunities.csv`: the column layout of the UK Digital Marketplace's
  `opportunity-data.csv` (same header, same order), one row per published brief.
- `GET /open-data/ocds.json`: an Open Contracting Data Standard 1.1 release package: a `tender`
  release per published brief and an `award` release per award, ocids under
  MARKETPLACE_OCDS_PREFIX.

Both stream from a server-side cursor (models.open_data) in chunks, so memory stays flat
however many briefs there are, and both carry an ETag and Last-Modified computed from the same
database snapshot as the rows: a client that sends If-None-Match (or If-Modified-Since) gets
304 without a byte of the export being produced.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from api.keys import SETTINGS
from api.routing import Ctx, Operation
from models import open_data

# The header of the Digital Marketplace's opportunity-data.csv, in its order.
DM_COLUMNS = (
    "ID", "Opportunity", "Link", "Framework", "Category", "Specialist", "Organisation Name",
    "Buyer Domain", "Location Of The Work", "Published At", "Open For",
    "Expected Contract Length", "Applications from SMEs",
    "Applications from Large Organisations", "Total Organisations", "Status",
    "Winning supplier", "Size of supplier", "Contract amount", "Contract start date",
)

# Our statuses in the export's words: a brief still open is "live" there.
_DM_STATUS = {"published": "live"}
_TENDER_STATUS = {
    "published": "active", "closed": "complete", "awarded": "complete",
    "cancelled": "cancelled", "unsuccessful": "unsuccessful",
}
_CPV = re.compile(r"\d{8}(-\d)?")  # a CPV code, with or without its check digit
_CHUNK = 64 * 1024  # bytes gathered before each write to the socket
_FORMAT = "1"  # part of the ETag: bump when the shape of an export changes


def specialist(role: str) -> str:
    """'delivery manager' -> 'deliveryManager', the export's form (the importer reverses it)."""
    words = role.split()
    if not words:
        return ""
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])


def open_for(published: datetime | None, closes: date | None) -> str:
    """'2 weeks' / '10 days': the export's wording of how long a brief was open."""
    if published is None or closes is None:
        return ""
    days = (closes - published.astimezone(UTC).date()).days
    if days <= 0:
        return ""
    if days % 7 == 0:
        weeks = days // 7
        return f"{weeks} week" if weeks == 1 else f"{weeks} weeks"
    return f"{days} day" if days == 1 else f"{days} days"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def csv_row(row: asyncpg.Record | dict[str, Any]) -> list[str]:
    awarded = row["status"] == "awarded" and row["winner_name"] is not None
    imported = row["external_id"] is not None
    # Applications are counted from the responses recorded here; an imported brief's
    # applications happened elsewhere and are unknown, so its cells stay empty, not 0.
    applied, applied_sme = row["applied"], row["applied_sme"]
    published = row["published_at"]
    return [
        str(row["id"]),
        row["title"],
        "",  # Link: no public page per brief here
        "",  # Framework: not recorded
        row["category"],
        specialist(row["role"]),
        row["organisation"],
        "",  # Buyer Domain: not recorded
        row["location"],
        published.astimezone(UTC).date().isoformat() if published else "",
        open_for(published, row["closes_at"]),
        "",  # Expected Contract Length: not recorded
        "" if imported else str(applied_sme),
        "" if imported else str(applied - applied_sme),
        "" if imported else str(applied),
        _DM_STATUS.get(row["status"], row["status"]),
        row["winner_name"] if awarded else "",
        ("sme" if row["winner_sme"] else "large") if awarded else "",
        # The importer keeps an imported award's contract amount as the budget; a brief written
        # here has a budget estimate only, which is not a contract amount.
        _number(row["budget"]) if awarded and imported else "",
        "",  # Contract start date: not recorded
    ]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def buyer_party_id(prefix: str, organisation: str) -> str:
    # Same organisation, same id, in every release (OCDS party ids are per release, but a
    # stable id lets a reader join a buyer's releases). A digest keeps it short and unique.
    digest = hashlib.sha256(organisation.strip().lower().encode()).hexdigest()[:12]
    return f"{prefix}-buyer-{_slug(organisation)[:40]}-{digest}"


def supplier_party_id(prefix: str, seller_id: int) -> str:
    return f"{prefix}-seller-{seller_id}"


def ocds_releases(row: asyncpg.Record | dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The tender release of a published brief, and its award release when it was awarded."""
    ocid = f"{prefix}-{row['id']}"
    buyer: dict[str, Any] | None = None
    if row["organisation"]:
        buyer = {"id": buyer_party_id(prefix, row["organisation"]), "name": row["organisation"]}
    tender: dict[str, Any] = {
        "id": str(row["id"]),
        "title": row["title"],
        "status": _TENDER_STATUS.get(row["status"], "active"),
        "mainProcurementCategory": "services",
    }
    if row["summary"]:
        tender["description"] = row["summary"]
    criteria = []
    if row["essential_skills"]:
        criteria.append("Essential skills: " + "; ".join(row["essential_skills"]) + ".")
    if row["nice_to_have_skills"]:
        criteria.append("Nice-to-have skills: " + "; ".join(row["nice_to_have_skills"]) + ".")
    if criteria:
        tender["eligibilityCriteria"] = " ".join(criteria)
    if row["category"]:
        item: dict[str, Any] = {
            "id": "1",
            "description": row["role"] or row["category_label"] or row["category"],
            "classification": {
                # A marketplace whose categories are CPV codes says so, so that readers (our
                # own import-ocds too) take them as CPV; any other list is this marketplace's.
                "scheme": "CPV" if _CPV.fullmatch(row["category"]) else "x_marketplace_category",
                "id": row["category"],
                "description": row["category_label"] or row["category"],
            },
        }
        if row["location"]:
            item["deliveryLocations"] = [{"description": row["location"]}]
        tender["items"] = [item]
    published = row["published_at"]
    period: dict[str, Any] = {"startDate": _iso(published)}
    if row["closes_at"] is not None:
        period["endDate"] = f"{row['closes_at'].isoformat()}T23:59:59Z"
    tender["tenderPeriod"] = period

    def release(tag: str, date_: datetime, parties: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ocid": ocid, "id": f"{ocid}-{tag}", "date": _iso(date_), "tag": [tag],
            "initiationType": "tender", "language": "en",
        }
        if parties:
            out["parties"] = parties
        if buyer is not None:
            out["buyer"] = buyer
        out["tender"] = tender
        return out

    buyer_parties = [{**buyer, "roles": ["buyer"]}] if buyer is not None else []
    releases = [release("tender", published, buyer_parties)]
    if row["status"] == "awarded" and row["winner_id"] is not None:
        supplier = {"id": supplier_party_id(prefix, row["winner_id"]), "name": row["winner_name"]}
        award: dict[str, Any] = {
            "id": f"{row['id']}-award-1",
            "title": row["title"],
            "status": "active",
            "suppliers": [supplier],
        }
        # An award recorded here has its time. An imported one may have none (the Digital
        # Marketplace export records no award date): the award gets no date, none is invented,
        # and its release is dated by the only date the source gave, the brief's publication
        # (which is also the date the importer gave the winner's past work).
        when = row["awarded_at"] or published
        if row["awarded_at"] is not None:
            award["date"] = _iso(row["awarded_at"])
        party = {**supplier, "roles": ["supplier"],
                 "details": {"scale": "sme" if row["winner_sme"] else "large"}}
        awarded = release("award", when, [*buyer_parties, party])
        awarded["awards"] = [award]
        releases.append(awarded)
    return releases


def _etag(kind: str, tag: str, *extra: str) -> str:
    digest = hashlib.sha256("\n".join((kind, _FORMAT, tag, *extra)).encode()).hexdigest()
    return digest[:32]


def _not_modified(request: web.Request, etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110: If-None-Match wins when present; else If-Modified-Since."""
    if request.headers.get("If-None-Match") is not None:
        wanted = request.if_none_match or ()
        return any(e.value == etag or e.value == "*" for e in wanted)
    since = request.if_modified_since
    if since is not None and last_modified is not None:
        return last_modified.replace(microsecond=0) <= since
    return False


async def _stream(
    ctx: Ctx, content_type: str, chunks: AsyncIterator[bytes], etag: str,
    last_modified: datetime | None, filename: str,
) -> web.StreamResponse:
    headers = {
        "ETag": f'"{etag}"',
        # Revalidate every time: a 304 costs one small query, and the data changes any minute.
        "Cache-Control": "public, no-cache",
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    if _not_modified(ctx.request, etag, last_modified):
        return web.Response(status=304, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    response.charset = "utf-8"
    await response.prepare(ctx.request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def _csv_chunks(conn: asyncpg.Connection) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(DM_COLUMNS)
    async for row in open_data.published_briefs(conn):
        writer.writerow(csv_row(row))
        if buf.tell() >= _CHUNK:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


async def opportunities_csv(ctx: Ctx) -> web.StreamResponse:
    await open_data.snapshot(ctx.conn)
    v = await open_data.version(ctx.conn)
    return await _stream(
        ctx, "text/csv", _csv_chunks(ctx.conn), _etag("csv", v.tag), v.last_modified,
        "opportunities.csv",
    )


def package_head(settings_url: str, last_modified: datetime | None) -> dict[str, Any]:
    head: dict[str, Any] = {
        "uri": f"{settings_url}/open-data/ocds.json",
        "version": "1.1",
        "publisher": {"name": "Marketplace matcher", "uri": settings_url},
    }
    if last_modified is not None:
        # Generated on demand: the date of the last change to what the package holds.
        head["publishedDate"] = _iso(last_modified)
    return head


async def _ocds_chunks(
    conn: asyncpg.Connection, head: dict[str, Any], prefix: str
) -> AsyncIterator[bytes]:
    opening = orjson.dumps(head)
    parts = [opening[:-1], b',"releases":[']  # the head object, left open for the releases
    size, first = 0, True
    async for row in open_data.published_briefs(conn):
        for rel in ocds_releases(row, prefix):
            data = orjson.dumps(rel)
            parts.append(data if first else b"," + data)
            first = False
            size += len(data) + 1
        if size >= _CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield b"".join(parts)


async def ocds_json(ctx: Ctx) -> web.StreamResponse:
    settings = ctx.app[SETTINGS]
    await open_data.snapshot(ctx.conn)
    v = await open_data.version(ctx.conn)
    base = settings.base_url.rstrip("/")
    head = package_head(base, v.last_modified)
    return await _stream(
        ctx, "application/json",
        _ocds_chunks(ctx.conn, head, settings.ocds_prefix),
        _etag("ocds", v.tag, settings.ocds_prefix, base), v.last_modified, "ocds.json",
    )


ROUTES = [
    Operation(
        "GET", "/open-data/opportunities.csv", opportunities_csv,
        "Download every published brief as Digital Marketplace opportunity data", "open data",
        roles=None, response={"type": "string"}, content_type="text/csv", transaction=True,
        description="The column layout of the Digital Marketplace's opportunity-data.csv, one "
        "row per published brief; ETag and Last-Modified, 304 on If-None-Match.",
    ),
    Operation(
        "GET", "/open-data/ocds.json", ocds_json,
        "Download every published brief and award as an OCDS 1.1 release package", "open data",
        roles=None, response={"type": "object"}, transaction=True,
        description="A tender release per published brief and an award release per award; "
        "ETag and Last-Modified, 304 on If-None-Match.",
    ),
]
