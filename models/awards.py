"""Awards: who may win a brief, and the verified past work an award gives its winner (the
brief's own change is models.briefs.award)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg


async def eligible(conn: asyncpg.Connection, brief_id: int, seller_id: int) -> dict[str, bool]:
    """Why a seller may win a brief: it applied, was invited or was shortlisted."""
    row = await conn.fetchrow(
        "SELECT"
        " EXISTS (SELECT 1 FROM responses WHERE brief_id = $1 AND seller_id = $2"
        "         AND response = 'applied') AS applied,"
        " EXISTS (SELECT 1 FROM invitations WHERE brief_id = $1 AND seller_id = $2) AS invited,"
        " EXISTS (SELECT 1 FROM matches WHERE brief_id = $1 AND seller_id = $2) AS shortlisted",
        brief_id,
        seller_id,
    )
    return {k: bool(row[k]) for k in ("applied", "invited", "shortlisted")}


def past_work(brief: asyncpg.Record | dict[str, Any], won_at: date) -> dict[str, Any]:
    """The case study an award gives its winner (the shape of models.types.CaseStudy)."""
    return {
        "title": brief["title"],
        "summary": brief["summary"],
        "organisation": brief["organisation"],
        "category": brief["category"],
        "role": brief["role"],
        "location": brief["location"],
        "won_at": won_at.isoformat(),
        "brief_id": int(brief["id"]),
    }


async def add_past_work(
    conn: asyncpg.Connection, seller_id: int, case_study: dict[str, Any]
) -> bool:
    """Append the award to the seller's case studies in one statement (the row's trigger tells
    every live index within a second). Once per brief: False when it is there already."""
    status = await conn.execute(
        "UPDATE sellers SET case_studies = case_studies || jsonb_build_array($2::jsonb),"
        " updated_at = now() WHERE id = $1 AND NOT case_studies @> jsonb_build_array("
        "   jsonb_build_object('brief_id', $3::bigint))",
        seller_id,
        case_study,  # the pool's jsonb codec encodes it
        int(case_study["brief_id"]),
    )
    return bool(status == "UPDATE 1")
