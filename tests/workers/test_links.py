"""Signed links in alerts (workers.links): unsubscribe and one-click answers are bound to their
seller, brief, answer and purpose, carry an issue time and expire."""

from __future__ import annotations

import base64
import time

import pytest

from workers.links import LINK_MAX_AGE, Expired, Links, signing_key

DAY = 24 * 3600


def _swap_payload(token: str, payload: bytes) -> str:
    """A token with its payload replaced and the original timestamp and signature kept."""
    _, ts, sig = token.split(".")
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{body}.{ts}.{sig}"


def test_unsubscribe_token_round_trip_and_binding() -> None:
    links = Links("secret", "http://m.test/")
    token = links.unsubscribe_token(42)
    assert links.verify_unsubscribe(token) == 42
    assert links.unsubscribe_url(42) == f"http://m.test/unsubscribe/{token}"
    # The seller id is under the signature: another seller's id with this signature fails.
    assert links.verify_unsubscribe(_swap_payload(token, b"43")) is None
    assert Links("other").verify_unsubscribe(token) is None
    for bad in ("", "42", "x.y", "42.", "a.b.c", "4" * 400, links.unsubscribe_token(42)[:-3]):
        assert links.verify_unsubscribe(bad) is None


def test_response_token_round_trip_and_tampering() -> None:
    links = Links(signing_key("secret", None), "http://m.test")
    token = links.response_token(7, 99, "not_for_me")
    assert links.verify_response(token) == (7, 99, "not_for_me")
    assert links.response_url(7, 99, "applied").startswith("http://m.test/respond/")
    assert set(links.response_urls(7, 99)) == {"interested", "not_for_me", "applied"}
    for forged in (b'[8,99,"not_for_me"]', b'[7,98,"not_for_me"]', b'[7,99,"applied"]'):
        assert links.verify_response(_swap_payload(token, forged)) is None
    # A flipped character in the middle of the signature.
    body, ts, sig = token.split(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    assert links.verify_response(f"{body}.{ts}.{flipped}") is None
    with pytest.raises(ValueError):
        links.response_token(7, 99, "maybe")


def test_purposes_do_not_mix() -> None:
    """An unsubscribe token is not an answer token and the other way round (one salt each)."""
    links = Links("secret")
    assert links.verify_response(links.unsubscribe_token(7)) is None
    assert links.verify_unsubscribe(links.response_token(7, 1, "applied")) is None


def test_links_expire_after_their_lifetime() -> None:
    now = time.time()
    issued_long_ago = Links("secret", clock=lambda: now - LINK_MAX_AGE - DAY)
    issued_recently = Links("secret", clock=lambda: now - LINK_MAX_AGE + DAY)
    checker = Links("secret", clock=lambda: now)
    with pytest.raises(Expired):
        checker.verify_response(issued_long_ago.response_token(1, 2, "applied"))
    with pytest.raises(Expired):
        checker.verify_unsubscribe(issued_long_ago.unsubscribe_token(1))
    assert checker.verify_response(issued_recently.response_token(1, 2, "applied")) == (
        1, 2, "applied"
    )
    # A forged old token is "not valid", never "expired": expiry is said of good signatures only.
    old = issued_long_ago.unsubscribe_token(1)
    assert checker.verify_unsubscribe(_swap_payload(old, b"2")) is None
    assert LINK_MAX_AGE == 60 * DAY


def test_signing_key_without_secret_depends_on_the_database_url() -> None:
    assert signing_key(None, "postgresql://a") == signing_key(None, "postgresql://a")
    assert signing_key(None, "postgresql://a") != signing_key(None, "postgresql://b")
    assert signing_key("s", "postgresql://a") == b"s"
