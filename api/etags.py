"""Optimistic concurrency for sellers, briefs and alert preferences: every read and write of one
of them answers an `ETag` (a digest of the resource as the API shows it), and a write carrying
`If-Match` goes ahead only while the resource is still that version, else 412. The row is read
FOR UPDATE before the comparison, so two writers sending the same ETag cannot both win. A write
without If-Match is applied as before (last write wins)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from api.errors import ApiError, BadRequest

# RFC 9110: "*" or a comma-separated list of (weak or strong) entity tags.
IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"[\x21\x23-\x7e]*"(\s*,\s*(W/)?"[\x21\x23-\x7e]*")*)\s*$'


class PreconditionFailed(ApiError):
    status = 412
    code = "precondition_failed"


def etag_of(representation: Mapping[str, Any]) -> str:
    body = orjson.dumps(
        representation, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    )
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def check_if_match(request: web.Request, representation: Mapping[str, Any]) -> None:
    """412 unless If-Match is absent, `*`, or names the current version (400 when it is not
    a list of entity tags). Call after the body is validated: a malformed request is told so
    before it is told that it is stale."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    if not re.match(IF_MATCH_PATTERN, header):
        raise BadRequest(
            'If-Match must be "*" or entity tags as sent in ETag (e.g. "3f2a...")',
            code="bad_if_match",
        )
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
