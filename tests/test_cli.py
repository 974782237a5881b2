"""The `marketplace` command: help for every sub-command, `migrate` and `token create` run as
real processes against the session's servers."""

from __future__ import annotations

import os
import subprocess
import sys

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
        ([], ["up", "serve", "worker", "migrate", "import-dm", "eval", "token",
              "DATABASE_URL", "REDIS_URL", "ADMIN_TOKEN", "DATA_DIR", "PORT"]),
        (["up"], ["demo", "Ctrl-C"]),
        (["serve"], ["--no-migrate"]),
        (["worker"], ["worker"]),
        (["migrate"], ["migrate"]),
        (["import-dm"], ["file", "--quiet"]),
        (["eval"], ["--opportunities", "--split-date", "--json", "--rules"]),
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
