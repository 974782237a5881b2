"""Optimistic concurrency for sellers, briefs and alert preferences: every read and write of one
of them answers an `ETag` (a digest of the resource as the API shows it), and a write carrying
`If-Match` goes ahead only while the resource is still that version, else 412. The row is read
FOR UPDATE before the comparison, so two writers sending the same ETag cannot both win. A write
without If-Match is applied as before (last write wins)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from api.errors import ApiError


class PreconditionFailed(ApiError):
    status = 412
    code = "precondition_failed"


def etag_of(representation: Mapping[str, Any]) -> str:
    body = orjson.dumps(
        representation, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    )
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def check_if_match(request: web.Request, representation: Mapping[str, Any]) -> None:
    """412 unless If-Match is absent, `*`, or names the current version (a value that is no
    entity tag names no version: 412 too, as RFC 9110 has it). Call after the body is
    validated: a malformed request is told so before it is told that it is stale."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    given = [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]
    if "*" in given:
        return
    current = etag_of(representation)
    if current not in given:
        raise PreconditionFailed(
            "the resource changed since you read it; read it again and re-apply your change",
            details={"etag": current},
            headers={"ETag": current},
        )


def with_etag(response: web.StreamResponse, representation: Mapping[str, Any]
              ) -> web.StreamResponse:
    response.headers["ETag"] = etag_of(representation)
    return response
