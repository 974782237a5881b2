"""Accounts and their bearer tokens. All account and token SQL lives here.

A token is 32 random bytes shown once to whoever asked for it; only its SHA-256 is stored, so a
leaked database does not leak usable tokens. SHA-256 (not a slow password hash) is right here:
the token has 256 bits of entropy, nobody can guess it, and the lookup must be fast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from models import audit

ROLES: tuple[str, ...] = ("admin", "buyer", "seller")
_BOOTSTRAP_LOCK = 7_231_002  # advisory lock: two processes bootstrapping the admin at once


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    role: str
    name: str
    organisation: str = ""
    seller_id: int | None = None
    token_id: int | None = None  # the token this request authenticated with


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _account(row: asyncpg.Record | dict[str, Any], token_id: int | None = None) -> Account:
    return Account(
        id=row["id"],
        role=row["role"],
        name=row["name"],
        organisation=row["organisation"],
        seller_id=row["seller_id"],
        token_id=token_id,
    )


async def create_account(
    conn: asyncpg.Connection,
    *,
    role: str,
    name: str,
    organisation: str = "",
    seller_id: int | None = None,
) -> int:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return int(
        await conn.fetchval(
            "INSERT INTO accounts (role, name, organisation, seller_id) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            role,
            name,
            organisation,
            seller_id,
        )
    )


async def get_account(conn: asyncpg.Connection, account_id: int) -> Account | None:
    row = await conn.fetchrow(
        "SELECT id, role, name, organisation, seller_id FROM accounts WHERE id = $1", account_id
    )
    return _account(row) if row else None


async def create_token(
    conn: asyncpg.Connection, account_id: int, *, expires_at: datetime | None = None
) -> tuple[int, str]:
    """Issue a token; return (token id, plaintext token). The plaintext is never stored."""
    token = secrets.token_urlsafe(32)
    token_id = await conn.fetchval(
        "INSERT INTO tokens (account_id, token_hash, expires_at) VALUES ($1, $2, $3) RETURNING id",
        account_id,
        hash_token(token),
        expires_at,
    )
    return int(token_id), token


async def issue_token(
    conn: asyncpg.Connection, account_id: int, *, expires_at: datetime | None = None
) -> str:
    return (await create_token(conn, account_id, expires_at=expires_at))[1]


async def authenticate(conn: asyncpg.Connection, token: str) -> Account | None:
    """The account a live (unrevoked, unexpired) token belongs to, else None."""
    if not token or len(token) > 512:
        return None
    digest = hash_token(token)
    row = await conn.fetchrow(
        "SELECT a.id, a.role, a.name, a.organisation, a.seller_id, t.id AS token_id,"
        " t.token_hash FROM tokens t JOIN accounts a ON a.id = t.account_id"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
        " AND (t.expires_at IS NULL OR t.expires_at > now())",
        digest,
    )
    # The index lookup compares hashes of the secret, not the secret; the constant-time compare
    # keeps the final check free of timing differences all the same.
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), digest):
        return None
    return _account(row, row["token_id"])


async def get_token(conn: asyncpg.Connection, token_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, account_id, created_at, expires_at, revoked_at FROM tokens WHERE id = $1",
        token_id,
    )
    return dict(row) if row else None


async def revoke_token(conn: asyncpg.Connection, token_id: int) -> bool:
    """Revoke a token; False when it does not exist or was already revoked."""
    status = await conn.execute(
        "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return bool(status == "UPDATE 1")


MIN_BOOTSTRAP_TOKEN = 32  # characters: a shorter configured token could be guessed


async def ensure_bootstrap_admin(conn: asyncpg.Connection, token: str) -> int:
    """Make `token` the bootstrap admin token (idempotent); return the admin account id.

    A new token rotates: the previous bootstrap tokens are revoked in the same transaction (an
    operator changes MARKETPLACE_ADMIN_TOKEN because the old one must stop working), and the
    token is added to the same bootstrap account, so its audit trail continues. A revoked
    bootstrap token stays revoked: revocation is an admin's decision that a restart must not
    undo. Tokens shorter than MIN_BOOTSTRAP_TOKEN characters are refused.
    """
    if len(token) < MIN_BOOTSTRAP_TOKEN:
        raise ValueError(
            f"MARKETPLACE_ADMIN_TOKEN must be at least {MIN_BOOTSTRAP_TOKEN} characters "
            f"(it has {len(token)}); generate one with: openssl rand -hex 24"
        )
    digest = hash_token(token)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _BOOTSTRAP_LOCK)
        existing = await conn.fetchval(
            "SELECT account_id FROM tokens WHERE token_hash = $1", digest
        )
        if existing is not None:
            return int(existing)
        previous = await conn.fetchval(
            "SELECT t.account_id FROM tokens t JOIN accounts a ON a.id = t.account_id"
            " WHERE t.bootstrap AND a.role = 'admin' ORDER BY t.id DESC LIMIT 1"
        )
        revoked = await conn.fetch(
            "UPDATE tokens SET revoked_at = now() WHERE bootstrap AND revoked_at IS NULL"
            " RETURNING id"
        )
        if previous is None:
            account_id = await create_account(conn, role="admin", name="bootstrap admin")
        else:
            account_id = int(previous)
        await conn.execute(
            "INSERT INTO tokens (account_id, token_hash, bootstrap) VALUES ($1, $2, true)",
            account_id,
            digest,
        )
        await audit.record(
            conn, actor_id=None, action="token.bootstrap_rotated" if previous else
            "token.bootstrap_created", entity="account", entity_id=account_id,
            data={"revoked_token_ids": [int(r["id"]) for r in revoked]},
        )
        return account_id
