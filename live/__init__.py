"""The live index: a matcher kept current with PostgreSQL through LISTEN/NOTIFY, run by both
the API (previews, what-if) and the worker (matching published briefs).

`index` (LiveMatcher: load, apply changes, refit), `listener` (the LISTEN connection and its
supervisor), `snapshots` (the persisted index: where, checked against what, written how),
`preview` (the draft preview cache)."""

from live.index import LiveMatcher
from live.snapshots import default_snapshot_path, revision_diff

__all__ = ["LiveMatcher", "default_snapshot_path", "revision_diff"]
