"""Several API processes on one port (`MARKETPLACE_API_PROCESSES`, `serve/up --processes K`).

Matching is CPU-bound Python and numpy under one GIL, so one API process uses about one core.
With K > 1 the parent process starts K children, each a whole API (its own database pool, its
own `LiveMatcher` with its own LISTEN connection, so each keeps the 1 s edit-to-visible
guarantee), all listening on the same port with `SO_REUSEPORT`: the kernel spreads new
connections across them. The parent serves no requests (under `up` it runs the worker).

- Start: the first child starts alone and, once its index is loaded and the index snapshot is
  on disk, the others start and load that snapshot (about 2 s at 100,000 sellers) instead of
  each fitting the index from the database at the same time. The first child already serves
  meanwhile.
- A child that dies is logged as an error with its exit code and restarted (it loads the
  snapshot). More than `RESTART_LIMIT` deaths within `RESTART_WINDOW` seconds (a crash loop:
  bad settings, the database gone) stop the whole service with exit status 1, so a process
  manager above us (systemd, Docker) sees the failure.
- Stop (SIGINT/SIGTERM to the parent): every child gets SIGTERM and stops cleanly (its
  in-flight requests, index listener and pool closed); a child still running after
  `STOP_TIMEOUT` is killed. A child also gets SIGTERM when the parent dies (Linux
  PR_SET_PDEATHSIG), so none is left behind.
- Memory: each child holds its own index (about 160 MB at 100,000 sellers, 1.5 GB at 1,000,000)
  and up to 11 database connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from marketplace.settings import Settings

log = logging.getLogger("marketplace.processes")

RESTART_LIMIT = 5  # deaths within RESTART_WINDOW before the whole service gives up
RESTART_WINDOW = 60.0
STOP_TIMEOUT = 20.0
FIRST_READY_TIMEOUT = 900.0  # a cold fit at 1,000,000 sellers takes about 2 minutes
_POLL = 0.2
_PR_SET_PDEATHSIG = 1


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on: with SO_REUSEPORT a second service started
    by mistake would otherwise silently share the port (and the traffic) with the first."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As aiohttp does: connections of a previous run in TIME_WAIT do not block the port
        # (on Linux a socket listening there still does).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc}") from exc


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_main(settings: Settings, number: int, pages: bool, pipe: Connection,
                verbose: bool) -> None:
    """Entry point of one API child (a fresh interpreter: multiprocessing's spawn)."""
    from marketplace.logs import setup_logging

    _die_with_parent()
    setup_logging(verbose=verbose)
    try:
        asyncio.run(_child(settings, number, pages, pipe))
    except KeyboardInterrupt:
        pass


async def _child(settings: Settings, number: int, pages: bool, pipe: Connection) -> None:
    from aiohttp import web

    from api.app import create_app
    from api.keys import LIVE
    from marketplace.runner import _stop_event_on_signals

    stop = _stop_event_on_signals(asyncio.get_running_loop())
    app = create_app(settings, pages=pages)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True)
        await site.start()
        pipe.send(("listening", number))
        live = app[LIVE]
        ready = asyncio.ensure_future(live.wait_ready())
        await asyncio.wait({ready, asyncio.ensure_future(stop.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(live.flush_snapshot(), 60)
            pipe.send(("ready", number))
        else:
            ready.cancel()
        await stop.wait()
        log.info("API process %d stopping ...", number)
    finally:
        await runner.cleanup()


class ApiProcesses:
    """K API processes sharing settings.host:settings.port (see the module's notes)."""

    def __init__(self, settings: Settings, count: int, *, pages: bool = True) -> None:
        if count < 2:
            raise ValueError("ApiProcesses is for two or more processes")
        self.count = count
        self.pages = pages
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, tuple[BaseProcess, Connection]] = {}
        self._deaths: list[float] = []
        self._first_ready = False
        self.restarts = 0

    @property
    def port(self) -> int:
        return self.settings.port

    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._procs.values() if p.pid is not None]

    def _spawn(self, number: int) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        verbose = logging.getLogger().level <= logging.DEBUG
        proc = self._ctx.Process(
            target=_child_main, name=f"marketplace-api-{number}",
            args=(self.settings, number, self.pages, send, verbose), daemon=False,
        )
        proc.start()
        send.close()
        self._procs[number] = (proc, receive)
        log.info("API process %d started (pid %s)", number, proc.pid)

    def _messages(self, number: int) -> list[str]:
        _, pipe = self._procs[number]
        found = []
        with contextlib.suppress(EOFError, OSError):
            while pipe.poll():
                kind, _n = pipe.recv()
                found.append(str(kind))
        return found

    async def start(self) -> None:
        """Start the first child and return once it listens; the rest follow in `run`."""
        host, port = self.settings.host, self.settings.port
        if port == 0:
            from marketplace.embedded import free_port

            port = free_port(host)
        check_port_free(host, port)
        self.settings = replace(self.settings, port=port)
        self._spawn(0)
        proc, _ = self._procs[0]
        while True:
            messages = self._messages(0)
            if "ready" in messages:
                self._first_ready = True
            if "listening" in messages or self._first_ready:
                return
            if not proc.is_alive():
                raise RuntimeError(f"the first API process exited with {proc.exitcode}")
            await asyncio.sleep(_POLL)

    async def run(self, stop: asyncio.Event) -> int:
        """Supervise until `stop` is set (0) or the children crash-loop (1)."""
        started = time.monotonic()
        while not stop.is_set():
            if len(self._procs) < self.count:
                if not self._first_ready and "ready" in self._messages(0):
                    self._first_ready = True
                if not self._first_ready and time.monotonic() - started > FIRST_READY_TIMEOUT:
                    log.warning("the first API process has no index after %.0f s; starting"
                                " the others anyway", FIRST_READY_TIMEOUT)
                    self._first_ready = True
                if self._first_ready:
                    for number in range(1, self.count):
                        self._spawn(number)
            for number, (proc, _) in list(self._procs.items()):
                if number:
                    self._messages(number)  # drain
                if proc.is_alive():
                    continue
                await asyncio.sleep(0.3)  # a Ctrl-C reaches the whole group: let it land
                if stop.is_set():
                    break
                code = proc.exitcode
                log.error("API process %d (pid %s) died with exit code %s; restarting it",
                          number, proc.pid, code)
                print(f"error: API process {number} (pid {proc.pid}) died with exit code"
                      f" {code}", file=sys.stderr, flush=True)
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
                if len(self._deaths) > RESTART_LIMIT:
                    log.critical("API processes died %d times within %.0f s: stopping the"
                                 " service", len(self._deaths), RESTART_WINDOW)
                    return 1
                self._procs[number][1].close()
                self._spawn(number)
                self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _POLL)
        return 0

    async def stop(self) -> None:
        """SIGTERM every child, wait for clean exits, kill what is left after STOP_TIMEOUT."""
        for proc, _ in self._procs.values():
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for number, (proc, pipe) in self._procs.items():
            await asyncio.to_thread(proc.join, max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("API process %d did not stop within %.0f s: killed", number,
                          STOP_TIMEOUT)
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
            pipe.close()
        log.info("API processes stopped")


def describe(count: int) -> str:
    return "1 API process" if count == 1 else f"{count} API processes (SO_REUSEPORT)"

