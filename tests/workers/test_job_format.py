"""Jobs travel as JSON: whoever can write to the queue cannot make the worker unpickle (and so
run) anything; jobs we enqueue are JSON in Redis and still run."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import orjson
from redis.asyncio import Redis

from tests.conftest import Servers
from tests.workers.conftest import running_worker, settings_for, wait_for
from workers.enqueue import create_queue


class _Planted:
    """Unpickling this runs os.system: what a pickled job in a reachable queue allows."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


async def test_a_pickled_job_planted_in_the_queue_runs_nothing(
    clean_db: Servers, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"t": 1, "f": "deliver_alerts", "a": [_Planted(marker)], "k": {},
                            "et": int(time.time() * 1000)})
    raw = Redis.from_url(clean_db.redis_url)
    try:
        await raw.set("arq:job:planted", payload)
        await raw.zadd("arq:queue", {"planted": int(time.time() * 1000)})
        async with running_worker(settings_for(clean_db, None)):

            async def taken() -> bool:  # the worker took it off the queue (and dropped it)
                return await raw.zscore("arq:queue", "planted") is None

            await wait_for(taken)
    finally:
        await raw.delete("arq:job:planted", "arq:in-progress:planted", "arq:retry:planted")
        await raw.zrem("arq:queue", "planted")
        await raw.aclose()
    assert not marker.exists()


async def test_jobs_we_enqueue_are_json(clean_db: Servers) -> None:
    queue = await create_queue(clean_db.redis_url)
    try:
        job = await queue.enqueue_job("deliver_alerts", _job_id="json-check", _defer_by=3600)
        assert job is not None
        stored = await queue.get("arq:job:json-check")
        assert stored is not None
        data = orjson.loads(stored)
        assert data["f"] == "deliver_alerts" and data["a"] == []
    finally:
        await queue.delete("arq:job:json-check")
        await queue.zrem("arq:queue", "json-check")
        await queue.aclose()
