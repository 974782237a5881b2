"""Recording a seller's answer to an opportunity, for the API, the web pages and the signed
answer links alike: the answer and its audit event, in the caller's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.errors import Conflict, NotFound, ValidationFailed, field_error
from models import audit, responses
from models import opportunities as opportunities_repo


def response_problems(response: str, reason: str | None) -> list[dict[str, str]]:
    if reason is not None and response != "not_for_me":
        return [field_error("reason", "a reason goes with not_for_me only", "invalid")]
    return []


async def record_response(
    conn: asyncpg.Connection,
    seller_id: int,
    brief_id: int,
    response: str,
    reason: str | None,
    *,
    actor_id: int | None,
    via: str,
) -> dict[str, Any]:
    """Record a seller's answer (for the API, the pages and the signed links alike) in the
    caller's transaction, with its audit event. Raises 404 (not this seller's opportunity),
    409 (the brief no longer takes answers), 422 (a reason without not_for_me)."""
    problems = response_problems(response, reason)
    if problems:
        raise ValidationFailed("the response is not valid", details=problems)
    opportunity = await opportunities_repo.get(conn, brief_id, seller_id, lock=True)
    if opportunity is None:
        raise NotFound("no such opportunity for this seller")
    if not opportunity["open"]:
        status = opportunity["status"]
        raise Conflict(
            f"the brief is {status} and past its closing date" if status == "published"
            else f"the brief is {status}: answers can change only until it closes",
            details={"status": status},
        )
    row, before = await responses.upsert(conn, brief_id, seller_id, response, reason)
    previous = before["response"] if before else None
    await audit.record(
        conn, actor_id=actor_id, action="response.recorded", entity="brief",
        entity_id=brief_id,
        data={"seller_id": seller_id, "response": response, "reason": reason,
              "previous": previous, "via": via},
    )
    data = {k: row[k] for k in ("brief_id", "seller_id", "response", "reason")}
    data.update(
        created_at=row["created_at"].isoformat(),
        updated_at=row["updated_at"].isoformat(),
        previous=previous,
    )
    return data
