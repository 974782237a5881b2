"""Creating and activating a rules version, for the API and the web pages alike."""

from __future__ import annotations

from typing import Any

import asyncpg

from api.errors import NotFound
from models import audit
from models import rules as rules_repo


async def activate(conn: asyncpg.Connection, version: int, actor_id: int, note: str) -> None:
    """Make `version` the active rules (every matching process switches within a second) and
    record who, why and what was active before (0: the built-in defaults). NotFound: no such
    version."""
    previous = await rules_repo.get_active(conn)
    if not await rules_repo.activate(conn, version):
        raise NotFound("no such rules version")
    await audit.record(
        conn, actor_id=actor_id, action="rules.activated", entity="rules",
        entity_id=version, data={"note": note, "previous": previous[0] if previous else 0},
    )


async def create(conn: asyncpg.Connection, body: dict[str, Any], note: str, actor_id: int,
                 *, activate_it: bool = False) -> int:
    """Store a validated rules body as a new version (and activate it when asked); returns the
    version."""
    version = await rules_repo.create_version(conn, body, note, actor_id)
    await audit.record(
        conn, actor_id=actor_id, action="rules.created", entity="rules", entity_id=version,
        data={"note": note},
    )
    if activate_it:
        await activate(conn, version, actor_id, note)
    return version
