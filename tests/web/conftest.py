"""Web page fixtures: the real app (create_app + setup_web) on a real HTTP server against the
embedded PostgreSQL and Valkey of `clean_db`, and a small marketplace of sellers, briefs and
accounts written through the repositories."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.web import setup_web
from api.web.session import COOKIE
from config.settings import Settings
from models import accounts, audit, briefs, sellers
from tests.conftest import Servers

SECRET_KEY = "web-test-secret"

SELLERS = [
    ("Python Cloud Builders Ltd", "We build Python services and data pipelines on AWS with "
     "PostgreSQL for government departments.", ["python", "aws", "postgresql"], ["London"]),
    ("Accessible Services Co", "User research, service design and accessibility audits for "
     "public services; WCAG specialists.", ["user research", "accessibility", "service design"],
     ["London", "Manchester"]),
    ("Data Science Partners", "Machine learning, data science and Python analytics for "
     "health and transport.", ["python", "machine learning", "data science"], ["Leeds"]),
    ("Kubernetes Platform Team", "Cloud platforms on Kubernetes and AWS, DevOps and site "
     "reliability engineering.", ["kubernetes", "aws", "devops"], ["London"]),
    ("Java Legacy Modernisers", "Modernising legacy Java systems, Spring Boot APIs and "
     "PostgreSQL migrations.", ["java", "spring", "postgresql"], ["Birmingham"]),
    ("Content Design Studio", "Content design, copywriting and plain English for GOV.UK "
     "services.", ["content design", "copywriting"], ["Bristol"]),
    ("Agile Delivery Group", "Agile delivery managers and product managers for digital "
     "transformation programmes.", ["agile", "delivery management", "product management"],
     ["London"]),
    ("Secure Systems Ltd", "Security architecture, penetration testing and cyber security for "
     "government.", ["security", "penetration testing"], ["Manchester"]),
]

BRIEFS = [
    ("Python data pipeline for benefit statistics", "Build Python data pipelines on AWS with "
     "PostgreSQL.", ["python", "postgresql"]),
    ("Accessibility audit of a citizen service", "Audit accessibility and run user research "
     "with disabled users.", ["accessibility", "user research"]),
    ("Kubernetes hosting platform", "Run a Kubernetes platform on AWS with DevOps practices.",
     ["kubernetes", "devops"]),
    ("Machine learning for fraud detection", "Data science and machine learning in Python.",
     ["machine learning", "python"]),
]


@dataclass
class Market:
    buyer_token: str
    buyer_id: int
    other_buyer_token: str
    seller_token: str
    seller_id: int
    admin_token: str
    seller_ids: list[int] = field(default_factory=list)
    brief_ids: list[int] = field(default_factory=list)
    other_brief_id: int = 0


def settings_for(servers: Servers) -> Settings:
    return Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        data_dir=servers.data_dir,
        webhook_allow_private=True,
        secret_key=SECRET_KEY,
    )


def make_app(servers: Servers) -> web.Application:
    app = create_app(settings_for(servers))
    # The lead wires setup_web into create_app; until then (and never twice) the tests do.
    if "web.home" not in app.router.named_resources():
        setup_web(app)
    return app


async def _token(conn: asyncpg.Connection, role: str, name: str, **kw: object) -> tuple[int, str]:
    account_id = await accounts.create_account(conn, role=role, name=name, **kw)  # type: ignore[arg-type]
    return account_id, await accounts.issue_token(conn, account_id)


async def seed(pool: asyncpg.Pool) -> Market:
    async with pool.acquire() as conn, conn.transaction():
        seller_ids = []
        for name, summary, skills, locations in SELLERS:
            row = await sellers.create(conn, {
                "name": name, "summary": summary, "skills": skills, "locations": locations,
                "categories": ["digital-outcomes", "digital-specialists"], "day_rate": 650.0,
            })
            seller_ids.append(int(row["id"]))
        buyer_id, buyer_token = await _token(
            conn, "buyer", "Brenda Buyer", organisation="Department for Work and Pensions"
        )
        other_id, other_token = await _token(conn, "buyer", "Oscar Other", organisation="HMRC")
        _, seller_token = await _token(
            conn, "seller", "Sam Seller", seller_id=seller_ids[0]
        )
        _, admin_token = await _token(conn, "admin", "Ada Admin")
        brief_ids = []
        for title, summary, skills in BRIEFS:
            row = await briefs.create(conn, {
                "title": title, "summary": summary, "essential_skills": skills,
                "category": "digital-outcomes", "location": "London",
                "organisation": "Department for Work and Pensions",
            }, buyer_account_id=buyer_id)
            await briefs.publish(conn, row["id"])
            brief_ids.append(int(row["id"]))
        # A past award: the winner's rank feeds the what-if's ranking-quality figures.
        await conn.execute(
            "UPDATE briefs SET status = 'awarded', winner_seller_id = $2 WHERE id = $1",
            brief_ids[0], seller_ids[0],
        )
        other = await briefs.create(
            conn, {"title": "Other buyer's secret draft"}, buyer_account_id=other_id
        )
        await audit.record(conn, actor_id=None, action="seed", entity="test", entity_id=None)
    return Market(
        buyer_token=buyer_token, buyer_id=buyer_id, other_buyer_token=other_token,
        seller_token=seller_token, seller_id=seller_ids[0], admin_token=admin_token,
        seller_ids=seller_ids, brief_ids=brief_ids, other_brief_id=int(other["id"]),
    )


@pytest.fixture
async def market(pool: asyncpg.Pool) -> Market:
    return await seed(pool)


@pytest.fixture
async def server(clean_db: Servers, market: Market) -> AsyncIterator[TestServer]:
    srv = TestServer(make_app(clean_db), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[TestClient]:
    async with TestClient(server) as c:
        yield c


async def sign_in(client: TestClient, token: str) -> None:
    """Sign in through the form, as a browser does: the jar gets the session cookie."""
    html = await (await client.get("/signin")).text()
    resp = await client.post("/signin", data={"csrf_token": csrf_of(html), "token": token},
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE)


_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)
