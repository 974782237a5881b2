"""Recording the outcome of a brief, for the API and the web pages alike: the brief's new
state, the winner's verified past work, its alert and the audit events, in the caller's
transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.errors import Conflict, ValidationFailed, field_error
from api.services.invitations import utc_today
from models import alerts, audit, awards, briefs, sellers
from models.briefs import brief_json


async def award(
    conn: asyncpg.Connection,
    brief: asyncpg.Record,
    seller_id: int | None,
    actor_id: int,
    *,
    via: str | None = None,
) -> dict[str, Any]:
    """Award a brief the caller may see (None: no award), in the caller's transaction, with
    the winner's past work, its alert and the audit events. The caller kicks delivery after
    the commit when `winner_alerted`. Raises 409 (wrong state) or 422 (seller not eligible)."""
    brief_id = int(brief["id"])
    if brief["status"] not in ("published", "closed"):
        raise Conflict(
            f"only a published or closed brief can be awarded; this one is {brief['status']}",
            details={"status": brief["status"]},
        )
    reasons: list[str] = []
    if seller_id is not None:
        if await sellers.get(conn, seller_id) is None:
            raise ValidationFailed(
                "no such seller", details=[field_error("seller_id", "no such seller", "not_found")]
            )
        why = await awards.eligible(conn, brief_id, seller_id)
        reasons = [k for k, v in why.items() if v]
        if not reasons:
            raise ValidationFailed(
                "the seller neither applied, was invited nor was shortlisted for this brief",
                details=[field_error("seller_id", "not eligible to win this brief", "ineligible")],
            )
    updated = await briefs.award(conn, brief_id, seller_id)
    assert updated is not None  # the caller holds the row lock and checked the state
    data: dict[str, Any] = {"seller_id": seller_id, "eligible_because": reasons}
    if via:
        data["via"] = via
    action = "brief.awarded" if seller_id is not None else "brief.unsuccessful"
    await audit.record(
        conn, actor_id=actor_id, action=action, entity="brief", entity_id=brief_id, data=data
    )
    alerted = False
    if seller_id is not None:
        case_study = awards.past_work(updated, utc_today())
        if await awards.add_past_work(conn, seller_id, case_study):
            await audit.record(
                conn, actor_id=actor_id, action="seller.past_work_added", entity="seller",
                entity_id=seller_id, data={"brief_id": brief_id, "source": "award"},
            )
        alerted = bool(await alerts.create_personal(conn, brief_id, "awarded", [seller_id]))
    result = brief_json(updated)
    result.update(winner_alerted=alerted, eligible_because=reasons)
    return result
