"""The actions both the JSON API (api/*.py) and the web pages (api/web/*) perform, one function
each, so that both do the same thing and record the same audit event: publish a brief
(`briefs`), save alert preferences and re-drive a failed alert (`alerts`), activate a rules
version (`rules`).

Each runs in the caller's transaction (opened at the edge; services never commit), raises the
API's domain errors (they carry their HTTP status; the pages turn them into error pages) and
leaves enqueueing to after the commit (`enqueue_after_commit`, `kick_delivery`)."""
