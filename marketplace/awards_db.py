"""`marketplace eval --from-db`: the service's own awards as evaluation records.

The database gives the same records the opportunity-data CSV reader produces
(`matcher.outcomes.Opportunity`, via `models.outcomes.award_records`), so everything after
reading (profiles from earlier wins, queries, our matcher, the peers, the metrics) is the code
a file runs. The database is MARKETPLACE_DATABASE_URL, else the embedded default under
MARKETPLACE_DATA_DIR (the one `marketplace up` uses; stop the service first).
"""

from __future__ import annotations

import asyncio
from typing import Any

from matcher.outcomes import Opportunity, RowError


class AwardsDbError(Exception):
    """The database could not be read (one line for stderr)."""


async def _read(url: str) -> list[dict[str, Any]]:
    from models import outcomes
    from models.db import connect

    conn = await connect(url)
    try:
        return await outcomes.award_records(conn)
    finally:
        await conn.close()


def read_awards() -> tuple[list[Opportunity], list[RowError]]:
    """Every awarded brief with its winner, oldest first (and no row errors: the database's
    rows were checked on the way in), as `read_opportunities` returns a file's."""
    import asyncpg

    from config.settings import Settings

    settings = Settings.from_env()
    try:
        if settings.database_url:
            rows = asyncio.run(_read(settings.database_url))
        else:
            from marketplace.embedded import EmbeddedServices

            services = EmbeddedServices(settings.data_dir)
            url, _ = services.start()
            try:
                rows = asyncio.run(_read(url))
            finally:
                services.stop()
    except (OSError, RuntimeError, asyncpg.PostgresError) as exc:
        raise AwardsDbError(f"cannot read awards from the database: {exc}") from exc
    # `line` numbers the records in order, as a file's rows would be.
    return [Opportunity(line=n, **row) for n, row in enumerate(rows, start=1)], []
