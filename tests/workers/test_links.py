"""Signed links in alerts (workers.links): unsubscribe and one-click answers are bound to their
seller, brief, answer and purpose, carry an issue time and expire."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.settings import Settings
from workers.links import LINK_MAX_AGE, Expired, Links, links_for, signing_key

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
    links = Links(signing_key("secret"), "http://m.test")
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


def test_without_a_secret_key_a_random_one_is_kept_in_data_dir(tmp_path: Path) -> None:
    """Unset MARKETPLACE_SECRET_KEY: a random secret generated once into DATA_DIR (0600), the
    same for every process on it (the worker signs, the API checks), across restarts on
    another database port; nothing derived from the database URL."""
    url_a = "postgresql://postgres@127.0.0.1:5433/marketplace"
    url_b = "postgresql://postgres@127.0.0.1:6011/marketplace"  # restarted: another port
    worker = links_for(Settings(data_dir=tmp_path, database_url=url_a))
    token = worker.unsubscribe_token(2)
    api = links_for(Settings(data_dir=tmp_path, database_url=url_b))
    assert api.verify_unsubscribe(token) == 2
    secret_file = tmp_path / "secret_key"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert len(secret_file.read_text()) >= 43
    # Another process on the same DATA_DIR reads the same secret.
    other = subprocess.run(
        [sys.executable, "-c", "import sys; from config.settings import data_dir_secret;"
         " print(data_dir_secret(sys.argv[1]))", str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()
    assert other == secret_file.read_text()
    # Whoever knows the database URL (no password on the embedded default) cannot sign.
    for guess in (url_a, f"marketplace-signing-key\0{url_a}"):
        forged = Links(hashlib.sha256(guess.encode()).digest()).unsubscribe_token(3)
        assert api.verify_unsubscribe(forged) is None
    # Another DATA_DIR is another secret; a configured key is used as given, no file written.
    assert links_for(Settings(data_dir=tmp_path / "x")).verify_unsubscribe(token) is None
    configured = Settings(data_dir=tmp_path / "y", secret_key="configured")
    assert links_for(configured).verify_unsubscribe(Links("configured").unsubscribe_token(4)) == 4
    assert not (tmp_path / "y" / "secret_key").exists()
