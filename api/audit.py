"""The audit log for admins: every change to a brief, seller, rule set, token or alert."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from api.routing import ADMIN, Ctx, Operation, json_response
from api.validation import Line, Query
from models import audit


class AuditQuery(Query):
    entity: Line | None = Field(None, description="seller, brief, rules, token, alert, ...")
    entity_id: Line | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: int | None = Field(
        None, ge=1, le=2**63 - 1, description="`next_cursor` of the previous page"
    )


class AuditEvent(BaseModel):
    id: int
    actor_id: int | None
    action: str
    entity: str
    entity_id: str | None
    data: dict[str, Any]
    created_at: str


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: int | None


async def list_audit_events(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(AuditQuery)
    rows = await audit.list_events(
        ctx.conn, entity=q.entity, entity_id=q.entity_id, before_id=q.cursor, limit=q.limit
    )
    for row in rows:
        row["created_at"] = row["created_at"].isoformat()
    next_cursor = rows[-1]["id"] if len(rows) == q.limit else None
    return json_response({"items": rows, "next_cursor": next_cursor})


ROUTES = [
    Operation(
        "GET", "/api/v1/audit-events", list_audit_events, "List audit events", "audit",
        roles=ADMIN, query=AuditQuery, response=AuditPage,
        description="Newest first; page with `cursor`.",
    ),
]
