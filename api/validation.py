"""Edge validation: body and query parsing into pydantic models, and the field types every
resource shares (length limits, no control characters, enums)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from api.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from api.limits import LIMITS, RequestTimeout

M = TypeVar("M", bound=BaseModel)

# One line of text: no control characters (C0, DEL, C1) and no line or paragraph separator
# (U+2028, U+2029; NEL is C1). PostgreSQL cannot store NUL, a separator in a title breaks the
# subject of every alert e-mail sent for it, and none is ever legitimate in a name or title.
_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
# Free text: tabs and newlines are fine (so are line separators pasted from an editor), other
# control characters are not.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_LINE)]
Line = Annotated[str, StringConstraints(max_length=200, pattern=_LINE)]
Text = Annotated[str, StringConstraints(max_length=20_000, pattern=_TEXT)]
Note = Annotated[str, StringConstraints(max_length=2_000, pattern=_TEXT)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_LINE)]
Tags = Annotated[list[Tag], Field(max_length=100)]
# A category id: DOS lot slugs ("digital-outcomes"), CPV codes ("72000000-5") and the like.
# Whether it is in the marketplace's list is checked against the database
# (api.categories.check_categories), not here.
CATEGORY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
CategoryId = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                              pattern=CATEGORY_ID_PATTERN)]
Categories = Annotated[list[CategoryId], Field(max_length=100)]
# A brief's category while it is a draft: empty until chosen.
DraftCategoryId = Annotated[str, StringConstraints(
    max_length=100, pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,99})?$")]
Money = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$")
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=_LINE)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]

MAX_PAGE = 200
# The default of PATCH fields: "not given". Typed Any so a field can stay non-nullable (an
# explicit null is a 422) while being optional; PATCH handlers use exclude_unset.
UNSET: Any = None


def _drop_defaults(schema: dict[str, Any]) -> None:
    # Optional fields of PATCH bodies default to None internally ("not given"); a default of
    # null on a non-nullable field would make the published schema contradict itself.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class Body(BaseModel):
    """Base of every request body: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class PatchBody(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_defaults)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Query):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=1_000_000)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": _loc(e["loc"]), "message": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


async def read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "the body must be JSON", details={"content_type": request.content_type or None}
        )
    raw = await read_body(request)
    if not raw:
        raise BadRequest("the body is empty; send a JSON object", code="bad_json")
    try:
        return orjson.loads(raw)  # also rejects bad UTF-8 and lone surrogates
    except orjson.JSONDecodeError as exc:
        raise BadRequest("malformed JSON", details={"reason": str(exc)}, code="bad_json") from exc


async def read_body(request: web.Request) -> bytes:
    """The whole body (aiohttp keeps it: later reads are free), within the size cap (413) and
    the body deadline (408). Called before a database connection is taken, so a slow or huge
    client holds only its own socket, never one of the pool's few connections."""
    limits = request.app.get(LIMITS)
    try:
        # A client trickling its body holds only its own connection, and only this long.
        async with asyncio.timeout(limits.body_timeout if limits else None):
            raw = await request.read()
    except TimeoutError as exc:
        raise RequestTimeout("the request body arrived too slowly") from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(
            "the body is too large", details={"max_bytes": request.app._client_max_size}
        ) from exc
    return raw


async def parse_body(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the body must be a JSON object",
            details=[{"field": "body", "message": "expected an object", "type": "object_type"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("invalid body", details=validation_details(exc)) from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    data: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ValidationFailed(
                "repeated query parameter",
                details=[{"field": key, "message": "give it once", "type": "repeated"}],
            )
        data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("invalid query", details=validation_details(exc)) from exc
