"""The draft preview cache: a buyer's preview re-sends the same draft as it types, so
results are remembered per index generation and identical requests in flight share one
scoring. Every change to the index or the rules starts a new generation (nothing stale is
served). The returned matches are shared: read them, never change them.

A draft without a publishing date is scored as of now (recency), so such an entry is served
for at most a minute after it was scored. Each entry's lifetime is drawn between 45 and 60 s:
entries scored together (the first drafts after a start, or a burst) do not all expire in the
same instant, which queued every re-scoring behind one lock at once (under mixed load that was
the slowest 1-2 % of previews, up to a second, each time the minute turned). Scoring runs as
its own task: a caller cancelled by its deadline leaves it (and the index lock) to finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from models.types import Brief

PREVIEW_CACHE = 512  # previews remembered per index generation (a buyer re-sends as it types)
FRESH_SECONDS = (45.0, 60.0)  # how long a draft's preview (scored as of now) is served

Scorer = Callable[[Brief, int], Coroutine[Any, Any, tuple[int, list[Any]]]]


class PreviewCache:
    def __init__(self, size: int = PREVIEW_CACHE) -> None:
        self.size = size
        self.hits = 0
        # key -> (generation, served until (monotonic; inf for a dated brief), matches)
        self._previews: OrderedDict[tuple[Any, ...], tuple[int, float, list[Any]]] = (
            OrderedDict())
        self._inflight: dict[tuple[Any, ...], asyncio.Task[tuple[int, list[Any]]]] = {}

    async def get(self, brief: Brief, top_k: int, generation: int, score: Scorer) -> list[Any]:
        """The matches for `brief` at `generation`; `score` returns (generation, matches)."""
        key = (orjson.dumps(dataclasses.asdict(brief), default=str), top_k)
        cached = self._previews.get(key)
        if cached is not None and cached[0] == generation and time.monotonic() < cached[1]:
            self._previews.move_to_end(key)
            self.hits += 1
            return cached[2]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(score(brief, top_k))
            self._inflight[key] = task
            started = time.monotonic()
            until = (started + random.uniform(*FRESH_SECONDS) if brief.published_at is None
                     else float("inf"))

            def done(t: asyncio.Task[tuple[int, list[Any]]]) -> None:
                self._inflight.pop(key, None)
                if not t.cancelled() and t.exception() is None:
                    generation_scored, matches = t.result()
                    self._previews[key] = (generation_scored, until, matches)
                    self._previews.move_to_end(key)
                    while len(self._previews) > self.size:
                        self._previews.popitem(last=False)

            task.add_done_callback(done)
        return (await asyncio.shield(task))[1]
