"""SQL of the open data exports (/open-data/opportunities.csv and /open-data/ocds.json): every
published brief with its award, read through a server-side cursor so that a hundred thousand
briefs stream in pages and never sit in memory at once.

Only public facts are selected: a published brief's own fields, its winner's name and SME
status, and counts of applications. Drafts, accounts, contact details, alert preferences,
individual responses and claims are never read here.

Call `snapshot()` first in the request's transaction: the fingerprint (ETag) and the rows are
then read from one consistent view of the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

PAGE = 500  # rows the cursor fetches per round trip

_PUBLISHED = "b.published_at IS NOT NULL AND b.status <> 'draft'"

_ROWS = f"""
SELECT b.id, b.external_id, b.organisation, b.title, b.summary, b.category, b.role,
       b.location, b.essential_skills, b.nice_to_have_skills, b.budget, b.closes_at, b.status,
       b.published_at, b.awarded_at, b.updated_at,
       w.id AS winner_id, w.name AS winner_name, w.sme AS winner_sme,
       c.label AS category_label,
       a.applied, a.applied_sme
FROM briefs b
LEFT JOIN sellers w ON b.status = 'awarded' AND w.id = b.winner_seller_id
LEFT JOIN categories c ON c.id = b.category
LEFT JOIN LATERAL (
    SELECT count(*) AS applied, count(*) FILTER (WHERE s.sme) AS applied_sme
    FROM responses r JOIN sellers s ON s.id = r.seller_id
    WHERE r.brief_id = b.id AND r.response = 'applied'
) a ON true
WHERE {_PUBLISHED}
ORDER BY b.id
"""

# What the exports are made of, summarised: any change to a published brief (its row's
# updated_at, status, award), to a winner's name or size, or to the applications changes it.
# hashtextextended sums are order-independent, so no sort is needed.
_FINGERPRINT = f"""
SELECT
  (SELECT concat_ws(',', count(*), max(b.updated_at), max(b.awarded_at),
          sum(hashtextextended(concat_ws('|', b.id, b.updated_at, b.status,
                                         b.winner_seller_id, b.awarded_at), 0)))
   FROM briefs b WHERE {_PUBLISHED}) AS briefs,
  (SELECT concat_ws(',', count(*), sum(hashtextextended(concat_ws('|', s.id, s.name, s.sme), 0)))
   FROM sellers s WHERE s.id IN (SELECT winner_seller_id FROM briefs b
                                 WHERE {_PUBLISHED} AND b.status = 'awarded')) AS winners,
  (SELECT concat_ws(',', count(*), sum(hashtextextended(concat_ws('|', r.brief_id,
                                                                  r.seller_id), 0)))
   FROM responses r WHERE r.response = 'applied') AS applications,
  (SELECT concat_ws(',', count(*), sum(hashtextextended(concat_ws('|', id, label), 0)))
   FROM categories) AS categories,
  (SELECT max(t) FROM (
      SELECT max(greatest(b.updated_at, b.awarded_at)) AS t FROM briefs b WHERE {_PUBLISHED}
      UNION ALL SELECT max(updated_at) FROM responses WHERE response = 'applied') u
  ) AS last_modified
"""


@dataclass(frozen=True, slots=True)
class Version:
    tag: str  # a digest of everything the exports are made of
    last_modified: datetime | None


async def snapshot(conn: asyncpg.Connection) -> None:
    """Make the current transaction one read-only snapshot (must be its first statement)."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def version(conn: asyncpg.Connection) -> Version:
    row = await conn.fetchrow(_FINGERPRINT)
    text = "\n".join(str(row[k]) for k in ("briefs", "winners", "applications", "categories"))
    return Version(hashlib.sha256(text.encode()).hexdigest()[:32], row["last_modified"])


async def published_briefs(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    """Every published brief, oldest id first, with its winner and application counts.
    Needs a transaction (a server-side cursor lives in one)."""
    async for row in conn.cursor(_ROWS, prefetch=PAGE):
        yield row
