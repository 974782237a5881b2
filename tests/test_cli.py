"""The `marketplace` command: help for every sub-command, `migrate` and `token create` run as
real processes against the session's servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from marketplace.cli import main
from models import accounts
from models.db import connect
from tests.conftest import Servers

CLI = [sys.executable, "-m", "marketplace.cli"]


def _env(servers: Servers) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPLACE_")}
    env.update(
        MARKETPLACE_DATABASE_URL=servers.database_url,
        MARKETPLACE_REDIS_URL=servers.redis_url,
        MARKETPLACE_DATA_DIR=str(servers.data_dir / "cli"),
    )
    return env


def _cli(servers: Servers, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=_env(servers), capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        ([], ["up", "serve", "worker", "migrate", "import-dm", "import-ocds", "eval", "token",
              "DATABASE_URL", "REDIS_URL", "ADMIN_TOKEN", "DATA_DIR", "PORT"]),
        (["up"], ["demo", "Ctrl-C"]),
        (["serve"], ["--no-migrate"]),
        (["worker"], ["worker"]),
        (["migrate"], ["migrate"]),
        (["import-dm"], ["file", "--quiet"]),
        (["import-ocds"], ["file", "--quiet", "party id", "record package", "JSON lines"]),
        (["eval"], ["--opportunities", "--ocds", "--split-date", "--json", "--rules"]),
        (["token"], ["create"]),
        (["token", "create"], ["--role", "--name", "--seller-id", "--organisation",
                               "--expires-days"]),
    ],
)
def test_help(argv: list[str], mentions: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in mentions:
        assert word in out, f"`marketplace {' '.join(argv)} --help` does not mention {word}"


def test_help_as_a_process() -> None:
    proc = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage: marketplace" in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    proc = subprocess.run([*CLI, "frobnicate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


async def test_migrate_is_idempotent(migrated: Servers) -> None:
    for _ in range(2):
        proc = _cli(migrated, "migrate")
        assert proc.returncode == 0, proc.stderr
        assert "schema up to date" in proc.stderr  # the session fixture migrated already
    conn = await connect(migrated.database_url)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
    finally:
        await conn.close()
    assert "001_init" in names and len(names) == len(set(names))


async def test_token_create_authenticates(clean_db: Servers) -> None:
    proc = _cli(clean_db, "token", "create", "--role", "buyer", "--name", "Ada",
                "--organisation", "HMRC", "--expires-days", "30")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token and "\n" not in token  # stdout is only the token
    conn = await connect(clean_db.database_url)
    try:
        account = await accounts.authenticate(conn, token)
        assert account is not None
        assert (account.role, account.name, account.organisation) == ("buyer", "Ada", "HMRC")
        seller_id = await conn.fetchval(
            "INSERT INTO sellers (name, name_key) VALUES ('Acme', 'acme') RETURNING id"
        )
    finally:
        await conn.close()

    proc = _cli(clean_db, "token", "create", "--role", "seller", "--name", "Acme team",
                "--seller-id", str(seller_id))
    assert proc.returncode == 0, proc.stderr
    conn = await connect(clean_db.database_url)
    try:
        account = await accounts.authenticate(conn, proc.stdout.strip())
    finally:
        await conn.close()
    assert account is not None and account.role == "seller" and account.seller_id == seller_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "seller", "--name", "x"], "--seller-id is required"),
        (["--role", "seller", "--name", "x", "--seller-id", "987654"], "no seller with id"),
        (["--role", "buyer", "--name", "x", "--seller-id", "1"], "only for role seller"),
        (["--role", "buyer", "--name", "  "], "--name must not be empty"),
        (["--role", "buyer", "--name", "x", "--expires-days", "0"], "--expires-days"),
        (["--role", "king", "--name", "x"], "invalid choice"),
    ],
)
async def test_token_create_bad_input(clean_db: Servers, args: list[str], message: str) -> None:
    proc = _cli(clean_db, "token", "create", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert proc.stdout == ""
    conn = await connect(clean_db.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tokens") == 0
    finally:
        await conn.close()


async def test_up_serves_demo_and_stops_cleanly(clean_db: Servers, tmp_path: Path) -> None:
    """`marketplace up` as a real process: migrates, bootstraps an admin token (kept 0600 in
    DATA_DIR), loads the demo, serves the API with a worker, and exits 0 on SIGTERM."""
    from marketplace.embedded import free_port

    port = free_port()
    env = _env(clean_db)
    env.update(MARKETPLACE_DATA_DIR=str(tmp_path / "data"), MARKETPLACE_PORT=str(port))
    with (tmp_path / "stderr.log").open("w") as errors:
        proc = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once; waits are threaded
            [*CLI, "up"], env=env, stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            banner = await asyncio.wait_for(asyncio.to_thread(_read_banner, proc), 120)
            token_file = tmp_path / "data" / "admin-token"
            assert token_file.stat().st_mode & 0o777 == 0o600
            admin = token_file.read_text().strip()
            assert admin in banner and f"http://127.0.0.1:{port}" in banner
            assert "curl" in banner and "/shortlist" in banner
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                    assert resp.status == 200
                async with http.get(
                    f"http://127.0.0.1:{port}/api/v1/sellers",
                    headers={"Authorization": f"Bearer {admin}"},
                ) as resp:
                    assert resp.status == 200
            conn = await connect(clean_db.database_url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM sellers") > 100
                assert await conn.fetchval("SELECT count(*) FROM briefs WHERE status = 'draft'")
            finally:
                await conn.close()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 0, (tmp_path / "stderr.log").read_text()[-3000:]


def _read_banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return "".join(lines)
    raise AssertionError("`marketplace up` ended before printing its banner")
