"""Run a worker until SIGTERM/SIGINT (or cancellation), surviving Redis outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from arq import Worker
from redis.exceptions import RedisError

from config.settings import Settings, WorkerConfig
from workers.context import Ctx, close_resources, open_resources
from workers.settings import worker_settings

log = logging.getLogger("workers")


async def run_worker(
    settings: Settings,
    *,
    config: WorkerConfig | None = None,
    handle_signals: bool = True,
    burst: bool = False,
) -> None:
    """The database pool, the live index and the HTTP session are opened once and outlive the
    arq Worker, which is rebuilt whenever Redis goes away (arq itself stops on a lost
    connection). SIGTERM: stop taking jobs, let in-flight ones finish for
    `shutdown_grace_seconds`, then cancel them; cancelled deliveries hand their alerts back.

    With handle_signals=False (the process runs other things, e.g. `marketplace up`), cancel
    the task to stop it.
    """
    config = config or WorkerConfig.from_env()
    kwargs = worker_settings(settings, config)
    ctx: Ctx = kwargs.pop("ctx")
    ctx["resources_external"] = True
    await open_resources(ctx, settings, config)
    signalled = asyncio.Event()
    backoff = 1.0
    try:
        while True:
            worker = Worker(**kwargs, ctx=ctx, handle_signals=handle_signals, burst=burst)
            ctx["worker"] = worker
            worker.on_stop = lambda _sig: signalled.set()
            try:
                await worker.async_run()
                return  # burst mode: the queue is empty
            except asyncio.CancelledError:
                if signalled.is_set():
                    log.info("worker stopped by signal")
                    return
                # Cancelled by our host process (`marketplace up`): the same grace as SIGTERM,
                # then whatever is still running is cancelled and hands its alerts back.
                ctx["stopping"] = True
                worker.allow_pick_jobs = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(_jobs_done(worker)), config.shutdown_grace_seconds
                    )
                raise
            except (RedisError, OSError) as exc:
                log.warning("queue connection lost (%s); restarting in %.0fs", exc, backoff)
            finally:
                with contextlib.suppress(Exception):
                    await worker.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
    finally:
        await close_resources(ctx)


async def _jobs_done(worker: Worker) -> None:
    pending = [t for t in worker.tasks.values() if not t.done()]
    if pending:
        await asyncio.wait(pending)


def main() -> None:  # pragma: no cover - `python -m workers.main` for tests and debugging
    from config.logs import setup_logging
    from config.settings import read_environment

    env = read_environment()
    setup_logging(verbose=env.verbose)
    settings = Settings.from_env()
    try:  # uvloop roughly doubles webhook throughput; the stock loop works too
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run_worker(settings, burst=env.worker_burst))


if __name__ == "__main__":  # pragma: no cover
    main()
