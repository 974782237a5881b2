"""Apply `models/migrations/*.sql` in file-name order, each once, recorded in schema_migrations.

Small enough that a migration library would add more than it saves: the files are plain SQL,
each applied in its own transaction under an advisory lock so that two processes starting
together never apply one twice.
"""

from __future__ import annotations

from importlib import resources

import asyncpg

_LOCK_KEY = 7_231_001  # arbitrary, fixed: the advisory lock that serialises migrators


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("models") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
