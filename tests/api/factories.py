"""Small factories for API tests: accounts with tokens, sellers and briefs, written straight
through the repositories (the HTTP paths are what the tests exercise)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from models import accounts, briefs, sellers

_n = itertools.count(1)


@dataclass(frozen=True)
class User:
    account_id: int
    token: str
    role: str
    seller_id: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(
    pool: asyncpg.Pool,
    role: str,
    *,
    seller_id: int | None = None,
    organisation: str = "",
    expires_at: datetime | None = None,
) -> User:
    async with pool.acquire() as conn:
        if role == "seller" and seller_id is None:
            seller_id = await make_seller(pool)
        account_id = await accounts.create_account(
            conn, role=role, name=f"{role} {next(_n)}", organisation=organisation,
            seller_id=seller_id,
        )
        token = await accounts.issue_token(conn, account_id, expires_at=expires_at)
    return User(account_id, token, role, seller_id)


SELLER_DEFAULTS: dict[str, Any] = {
    "summary": "We build accessible digital services for government: user research, "
    "service design, Python and cloud engineering.",
    "categories": ["digital-outcomes", "digital-specialists"],
    "skills": ["python", "user research", "accessibility", "aws"],
    "locations": ["London", "Manchester"],
    "day_rate": 600.0,
}


async def make_seller(pool: asyncpg.Pool, **fields: Any) -> int:
    data = {"name": f"Seller {next(_n)} Ltd", **SELLER_DEFAULTS, **fields}
    async with pool.acquire() as conn:
        row = await sellers.create(conn, data)
    return int(row["id"])


BRIEF_DEFAULTS: dict[str, Any] = {
    "title": "Build an accessible Python service for benefit claims",
    "summary": "We need a team to design and build a digital service with user research, "
    "accessibility and Python on AWS.",
    "category": "digital-outcomes",
    "location": "London",
    "essential_skills": ["python", "accessibility"],
    "nice_to_have_skills": ["aws"],
}


async def make_brief(pool: asyncpg.Pool, owner: User, **fields: Any) -> int:
    async with pool.acquire() as conn:
        row = await briefs.create(
            conn, {**BRIEF_DEFAULTS, **fields}, buyer_account_id=owner.account_id
        )
    return int(row["id"])
