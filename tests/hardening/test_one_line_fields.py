"""Text that would break delivery: one-line fields refuse every line and paragraph separator
(and C1 controls), and whatever reaches a mail header is made safe there too (briefs also come
from imports, which do not pass through the API)."""

from __future__ import annotations

import email
import email.policy

import aiohttp
import pytest

from tests.hardening.conftest import Serve
from workers.delivery import _SMTP_POLICY, build_email

SEPARATORS = ["\u2028", "\u2029", "\x85", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x9b"]


@pytest.mark.parametrize("sep", SEPARATORS)
async def test_one_line_fields_refuse_line_and_paragraph_separators(
    serve: Serve, sep: str
) -> None:
    async with serve() as world, aiohttp.ClientSession() as http:
        buyer, seller = world.headers("buyer"), world.headers("seller")
        r = await http.post(world.url("/api/v1/briefs"),
                            json={"title": f"Data{sep}platform"}, headers=buyer)
        assert r.status == 422, repr(sep)
        assert [d["field"] for d in (await r.json())["error"]["details"]] == ["title"]
        r = await http.post(world.url("/api/v1/briefs"),
                            json={"title": "Data", "essential_skills": [f"py{sep}thon"]},
                            headers=buyer)
        assert r.status == 422, repr(sep)
        r = await http.patch(world.url(f"/api/v1/sellers/{world.ids['seller']}"),
                             json={"name": f"Acme{sep}Ltd"}, headers=seller)
        assert r.status == 422, repr(sep)
        # Free text keeps its line breaks (and pasted line separators).
        if sep in "\n\u2028\u2029":
            r = await http.post(world.url("/api/v1/briefs"),
                                json={"title": "Data", "summary": f"One{sep}two"},
                                headers=buyer)
            assert r.status == 201, repr(sep)


def test_mail_headers_are_safe_whatever_the_title() -> None:
    alert = {
        "id": 1, "seller_id": 2, "brief_id": 3, "score": 0.5, "seller_name": "Acme",
        "title": "Caf\u00e9\u2028data\x85platform\u2029\r\nBcc: victim@example.org",
        "explanation": {},
    }
    msg = build_email([alert], to="bids@example.org", mail_from="Alerts <a@example.org>",
                      base_url="http://x", signing_key=b"k", digest=False)
    raw = msg.as_bytes(policy=_SMTP_POLICY)
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not [line for line in header_lines if line.lower().startswith(b"bcc")]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == (
        "New opportunity: Caf\u00e9 data platform Bcc: victim@example.org"
    )
