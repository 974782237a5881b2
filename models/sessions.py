"""Web page sessions. All web_sessions SQL lives here.

The browser's cookie holds a random session id; only its SHA-256 is stored (a leaked database
holds no usable session). A session is valid while it is neither expired nor revoked (sign-out)
and the API token it was opened with is still live (revoking the token ends its sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import asyncpg

from models.accounts import Account

SESSION_SECONDS = 12 * 3600  # a working day; the cookie's Max-Age says the same
_MAX_ID = 128  # far above the ids we make; longer input is refused before hashing


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


async def create(
    conn: asyncpg.Connection, account_id: int, token_id: int, *, seconds: int = SESSION_SECONDS
) -> str:
    """A new session for the account signed in with `token_id`; returns its id (shown once)."""
    session_id = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO web_sessions (session_hash, account_id, token_id, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        _hash(session_id), account_id, token_id, float(seconds),
    )
    return session_id


async def authenticate(conn: asyncpg.Connection, session_id: str) -> Account | None:
    """The account of a live session, else None."""
    if not session_id or len(session_id) > _MAX_ID:
        return None
    digest = _hash(session_id)
    row = await conn.fetchrow(
        "SELECT a.id, a.role, a.name, a.organisation, a.seller_id, s.token_id, s.session_hash"
        " FROM web_sessions s JOIN accounts a ON a.id = s.account_id"
        " JOIN tokens t ON t.id = s.token_id"
        " WHERE s.session_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
        digest,
    )
    if row is None or not hmac.compare_digest(bytes(row["session_hash"]), digest):
        return None
    return Account(
        id=row["id"], role=row["role"], name=row["name"], organisation=row["organisation"],
        seller_id=row["seller_id"], token_id=row["token_id"],
    )


async def revoke(conn: asyncpg.Connection, session_id: str) -> bool:
    """End a session (sign-out); False when there was no live one."""
    if not session_id or len(session_id) > _MAX_ID:
        return False
    status = await conn.execute(
        "UPDATE web_sessions SET revoked_at = now() WHERE session_hash = $1"
        " AND revoked_at IS NULL",
        _hash(session_id),
    )
    return bool(status == "UPDATE 1")


async def purge_expired(conn: asyncpg.Connection, older_than_days: int = 30) -> int:
    status = await conn.execute(
        "DELETE FROM web_sessions WHERE expires_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    return int(status.split()[-1])
