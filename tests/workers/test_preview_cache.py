"""The draft preview cache: a draft's preview (scored as of now) is served for at most a
minute, entries scored together expire at different moments, a dated brief's preview lasts as
long as its index generation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

import live.preview as preview
from live.preview import PreviewCache
from models.types import Brief


class Scorer:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, brief: Brief, top_k: int) -> tuple[int, list[Any]]:
        self.calls += 1
        return 1, [self.calls]


async def test_a_draft_preview_expires_and_a_dated_one_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview, "FRESH_SECONDS", (0.2, 0.2))
    cache, score = PreviewCache(), Scorer()
    draft = Brief(id=0, title="Kubernetes platform")
    dated = Brief(id=0, title="Kubernetes platform", published_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert await cache.get(draft, 10, 1, score) == [1]
    assert await cache.get(draft, 10, 1, score) == [1] and cache.hits == 1
    assert await cache.get(dated, 10, 1, score) == [2]
    await asyncio.sleep(0.25)
    assert await cache.get(draft, 10, 1, score) == [3]  # scored again: older than its lifetime
    assert await cache.get(dated, 10, 1, score) == [2]  # as of its date: still right
    assert await cache.get(dated, 10, 2, score) == [4]  # a new index generation


async def test_entries_scored_together_expire_apart() -> None:
    cache, score = PreviewCache(), Scorer()
    for i in range(40):
        await cache.get(Brief(id=0, title=f"Draft {i}"), 10, 1, score)
    until = sorted(entry[1] for entry in cache._previews.values())
    low, high = preview.FRESH_SECONDS
    assert until[-1] - until[0] > (high - low) / 4  # spread, not one instant
