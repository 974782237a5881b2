"""HTTP handlers of claims; the work itself is in api/services/claims.py, shared with the pages."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web

from api.auth import check_seller_access
from api.errors import NotFound
from api.routing import ADMIN, Ctx, Operation, json_response
from api.services.claims import (
    SELLER_OR_ADMIN,
    AllClaimsQuery,
    ClaimOut,
    ClaimPage,
    ClaimQuery,
    DecisionIn,
    decide_claim,
)
from models import claims, sellers
from models.claims import claim_json


async def list_seller_claims(ctx: Ctx) -> web.StreamResponse:
    seller_id = ctx.path_id()
    check_seller_access(ctx.user, seller_id)
    q = ctx.query(ClaimQuery)
    if await sellers.get(ctx.conn, seller_id) is None:
        raise NotFound("no such seller")
    rows = await claims.list_for_seller(
        ctx.conn, seller_id, status=q.status, limit=q.limit, offset=q.offset
    )
    return json_response(
        {"items": [claim_json(r) for r in rows], "limit": q.limit, "offset": q.offset}
    )


async def list_claims(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(AllClaimsQuery)
    rows = await claims.list_all(ctx.conn, status=q.status, limit=q.limit, offset=q.offset)
    return json_response(
        {"items": [claim_json(r) for r in rows], "limit": q.limit, "offset": q.offset}
    )


async def _decision_note(ctx: Ctx) -> str:
    if not ctx.request.body_exists:
        return ""
    return (await ctx.body(DecisionIn)).note



async def decide(ctx: Ctx, status: Literal["approved", "rejected"]) -> dict[str, Any]:
    """Approve or reject a pending claim in the caller's transaction, with its audit event
    (shared by the API and the admin page)."""
    seller_id, claim_id = ctx.path_id(), ctx.path_id("claim_id")
    note = await _decision_note(ctx)
    return await decide_claim(ctx.conn, seller_id, claim_id, status, ctx.user.id, note)



async def approve_claim(ctx: Ctx) -> web.StreamResponse:
    return json_response(await decide(ctx, "approved"))


async def reject_claim(ctx: Ctx) -> web.StreamResponse:
    return json_response(await decide(ctx, "rejected"))


_CLAIMS = r"/api/v1/sellers/{id:\d+}/claims"
_ONE = _CLAIMS + r"/{claim_id:\d+}"
ROUTES = [
    Operation(
        "GET", _CLAIMS, list_seller_claims, "List a seller's claims", "claims",
        roles=SELLER_OR_ADMIN, query=ClaimQuery, response=ClaimPage, errors=(403, 404),
        description="Categories, SME status and past work the seller entered; pending ones "
        "do not count for matching until an admin approves them.",
    ),
    Operation(
        "GET", "/api/v1/claims", list_claims, "List every seller's claims", "claims",
        roles=ADMIN, query=AllClaimsQuery, response=ClaimPage,
        description="The admin's queue: pending claims by default, oldest first.",
    ),
    Operation(
        "POST", _ONE + "/approve", approve_claim, "Approve a seller's claim", "claims",
        roles=ADMIN, body=DecisionIn, response=ClaimOut, errors=(404, 409),
        description="Applies the claim to the seller's profile (matching sees it within a "
        "second) and records the decision as an audit event. The body is optional.",
    ),
    Operation(
        "POST", _ONE + "/reject", reject_claim, "Reject a seller's claim", "claims",
        roles=ADMIN, body=DecisionIn, response=ClaimOut, errors=(404, 409),
        description="The profile is unchanged; the decision is an audit event. The body is "
        "optional.",
    ),
]
