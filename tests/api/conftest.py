"""API fixtures: the real app on a real HTTP server (aiohttp's TestServer) against the
embedded PostgreSQL and Valkey of the shared `clean_db` fixture."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from config.settings import Settings
from tests.api.factories import User, make_user
from tests.conftest import Servers

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def settings_for(servers: Servers, **overrides: object) -> Settings:
    base = Settings(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        admin_token=ADMIN_TOKEN,
        data_dir=servers.data_dir,
        webhook_allow_private=True,
        secret_key="test-secret",
    )
    return Settings(**{**{f: getattr(base, f) for f in base.__slots__}, **overrides})  # type: ignore[arg-type]


def closed_port_url() -> str:
    """A redis URL nobody listens on (bound then closed: connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


MakeClient = Callable[..., AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def make_client(clean_db: Servers) -> MakeClient:
    @asynccontextmanager
    async def factory(**overrides: object) -> AsyncIterator[TestClient]:
        app = create_app(settings_for(clean_db, **overrides))
        async with TestClient(TestServer(app)) as client:
            yield client

    return factory


@pytest.fixture
async def client(make_client: MakeClient, pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    async with make_client() as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def buyer(pool: asyncpg.Pool) -> User:
    return await make_user(pool, "buyer", organisation="Department for Work and Pensions")


@pytest.fixture
async def other_buyer(pool: asyncpg.Pool) -> User:
    return await make_user(pool, "buyer", organisation="Home Office")


@pytest.fixture
async def seller(pool: asyncpg.Pool) -> User:
    return await make_user(pool, "seller")


@pytest.fixture
async def other_seller(pool: asyncpg.Pool) -> User:
    return await make_user(pool, "seller")
