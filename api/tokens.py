"""Tokens: admins issue accounts with a bearer token (shown once); tokens can be revoked."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from api.routing import ADMIN, ANY_ROLE, Ctx, Operation, json_response
from api.validation import Body, Id, Line, Name
from models import accounts, audit, sellers


class TokenIn(Body):
    # The schema says what create_token checks: seller_id with role seller, and only then.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"properties": {"role": {"const": "seller"}}},
        "then": {"required": ["seller_id"], "properties": {"seller_id": {"type": "integer"}}},
        "else": {"properties": {"seller_id": {"type": "null"}}},
    })

    role: Literal["admin", "buyer", "seller"]
    name: Name
    organisation: Line = ""
    seller_id: Id | None = Field(None, description="required for (and only for) role seller")
    expires_at: AwareDatetime | None = Field(None, description="no expiry when absent")


class TokenOut(BaseModel):
    token: str = Field(description="the bearer token; shown only in this response")
    token_id: int
    account_id: int
    role: str
    expires_at: datetime | None = None


class AccountOut(BaseModel):
    id: int
    role: str
    name: str
    organisation: str
    seller_id: int | None


async def create_token(ctx: Ctx) -> web.StreamResponse:
    body = await ctx.body(TokenIn)
    if body.role == "seller":
        if body.seller_id is None:
            raise ValidationFailed(
                "a seller account needs seller_id",
                details=[field_error("seller_id", "required for role seller", "missing")],
            )
        if await sellers.get(ctx.conn, body.seller_id) is None:
            raise ValidationFailed(
                "no such seller",
                details=[field_error("seller_id", "no seller has this id", "not_found")],
            )
    elif body.seller_id is not None:
        raise ValidationFailed(
            "only seller accounts have a seller_id",
            details=[field_error("seller_id", "only for role seller", "forbidden")],
        )
    account_id = await accounts.create_account(
        ctx.conn,
        role=body.role,
        name=body.name,
        organisation=body.organisation,
        seller_id=body.seller_id,
    )
    token_id, token = await accounts.create_token(ctx.conn, account_id, expires_at=body.expires_at)
    await audit.record(
        ctx.conn,
        actor_id=ctx.user.id,
        action="token.created",
        entity="token",
        entity_id=token_id,
        data={"account_id": account_id, "role": body.role, "name": body.name},
    )
    out = TokenOut(
        token=token, token_id=token_id, account_id=account_id, role=body.role,
        expires_at=body.expires_at,
    )
    return json_response(out.model_dump(mode="json"), 201)


async def revoke_token(ctx: Ctx) -> web.StreamResponse:
    token_id = ctx.path_id()
    row = await accounts.get_token(ctx.conn, token_id)
    user = ctx.user
    if row is None:
        raise NotFound("no such token")
    if user.role != "admin" and row["account_id"] != user.id:
        # Other people's tokens: a 404 would do too, but their ids are not secret.
        raise Forbidden("only an admin or the token's owner may revoke it")
    if not await accounts.revoke_token(ctx.conn, token_id):
        raise Conflict("the token is already revoked")
    await audit.record(
        ctx.conn, actor_id=user.id, action="token.revoked", entity="token", entity_id=token_id
    )
    return web.Response(status=204)


async def get_me(ctx: Ctx) -> web.StreamResponse:
    user = ctx.user
    out = AccountOut(
        id=user.id, role=user.role, name=user.name, organisation=user.organisation,
        seller_id=user.seller_id,
    )
    return json_response(out.model_dump(mode="json"))


ROUTES = [
    Operation(
        "POST", "/api/v1/tokens", create_token, "Create an account and its token", "tokens",
        roles=ADMIN, body=TokenIn, response=TokenOut, status=201,
    ),
    Operation(
        "DELETE", r"/api/v1/tokens/{id:\d+}", revoke_token, "Revoke a token", "tokens",
        roles=ANY_ROLE, status=204, errors=(403, 404, 409),
    ),
    Operation(
        "GET", "/api/v1/me", get_me, "Read the calling account", "tokens",
        roles=ANY_ROLE, response=AccountOut,
    ),
]
