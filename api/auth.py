"""Bearer tokens and the permission rules every resource applies.

The rules, in one place:
- no token, or an unknown, expired or revoked one -> 401 (with `WWW-Authenticate: Bearer`);
- a role that may never use an operation -> 403 (e.g. a seller or buyer changing rules);
- a seller's own resources (alerts, opportunities, alert preferences, its profile edits):
  another seller -> 403 (seller ids are not secret: buyers browse sellers);
- a buyer's briefs (and their shortlists): another buyer -> 404, exactly as if the brief did not
  exist, so brief ids reveal nothing about other buyers' drafts;
- admins may do everything.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from api.errors import Forbidden, NotFound, Unauthorized
from models import accounts
from models.accounts import Account


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>'")
    return token.strip()


async def authorise(
    roles: frozenset[str] | None, action: str, request: web.Request, conn: asyncpg.Connection
) -> Account | None:
    """The caller's account; raises 401/403 per the rules above. `roles` None: public."""
    token = bearer_token(request)
    if roles is None:
        return await accounts.authenticate(conn, token) if token else None
    if token is None:
        raise Unauthorized()
    account = await accounts.authenticate(conn, token)
    if account is None:
        raise Unauthorized("the token is unknown, expired or revoked")
    if account.role not in roles:
        raise Forbidden(f"a {account.role} may not {action}")
    return account


def check_seller_access(account: Account, seller_id: int) -> None:
    """Only the seller itself (or an admin) reaches a seller's private resources."""
    if account.role == "admin":
        return
    if account.role == "seller" and account.seller_id == seller_id:
        return
    raise Forbidden("only this seller or an admin may do this")


def check_brief_access(account: Account, brief: asyncpg.Record | dict[str, Any] | None) -> None:
    """Buyers see their own briefs; anything else is a 404, as if it did not exist."""
    if brief is None:
        raise NotFound("no such brief")
    if account.role == "admin":
        return
    if account.role == "buyer" and brief["buyer_account_id"] == account.id:
        return
    raise NotFound("no such brief")


async def bootstrap_admin(pool: asyncpg.Pool, token: str | None) -> None:
    if token:
        async with pool.acquire() as conn:
            await accounts.ensure_bootstrap_admin(conn, token)
