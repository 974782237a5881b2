"""Running the event loop, for the runner and the API processes it starts (its own module so
that the two do not import each other)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def stop_event_on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (a dependency, except on Windows): aiohttp's
    request handling costs about half as much CPU on it (bench/README.md, API processes). The
    stock loop works too. A loop factory, not `uvloop.install()`: no process-wide policy
    (deprecated from Python 3.12)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
