"""Seller claims: categories, SME status and past work that a seller enters about itself wait
for an admin. Only approved facts reach the sellers row that matching reads; approving applies
the claim to the row in the request's transaction with its audit event, and the live index picks
the change up through the sellers table's NOTIFY trigger (within a second).

What a seller edits freely (summary, skills, locations, day rate, name) is applied at once; what
an admin writes is verified by definition and applied at once too. Awards recorded in the
service or imported are verified past work: they never pass through here.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from api.categories import check_categories
from api.errors import Conflict, NotFound, ValidationFailed, field_error
from api.routing import ADMIN, Ctx
from api.validation import Body, Note, Query
from models import audit, claims, sellers
from models.claims import claim_json
from models.sellers import case_study_json, parse_case_study

Status = Literal["pending", "approved", "rejected"]
SELLER_OR_ADMIN = ADMIN | {"seller"}


class ClaimOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    seller_id: int
    kind: Literal["category", "sme", "past_work"]
    value: dict[str, Any]
    status: Status
    created_at: str
    decided_at: str | None
    note: str


class ClaimPage(BaseModel):
    items: list[ClaimOut]
    limit: int
    offset: int


class ClaimQuery(Query):
    status: Status | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class AllClaimsQuery(ClaimQuery):
    status: Status | None = "pending"


class DecisionIn(Body):
    note: Note = Field("", description="why (kept with the claim and in the audit log)")


def _study_key(study: dict[str, Any]) -> dict[str, Any]:
    """A case study in its stored form, for comparing what was sent with what is stored."""
    return case_study_json(parse_case_study(study))


async def split_claims(
    conn: asyncpg.Connection, current: asyncpg.Record, fields: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A seller's own profile change -> (fields applied at once, claims to file).

    - categories: those already verified stay, those left out are dropped (a seller may narrow
      its own eligibility), new ones are claims;
    - sme: a change is a claim;
    - case_studies: stored ones sent back unchanged stay, stored ones left out are dropped
      except records of awards (linked to a brief: outcomes, not the seller's to remove), new
      ones are claims. A seller cannot link past work to a brief (only an award does).
    """
    direct = dict(fields)
    wanted: list[tuple[str, dict[str, Any]]] = []
    if "categories" in direct:
        asked = direct.pop("categories")
        verified = list(current["categories"])
        direct["categories"] = [c for c in verified if c in asked]
        wanted += [("category", {"category": c}) for c in dict.fromkeys(asked)
                   if c not in verified]
    if "sme" in direct:
        sme = direct.pop("sme")
        if sme != current["sme"]:
            wanted.append(("sme", {"sme": sme}))
    if "case_studies" in direct:
        sent = [_study_key(s) for s in direct.pop("case_studies")]
        stored = [_study_key(s) for s in current["case_studies"] or []]
        linked = [i for i, s in enumerate(sent) if s not in stored and s.get("brief_id")]
        if linked:
            raise ValidationFailed(
                "past work linked to a brief comes only from an award",
                details=[field_error(f"case_studies.{i}.brief_id",
                                     "leave brief_id out of past work you add", "forbidden")
                         for i in linked],
            )
        direct["case_studies"] = [s for s in stored if s in sent or s.get("brief_id")]
        seen: list[dict[str, Any]] = []
        for study in sent:
            if study not in stored and study not in seen:
                seen.append(study)
                wanted.append(("past_work", study))
    return direct, wanted


async def file_claims(
    ctx: Ctx, seller_id: int, wanted: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """File the claims (one audit event each) and return every pending claim of the seller."""
    for kind, value in wanted:
        row = await claims.create(ctx.conn, seller_id, kind, value, ctx.user.id)
        if row is not None:
            await audit.record(
                ctx.conn, actor_id=ctx.user.id, action="claim.filed", entity="seller",
                entity_id=seller_id, data={"claim_id": row["id"], "kind": kind, "value": value},
            )
    pending = await claims.list_for_seller(ctx.conn, seller_id, status="pending", limit=200)
    return [claim_json(r) for r in pending]


async def apply_claim(conn: asyncpg.Connection, claim: asyncpg.Record) -> dict[str, Any]:
    """The sellers-row change an approved claim makes (empty when the row has it already)."""
    row = await sellers.get(conn, claim["seller_id"], for_update=True)
    if row is None:
        raise NotFound("no such seller")
    value = claim["value"]
    if claim["kind"] == "category":
        category = value["category"]
        await check_categories(conn, [("value.category", category)])
        return {} if category in row["categories"] else {
            "categories": [*row["categories"], category]}
    if claim["kind"] == "sme":
        return {} if bool(value["sme"]) == row["sme"] else {"sme": bool(value["sme"])}
    study = _study_key(value)
    if study.get("category"):
        await check_categories(conn, [("value.category", study["category"])])
    stored = [_study_key(s) for s in row["case_studies"] or []]
    return {} if study in stored else {"case_studies": [*stored, study]}


async def decide_claim(
    conn: asyncpg.Connection,
    seller_id: int,
    claim_id: int,
    status: Literal["approved", "rejected"],
    actor_id: int,
    note: str,
    via: str | None = None,
) -> dict[str, Any]:
    claim = await claims.get(conn, claim_id, for_update=True)
    if claim is None or claim["seller_id"] != seller_id:
        raise NotFound("no such claim for this seller")
    if claim["status"] != "pending":
        raise Conflict(f"the claim is already {claim['status']}",
                       details={"status": claim["status"]})
    changes: dict[str, Any] = {}
    if status == "approved":
        changes = await apply_claim(conn, claim)
        if changes:
            await sellers.update(conn, seller_id, changes)
    decided = await claims.decide(conn, claim_id, status, actor_id, note)
    assert decided is not None  # locked above and pending
    data: dict[str, Any] = {"claim_id": claim_id, "kind": claim["kind"], "value": claim["value"],
                            "note": note, "changed": sorted(changes)}
    if via:
        data["via"] = via
    await audit.record(
        conn, actor_id=actor_id, action=f"claim.{status}", entity="seller",
        entity_id=seller_id, data=data,
    )
    return claim_json(decided)


