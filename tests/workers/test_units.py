"""Pure pieces: who gets an alert, backoff, signatures, address guard (signed links:
test_links.py)."""

from __future__ import annotations

import random
import time

import pytest

from models.types import Brief
from workers.delivery import (
    DeliveryError,
    check_webhook_url,
    sign,
    verify_signature,
)
from workers.filters import allows, channel_for, retry_delay
from workers.http1 import Http1Client, RefusedAddress

BRIEF = Brief(
    id=1,
    title="Python data platform",
    summary="Build a data platform for benefits",
    category="digital-outcomes",
    location="London",
    essential_skills=["python"],
    budget=50_000,
    max_day_rate=600,
)
BASE = {"frequency": "instant", "email": "a@b.test"}


@pytest.mark.parametrize(
    ("prefs", "expected"),
    [
        (None, False),
        (BASE, True),
        ({**BASE, "frequency": "off"}, False),
        ({**BASE, "paused": True}, False),
        ({"frequency": "instant"}, False),  # no channel at all
        ({**BASE, "min_score": 0.8}, False),
        ({**BASE, "min_score": 0.5}, True),
        ({**BASE, "categories": ["digital-specialists"]}, False),
        ({**BASE, "categories": ["Digital-Outcomes"]}, True),
        ({**BASE, "locations": ["Scotland"]}, False),
        ({**BASE, "locations": ["london"]}, True),
        ({**BASE, "keywords": ["python"]}, True),
        ({**BASE, "keywords": ["java"]}, False),
        ({**BASE, "keywords": ["data platform"]}, True),
        ({**BASE, "exclude_keywords": ["benefits"]}, False),
        ({**BASE, "exclude_keywords": ["bene"]}, True),  # whole words only
        ({**BASE, "min_budget": 60_000}, False),
        ({**BASE, "min_budget": 40_000}, True),
        ({**BASE, "min_day_rate": 700}, False),
        ({**BASE, "min_day_rate": 500}, True),
    ],
)
def test_allows(prefs: dict | None, expected: bool) -> None:
    assert allows(prefs, BRIEF, 0.6) is expected


def test_unknown_budget_never_hides_a_brief() -> None:
    brief = Brief(id=2, title="x", category="digital-outcomes")
    assert allows({**BASE, "min_budget": 1e9, "min_day_rate": 1e9}, brief, 0.5)


def test_channels() -> None:
    assert channel_for({"frequency": "instant", "email": "e", "webhook_url": "u"}) == "webhook"
    assert channel_for({"frequency": "instant", "email": "e"}) == "email"
    assert channel_for({"frequency": "daily", "email": "e", "webhook_url": "u"}) == "digest"
    assert channel_for({"frequency": "daily", "webhook_url": "u"}) is None


def test_backoff_grows_with_jitter_and_cap() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, 2.0, 60.0, rng) for n in range(1, 10)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 * 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(retry_delay(3, 2.0, 60.0), 6) for _ in range(20)}) > 1


def test_signature_round_trip() -> None:
    body = b'{"a": 1}'
    now = int(time.time())
    header = sign("k", body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature("k", header, body)
    assert not verify_signature("other", header, body)
    assert not verify_signature("k", header, body + b" ")
    assert not verify_signature("k", sign("k", body, now - 3600), body)  # too old: replay
    assert not verify_signature("k", "garbage", body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        # IPv6 forms carrying a private IPv4 address, and site-local: the save-time policy.
        "http://[::127.0.0.1]/x",
        "http://[64:ff9b::7f00:1]/x",
        "http://[2002:7f00:1::]/x",
        "http://[fec0::1]/x",
        "http://localhost:8080/x",
        "ftp://example.com/x",
        "http:///x",
    ],
)
def test_private_webhook_targets_refused(url: str) -> None:
    with pytest.raises(DeliveryError) as info:
        check_webhook_url(url, allow_private=False)
    assert info.value.permanent


def test_private_allowed_when_configured() -> None:
    check_webhook_url("http://127.0.0.1:9/x", allow_private=True)
    check_webhook_url("https://93.184.215.14/x", allow_private=False)


async def test_names_resolving_to_private_addresses_refused() -> None:
    client = Http1Client(allow_private=False, timeout=2, connect_timeout=1, max_response_bytes=1000)
    try:
        # A name (not a literal) that resolves to loopback: refused at connection time.
        with pytest.raises(RefusedAddress):
            await client.post("http://localhost:9/x", b"{}", {})
    finally:
        await client.close()


def test_the_stored_shortlist_is_the_best_n_and_every_alerted_match() -> None:
    from matcher import Match, Rules
    from workers.jobs import _kept

    # 40 matches, best first: scores 0.80, 0.78, ... (2 points apart).
    matches = [Match(seller_id=i, score=round(0.8 - 0.02 * (i - 1), 2), rank=i)
               for i in range(1, 41)]
    rules = Rules(shortlist_size=5, alert_threshold=0.5)
    kept = _kept(matches, rules)
    # Ranks 1-5 are the shortlist; scores down to 0.50 (rank 16) are alerted, so stored too.
    assert [m.rank for m in kept] == list(range(1, 17))
    assert _kept(matches, Rules(shortlist_size=25, alert_threshold=0.99)) == matches[:25]
