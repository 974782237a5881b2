"""Signed one-click unsubscribe tokens (RFC 8058 links in every alert e-mail).

A token is `<seller id>.<first 32 hex of HMAC-SHA256(key, "unsubscribe:<seller id>")>`: it
needs no login, cannot be forged without the key, and cannot be replayed against another
seller because the seller id is inside the MAC. Unsubscribing is idempotent, so replaying a
token for the same seller does no harm.
"""

from __future__ import annotations

import hashlib
import hmac

PURPOSE = "unsubscribe"


def signing_key(secret_key: str | None, database_url: str | None) -> bytes:
    """The key every process agrees on: MARKETPLACE_SECRET_KEY, else one derived from the
    database URL (API and workers share it, and it holds the database password)."""
    if secret_key:
        return secret_key.encode()
    material = f"marketplace-signing-key\0{database_url or ''}".encode()
    return hashlib.sha256(material).digest()


def _mac(secret: bytes | str, seller_id: int, purpose: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    # 128 bits of the MAC are plenty against forgery and keep the link short.
    return hmac.new(key, f"{purpose}:{seller_id}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: bytes | str, seller_id: int, purpose: str = PURPOSE) -> str:
    return f"{int(seller_id)}.{_mac(secret, seller_id, purpose)}"


def verify_token(secret: bytes | str, token: str, purpose: str = PURPOSE) -> int | None:
    """The seller id the token was made for, or None when it is malformed or forged."""
    if not isinstance(token, str) or len(token) > 100:
        return None
    sid_text, sep, mac = token.partition(".")
    if not sep or not sid_text.isdigit() or len(sid_text) > 18:
        return None
    seller_id = int(sid_text)
    if not hmac.compare_digest(mac, _mac(secret, seller_id, purpose)):
        return None
    return seller_id


def unsubscribe_url(base_url: str, secret: bytes | str, seller_id: int) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/{make_token(secret, seller_id)}"
