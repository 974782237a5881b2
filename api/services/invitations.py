"""Inviting sellers to a brief ("open to selected sellers"), for the API and the web pages
alike: the invitations, their alerts and one audit event, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from api.errors import Conflict, ValidationFailed, field_error
from models import alerts, audit, invitations

MAX_INVITES = 200  # per request: more than any shortlist a buyer reads


def utc_today() -> date:
    return datetime.now(UTC).date()


def is_open(brief: asyncpg.Record | dict[str, Any]) -> bool:
    """Published and its closing date (a UTC day) not past: it still takes invitations and
    answers."""
    closes = brief["closes_at"]
    return brief["status"] == "published" and (closes is None or closes >= utc_today())


async def invite(
    conn: asyncpg.Connection,
    brief: asyncpg.Record,
    seller_ids: list[int],
    actor_id: int,
    *,
    via: str | None = None,
) -> dict[str, list[int]]:
    """Invite sellers to a brief the caller may see (for the API and the pages alike), in the
    caller's transaction: invitations, their alerts and one audit event commit together. The
    caller kicks delivery after the commit. Raises 409 (brief not open), 422 (unknown or
    inactive seller)."""
    brief_id = int(brief["id"])
    if not is_open(brief):
        raise Conflict(
            f"sellers can be invited to an open published brief; this one is {brief['status']}"
            + (" and past its closing date" if brief["status"] == "published" else ""),
            details={"status": brief["status"]},
        )
    ids = sorted(set(seller_ids))
    known = await invitations.active_sellers(conn, ids)
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValidationFailed(
            "only active sellers can be invited",
            details=[field_error("seller_ids", f"no active seller {i}", "not_found")
                     for i in missing],
        )
    new = await invitations.add(conn, brief_id, ids, invited_by=actor_id)
    alerted = await alerts.create_personal(conn, brief_id, "invited", new)
    if new:
        data: dict[str, Any] = {"seller_ids": new, "alerted": alerted}
        if via:
            data["via"] = via
        await audit.record(
            conn, actor_id=actor_id, action="brief.invited", entity="brief",
            entity_id=brief_id, data=data,
        )
    fresh = set(new)
    return {
        "invited": new,
        "already_invited": [i for i in ids if i not in fresh],
        "alerted": sorted(alerted),
    }
