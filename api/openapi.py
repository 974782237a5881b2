"""The OpenAPI 3.1 document, generated from the same Operation declarations that build the
router: every route is in it, with its body schema (from the pydantic model), its query and path
parameters, its responses including the error shape, and the bearer security scheme."""

from __future__ import annotations

import copy
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api.keys import OPERATIONS
from api.limits import EXEMPT_PREFIXES
from api.routing import PATH_ID_MAX, Ctx, Operation, json_response

_REF = "#/components/schemas/{model}"
_MAX_ID = 2**63 - 1

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error"]},
                "message": {"type": "string"},
                "details": {
                    "description": "null, or more about the error: for 422 a list of "
                    "{field, message, type}"
                },
            },
        }
    },
}
_ERROR_TEXT = {
    400: "Malformed JSON or request",
    401: "No valid bearer token",
    403: "The caller's role or identity may not do this",
    404: "Not found",
    405: "Method not allowed",
    408: "The body arrived too slowly",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "The body is not JSON",
    422: "Validation failed; details name the fields",
    412: "The resource changed since the ETag given in If-Match",
    429: "Rate limited; Retry-After says when to try again",
    503: "A backing service is unavailable, or the request took too long (Retry-After)",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def ref(self, model: type[BaseModel], mode: str = "validation") -> dict[str, Any]:
        name = model.__name__
        if name not in self.components:
            schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
            for def_name, definition in schema.pop("$defs", {}).items():
                self.components.setdefault(def_name, definition)
            self.components[name] = schema
        return {"$ref": _REF.format(model=name)}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch of an Optional."""
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(rest[0])
            if merged.get("default", 0) is None:
                del merged["default"]
            return merged
    return schema


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    patterns = dict(re.findall(r"\{(\w+)(?::([^}]*))?\}", op.path))
    for name in _path_names(op):
        pattern = patterns.get(name) or r"\d+"
        schema: dict[str, Any] = {
            "type": "integer", "minimum": 1, "maximum": PATH_ID_MAX.get(name, _MAX_ID),
        }
        if pattern != r"\d+":  # a named (string) id, e.g. a category's: the route's own pattern
            schema = {"type": "string", "pattern": f"^{pattern}$", "maxLength": 100}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = _without_null(copy.deepcopy(prop))
            param: dict[str, Any] = {
                "name": name, "in": "query", "required": name in required, "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def _path_names(op: Operation) -> list[str]:
    return re.findall(r"\{(\w+)\}", op.openapi_path)


def _error(status: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }
    if status in (429, 503):
        out["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying (always sent with 429)",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    return out


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    params = _parameters(op)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(op.body)}},
        }
    out["security"] = [{"bearer": []}] if op.roles is not None else []
    responses: dict[str, Any] = {}
    if op.status == 204:
        responses["204"] = {"description": "Done"}
    else:
        if isinstance(op.response, type):
            schema = schemas.ref(op.response, "serialization")
        else:
            schema = op.response or {}
        responses[str(op.status)] = {
            "description": "Success", "content": {op.content_type: {"schema": schema}},
        }
    errors = set(op.errors)
    if op.etag:
        responses[str(op.status)]["headers"] = {"ETag": {
            "description": "the version of the resource; send it back in If-Match to write",
            "schema": {"type": "string"},
        }}
        if op.method != "GET":
            out.setdefault("parameters", []).append({
                "name": "If-Match", "in": "header", "required": False,
                "description": "the ETag this change is based on; 412 when the resource "
                "changed since",
                "schema": {"type": "string"},
            })
            errors |= {412}
    if op.body is not None:
        errors |= {400, 408, 413, 415, 422}
    if op.query is not None:
        errors |= {422}
    if op.roles is not None:
        errors |= {401}
        if op.roles != frozenset({"admin", "buyer", "seller"}):
            errors |= {403}
    if _path_names(op):
        errors |= {404}
    if op.db:
        errors |= {503}
    if not op.path.startswith(EXEMPT_PREFIXES):
        errors |= {429, 503}  # api.limits: rate limit per token, deadline per request
    for status in sorted(errors):
        responses[str(status)] = _error(status)
    out["responses"] = responses
    return out


def build_spec(ops: list[Operation]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Marketplace matcher",
            "version": "1.0.0",
            "description": "Buyer-seller matching for government digital marketplaces. "
            "Every error is JSON: {\"error\": {\"code\", \"message\", \"details\"}}. "
            "Permissions: no or bad token -> 401; a role that may never do an operation -> "
            "403; another seller's private resources -> 403; another buyer's brief -> 404.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from POST /api/v1/tokens (or MARKETPLACE_ADMIN_TOKEN)",
                }
            },
        },
    }


async def openapi(ctx: Ctx) -> web.StreamResponse:
    return json_response(build_spec(ctx.app[OPERATIONS]))


ROUTES = [
    Operation(
        "GET", "/api/v1/openapi.json", openapi, "Read this OpenAPI document", "operations",
        roles=None, db=False, response={"type": "object"},
    ),
]
