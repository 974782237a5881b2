"""A small marketplace with outcomes, for the performance dashboard and open data tests, with
figures small enough to compute by hand (tests/api/test_performance.py lists them).

What the API on main can do goes through the API: tokens, sellers, alert preferences, drafts,
publishing. Times are then fixed with SQL (a test cannot wait a month), stored shortlists and
alerts are written through their repositories (the worker's own functions), and the outcome
rows whose endpoints are not on main yet (responses, invitations, awards, pending claims) are
written by `outcome_rows` below with the columns of migration 004.

Private values carry the marker PRIVATE so a test can check that none reaches a public byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from models import alerts, matches

PRIVATE = "ZqPRIVATE"  # in every private value: never in a public byte

T0 = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)


@dataclass
class Seeded:
    sellers: dict[str, int] = field(default_factory=dict)
    briefs: dict[str, int] = field(default_factory=dict)
    buyer_headers: dict[str, str] = field(default_factory=dict)
    private: list[str] = field(default_factory=list)


async def _ok(response: Any, status: int = 200) -> Any:
    body = await response.text()
    assert response.status == status, body
    return orjson.loads(body) if body else None


async def outcome_rows(
    conn: asyncpg.Connection,
    *,
    responses: list[tuple[int, int, str]] = (),  # type: ignore[assignment]
    invitations: list[tuple[int, int]] = (),  # type: ignore[assignment]
    awards: list[tuple[int, int, datetime]] = (),  # type: ignore[assignment]
    claims: list[tuple[int, str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> None:
    """Rows of the outcome tables (migration 004) whose endpoints are being written elsewhere."""
    for brief_id, seller_id, response in responses:
        await conn.execute(
            "INSERT INTO responses (brief_id, seller_id, response) VALUES ($1, $2, $3)",
            brief_id, seller_id, response,
        )
    for brief_id, seller_id in invitations:
        await conn.execute(
            "INSERT INTO invitations (brief_id, seller_id) VALUES ($1, $2)", brief_id, seller_id
        )
    for brief_id, seller_id, at in awards:
        await conn.execute(
            "UPDATE briefs SET status = 'awarded', winner_seller_id = $2, awarded_at = $3,"
            " updated_at = now() WHERE id = $1",
            brief_id, seller_id, at,
        )
    for seller_id, kind, value in claims:
        await conn.execute(
            "INSERT INTO seller_claims (seller_id, kind, value) VALUES ($1, $2, $3)",
            seller_id, kind, value,
        )


async def seed(client: TestClient, pool: asyncpg.Pool, admin: dict[str, str]) -> Seeded:
    out = Seeded()
    r = await client.post("/api/v1/tokens", headers=admin, json={
        "role": "buyer", "name": f"Buyer {PRIVATE} Name", "organisation": "Ministry of Tests",
    })
    out.buyer_headers = {"Authorization": f"Bearer {(await _ok(r, 201))['token']}"}
    out.private.append(f"Buyer {PRIVATE} Name")

    for key, sme in (("alpha", True), ("beta", True), ("gamma", False), ("delta", False),
                     ("responder", False)):
        name = f"{key.title()} Digital Ltd"
        if key in ("beta", "gamma", "responder"):
            # never a winner: its name may appear nowhere public
            name = f"{key.title()} {PRIVATE} Ltd"
            out.private.append(name)
        r = await client.post("/api/v1/sellers", headers=admin, json={
            "name": name, "summary": "Python services for government.", "sme": sme,
            "categories": ["digital-outcomes", "digital-specialists"], "skills": ["python"],
            "locations": ["London"],
        })
        out.sellers[key] = (await _ok(r, 201))["id"]
    # Inactive sellers do not count in the SME share of sellers.
    r = await client.post("/api/v1/sellers", headers=admin, json={
        "name": "Dormant Ltd", "sme": True, "active": False,
    })
    await _ok(r, 201)

    for key in ("alpha", "beta"):
        r = await client.put(
            f"/api/v1/sellers/{out.sellers[key]}/alert-preferences", headers=admin,
            json={"frequency": "instant", "email": f"{key}-{PRIVATE}@example.com",
                  "webhook_url": f"https://hooks.example.com/{PRIVATE}/{key}",
                  "webhook_secret": f"secret-{PRIVATE}-{key}"},
        )
        await _ok(r)
        out.private += [f"{key}-{PRIVATE}@example.com", f"hooks.example.com/{PRIVATE}",
                        f"secret-{PRIVATE}-{key}"]

    briefs = {
        "b1": ("Python service for tax credits", "digital-outcomes", T0),
        "b2": ("Data platform for pensions", "digital-outcomes", T0 + timedelta(days=10, hours=2)),
        "b3": ("Developer for benefits", "digital-specialists",
               datetime(2026, 2, 5, 9, 0, tzinfo=UTC)),
        "b4": ("Accessibility audit", "digital-outcomes", datetime(2026, 4, 2, 8, 0, tzinfo=UTC)),
    }
    for key, (title, category, _) in briefs.items():
        r = await client.post("/api/v1/briefs", headers=out.buyer_headers, json={
            "title": title, "summary": f"We need help: {title.lower()}.",
            "category": category, "location": "London",
            "essential_skills": ["python"], "nice_to_have_skills": ["aws"],
            "role": "developer" if category == "digital-specialists" else "",
            "closes_at": "2026-12-31",
        })
        out.briefs[key] = (await _ok(r, 201))["id"]
        r = await client.post(f"/api/v1/briefs/{out.briefs[key]}/publish",
                              headers=out.buyer_headers)
        assert r.status in (200, 201), await r.text()
    r = await client.post("/api/v1/briefs", headers=out.buyer_headers, json={
        "title": f"Draft {PRIVATE} idea", "summary": f"Not ready {PRIVATE}",
        "category": "digital-outcomes",
    })
    out.briefs["draft"] = (await _ok(r, 201))["id"]
    out.private.append(f"Draft {PRIVATE} idea")

    s, b = out.sellers, out.briefs
    shortlists = {  # brief: (seconds after publishing, [(seller, rank)])
        "b1": (60, [("alpha", 1), ("gamma", 2), ("beta", 11)]),
        "b2": (180, [("beta", 1), ("delta", 2)]),
        "b3": (300, [("alpha", 1)]),
    }
    # (brief, seller, channel, status, seconds from written to sent)
    alert_rows = [
        ("b1", "alpha", "email", "sent", 2), ("b1", "gamma", "webhook", "sent", 4),
        ("b1", "beta", "digest", "sent", 3600), ("b2", "beta", "email", "failed", None),
        ("b2", "delta", "email", "sent", 10), ("b3", "alpha", "webhook", "sent", 1),
    ]
    async with pool.acquire() as conn, conn.transaction():
        for key, (_, _, published) in briefs.items():
            await conn.execute("UPDATE briefs SET published_at = $2 WHERE id = $1",
                               b[key], published)
        for key, (delay, ranked) in shortlists.items():
            await matches.replace_shortlist(conn, b[key], [
                {"seller_id": s[seller], "score": 1 - rank / 20, "rank": rank,
                 "explanation": {"summary": f"why {PRIVATE}"}}
                for seller, rank in ranked
            ], rules_version=1)
            await conn.execute(
                "UPDATE matches SET created_at = $2 WHERE brief_id = $1",
                b[key], briefs[key][2] + timedelta(seconds=delay),
            )
        for brief, seller, channel, status, latency in alert_rows:
            await alerts.create_many(conn, b[brief], [(s[seller], channel, 0.5)])
            written = briefs[brief][2] + timedelta(minutes=10)
            await conn.execute(
                "UPDATE alerts SET status = $3, created_at = $4, sent_at = $5,"
                " last_error = $6 WHERE brief_id = $1 AND seller_id = $2",
                b[brief], s[seller], status, written,
                None if latency is None else written + timedelta(seconds=latency),
                f"POST https://hooks.example.com/{PRIVATE}/x refused" if status == "failed"
                else None,
            )
        await outcome_rows(
            conn,
            responses=[(b["b1"], s["alpha"], "interested"), (b["b1"], s["beta"], "applied"),
                       (b["b1"], s["responder"], "not_for_me"), (b["b2"], s["delta"], "applied"),
                       (b["b3"], s["alpha"], "applied")],
            invitations=[(b["b1"], s["alpha"]), (b["b1"], s["gamma"]), (b["b3"], s["beta"])],
            awards=[(b["b1"], s["alpha"], datetime(2026, 2, 1, 12, 0, tzinfo=UTC)),
                    (b["b2"], s["delta"], datetime(2026, 2, 15, 12, 0, tzinfo=UTC))],
            claims=[(s["gamma"], "past_work", {"title": f"Claimed {PRIVATE} work",
                                               "organisation": f"Org {PRIVATE}"}),
                    (s["gamma"], "category", {"category": f"cat-{PRIVATE}"})],
        )
    out.private += [f"Claimed {PRIVATE} work", f"why {PRIVATE}"]
    return out
