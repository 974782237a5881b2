"""HTTP handlers of the outcomes funnel and fit; the work itself is in api/services/outcomes.py,
shared with the admin pages."""

from __future__ import annotations

from aiohttp import web

from api.errors import ValidationFailed, field_error
from api.keys import POOL
from api.routing import ADMIN, Ctx, Operation, json_response
from api.services.outcomes import (
    FitIn,
    FitOut,
    OutcomesOut,
    OutcomesQuery,
    funnel,
    propose_rules,
)


async def get_outcomes(ctx: Ctx) -> web.StreamResponse:
    q = ctx.query(OutcomesQuery)
    return json_response(
        await funnel(ctx.conn, rules_version=q.rules_version, category=q.category, since=q.since)
    )



async def fit_outcomes(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(FitIn)
    try:
        version, rules, info = await propose_rules(ctx.app[POOL], briefs=body.briefs)
    except ValueError as exc:
        raise ValidationFailed(
            "nothing to fit on yet", details=[field_error("outcomes", str(exc), "no_outcomes")]
        ) from exc
    return json_response({"base_version": version, "rules": rules.to_dict(),
                          "learnt_from": info})


ROUTES = [
    Operation(
        "GET", "/api/v1/outcomes", get_outcomes, "Read the outcomes funnel", "outcomes",
        roles=ADMIN, query=OutcomesQuery, response=OutcomesOut,
        description="Per rules version and category of published briefs: (brief, seller) "
        "pairs matched (stored shortlist), alerted (a match alert sent), interested, not for "
        "me (with reasons), applied (a seller's latest response), invited and awarded, and the "
        "share of SMEs at each step.",
    ),
    Operation(
        "POST", "/api/v1/outcomes/fit", fit_outcomes, "Fit rule weights on outcomes",
        "outcomes", roles=ADMIN, body=FitIn, response=FitOut, errors=(422,),
        transaction=False, handler_db=False,
        description="Proposes the active rules with weights learnt from recorded outcomes "
        "(awards strongest, applied and not-for-me weaker). Nothing is stored: preview it with "
        "POST /api/v1/rules/preview, then create and activate it.",
    ),
]
