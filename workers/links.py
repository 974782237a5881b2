"""Signed links in alerts: one-click unsubscribe (RFC 8058) and one-click seller responses.

A link needs no sign-in: the signature is the credential. itsdangerous signs a small JSON
payload (the seller id, and for a response the brief and the answer) with the configured secret
key and a salt per purpose, so a token made for one purpose is refused for another, and the
ids inside cannot be changed without breaking the signature. Every token carries its issue time
and is refused once older than `LINK_MAX_AGE` (60 days: longer than any brief stays open, short
enough that a leaked old e-mail stops working). GET on a link only shows a confirm page (mail
scanners follow links); the POST of that page, or a mail client's one-click POST, acts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

LINK_MAX_AGE = 60 * 24 * 3600  # seconds; documented in the README and `marketplace --help`
RESPONSES = ("interested", "not_for_me", "applied")
_SALT = {"unsubscribe": "marketplace.unsubscribe", "response": "marketplace.response"}
_MAX_TOKEN = 300  # far above any token we make; longer input is refused before decoding


def signing_key(secret_key: str | None, database_url: str | None) -> bytes:
    """The key every process agrees on: MARKETPLACE_SECRET_KEY. Without one (a settings object
    not yet resolved), a key derived from the database URL, as before."""
    if secret_key:
        return secret_key.encode()
    material = f"marketplace-signing-key\0{database_url or ''}".encode()
    return hashlib.sha256(material).digest()


class Expired(Exception):
    """A correctly signed link past its lifetime."""


class Links:
    """Makes and checks the signed links of alerts. `clock` (seconds since the epoch) is both
    the issue time written into new tokens and the time their age is judged against."""

    def __init__(
        self,
        secret: str | bytes,
        base_url: str = "",
        *,
        max_age: int = LINK_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self.base_url = base_url.rstrip("/")
        self.max_age = max_age
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=salt, signer=_Signer)
            for purpose, salt in _SALT.items()
        }

    def _dumps(self, purpose: str, payload: Any) -> str:
        return str(self._serializers[purpose].dumps(payload))

    def _loads(self, purpose: str, token: str) -> Any:
        """The payload, None when the token is malformed or forged; raises Expired."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            return None
        serializer = self._serializers[purpose]
        try:
            return serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            # Raised only when the signature is good: a forged token is "not valid", whatever
            # its timestamp claims.
            raise Expired(str(exc)) from exc
        except BadData:
            return None

    # Unsubscribe ----------------------------------------------------------------------------

    def unsubscribe_token(self, seller_id: int) -> str:
        return self._dumps("unsubscribe", int(seller_id))

    def verify_unsubscribe(self, token: str) -> int | None:
        """The seller id, None when malformed or forged; raises Expired."""
        value = self._loads("unsubscribe", token)
        return value if type(value) is int and value > 0 else None

    def unsubscribe_url(self, seller_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{self.unsubscribe_token(seller_id)}"

    # Responses ------------------------------------------------------------------------------

    def response_token(self, seller_id: int, brief_id: int, response: str) -> str:
        if response not in RESPONSES:
            raise ValueError(f"not a response: {response!r}")
        return self._dumps("response", [int(seller_id), int(brief_id), response])

    def verify_response(self, token: str) -> tuple[int, int, str] | None:
        """(seller id, brief id, response), None when malformed or forged; raises Expired."""
        value = self._loads("response", token)
        if not (isinstance(value, list) and len(value) == 3):
            return None
        seller_id, brief_id, response = value
        if type(seller_id) is not int or type(brief_id) is not int or response not in RESPONSES:
            return None
        if seller_id < 1 or brief_id < 1:
            return None
        return seller_id, brief_id, response

    def response_url(self, seller_id: int, brief_id: int, response: str) -> str:
        return f"{self.base_url}/respond/{self.response_token(seller_id, brief_id, response)}"

    def response_urls(self, seller_id: int, brief_id: int) -> dict[str, str]:
        return {r: self.response_url(seller_id, brief_id, r) for r in RESPONSES}

    # Pages ----------------------------------------------------------------------------------

    def opportunity_url(self, brief_id: int) -> str:
        """The seller's own page for one opportunity (sign-in first when signed out)."""
        return f"{self.base_url}/seller/opportunities/{int(brief_id)}"


def links_for(settings: Any) -> Links:
    """The links of a Settings object (its secret key and public base URL)."""
    key = signing_key(settings.secret_key, settings.database_url)
    return Links(key, settings.base_url)
