"""Several API processes on one port (`MARKETPLACE_API_PROCESSES`, `serve/up --processes K`).

Matching is CPU-bound Python and numpy under one GIL, so one API process uses about one core.
With K > 1 the parent process starts K children, each a whole API (its own database pool, its
own `LiveMatcher` with its own LISTEN connection, so each keeps the 1 s edit-to-visible
guarantee). The parent serves no requests (under `up` it runs the worker): it listens on the
port and deals each new connection to the next child in turn (`ConnectionDealer`).

- Why deal rather than `SO_REUSEPORT`: the kernel hashes each connection to a process at
  random, so 32 keep-alive clients split 19/13 (seen in the preview benchmark) as often as
  16/16, and the busier process's clients wait about 19/13 times longer. Dealing in turn keeps
  the split even; it costs the parent one accept and one `sendmsg` per connection, none per
  request.
- Start: the first child starts alone and, once its index is loaded and the index snapshot is
  on disk, the others start and load that snapshot (about 2 s at 100,000 sellers) instead of
  each fitting the index from the database at the same time. The first child already serves
  meanwhile.
- A child that dies is logged as an error with its exit code and restarted (it loads the
  snapshot); meanwhile its turn goes to the others. More than `RESTART_LIMIT` deaths within
  `RESTART_WINDOW` seconds (a crash loop: bad settings, the database gone) stop the whole
  service with exit status 1, so a process manager above us (systemd, Docker) sees the failure.
- Stop (SIGINT/SIGTERM to the parent): the parent stops accepting, every child gets SIGTERM
  and stops cleanly (its in-flight requests, index listener and pool closed); a child still
  running after `STOP_TIMEOUT` is killed. A child also gets SIGTERM when the parent dies (Linux
  PR_SET_PDEATHSIG), so none is left behind.
- Memory: the children map the one index snapshot in DATA_DIR (live/index.py), so the index
  is in memory once (about 650 MB at 1,000,000 sellers); each child adds its own Python heap
  (about 320 MB at that size) and up to 11 database connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from config.settings import Settings

log = logging.getLogger("marketplace.processes")

RESTART_LIMIT = 5  # deaths within RESTART_WINDOW before the whole service gives up
RESTART_WINDOW = 60.0
STOP_TIMEOUT = 20.0
FIRST_READY_TIMEOUT = 900.0  # a cold fit at 1,000,000 sellers takes about 2 minutes
_POLL = 0.2
_PR_SET_PDEATHSIG = 1


class ConnectionDealer:
    """Accepts connections on host:port and deals them in turn to the children that listen.

    A thread of its own (blocking accept and `sendmsg` release the GIL), so a busy event loop
    in the parent (the worker under `up`) never delays a connection. Each child has one end of
    a Unix socket pair; the connection's descriptor travels with SCM_RIGHTS and the parent
    closes its copy. A child that cannot take it (gone, or its queue full) is skipped for the
    next; with none left the connection is closed (the client sees a reset, as with no server).
    """

    def __init__(self, host: str, port: int, backlog: int = 1024) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # As aiohttp does: SO_REUSEADDR, so connections of a previous run in TIME_WAIT do not
        # block the port (on Linux a socket listening there still does: a clear OSError).
        try:
            self.listener = socket.create_server((host, port), family=family, backlog=backlog)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.port: int = self.listener.getsockname()[1]
        self.listener.settimeout(_POLL)  # how often the thread checks that it should stop
        self._children: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._turn = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="connection-dealer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pair(self) -> tuple[socket.socket, socket.socket]:
        """(the parent's end, the child's end) of a new child's socket pair."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        mine.setblocking(False)  # a child that stopped reading is skipped, never waited for
        return mine, theirs

    def add(self, number: int, sock: socket.socket) -> None:
        """Deal to child `number` from now on (once it is listening)."""
        with self._lock:
            old = self._children.pop(number, None)
            self._children[number] = sock
        if old is not None and old is not sock:
            old.close()

    def remove(self, number: int) -> None:
        with self._lock:
            old = self._children.pop(number, None)
        if old is not None:
            old.close()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._closed.is_set():
                    return
                # Out of descriptors or a connection reset before accept: wait a moment.
                log.warning("accepting a connection failed: %s", exc)
                self._closed.wait(0.05)
                continue
            with conn:
                self._deal(conn)

    def _deal(self, conn: socket.socket) -> None:
        with self._lock:
            children = sorted(self._children.items())
            self._turn += 1
            turn = self._turn
        for k in range(len(children)):
            number, sock = children[(turn + k) % len(children)]
            try:
                socket.send_fds(sock, [b"c"], [conn.fileno()])
                return
            except OSError as exc:  # gone (restarted soon) or its queue is full: the next
                log.debug("API process %d did not take a connection: %s", number, exc)
        log.warning("no API process could take a connection: closed")

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.listener.close()
        with self._lock:
            children, self._children = list(self._children.values()), {}
        for sock in children:
            sock.close()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_main(settings: Settings, number: int, pages: bool, pipe: Connection,
                conns: socket.socket, verbose: bool) -> None:
    """Entry point of one API child (a fresh interpreter: multiprocessing's spawn)."""
    from config.logs import setup_logging
    from marketplace.loop import run_loop

    _die_with_parent()
    setup_logging(verbose=verbose)
    try:
        run_loop(_child(settings, number, pages, pipe, conns))
    except KeyboardInterrupt:
        pass


def _receive_connections(conns: socket.socket, server: Any) -> Callable[[], None]:
    """Serve the connections the parent deals over `conns` with aiohttp's `server` (the
    protocol factory a listening site would use). Returns the function that stops it."""
    loop = asyncio.get_running_loop()
    conns.setblocking(False)
    opening: set[asyncio.Task[Any]] = set()

    def stop() -> None:
        loop.remove_reader(conns.fileno())

    def readable() -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(conns, 64, 64)
            except BlockingIOError:
                return
            except OSError as exc:
                log.error("the connection channel from the parent failed: %s", exc)
                stop()
                return
            if not data and not fds:  # the parent closed its end: it is stopping
                stop()
                return
            for fd in fds:
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(server, sock))
                opening.add(task)
                task.add_done_callback(functools.partial(_opened, sock=sock, opening=opening))

    loop.add_reader(conns.fileno(), readable)
    return stop


def _opened(task: asyncio.Task[Any], sock: socket.socket, opening: set[asyncio.Task[Any]],
            ) -> None:
    opening.discard(task)
    if task.cancelled() or task.exception() is not None:
        sock.close()  # the client went away before we could serve it


async def _child(settings: Settings, number: int, pages: bool, pipe: Connection,
                 conns: socket.socket) -> None:
    from aiohttp import web

    from api.app import create_app
    from api.keys import LIVE
    from marketplace.loop import stop_event_on_signals

    stop = stop_event_on_signals(asyncio.get_running_loop())
    app = create_app(settings, pages=pages)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    stop_receiving = _receive_connections(conns, runner.server)
    try:
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
        stop_receiving()
        conns.close()
        await runner.cleanup()  # finishes in-flight requests, closes the connections


class ApiProcesses:
    """K API processes behind settings.host:settings.port (see the module's notes)."""

    def __init__(self, settings: Settings, count: int, *, pages: bool = True) -> None:
        if count < 2:
            raise ValueError("ApiProcesses is for two or more processes")
        self.count = count
        self.pages = pages
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, tuple[BaseProcess, Connection]] = {}
        # The parent's end of each child's connection channel, until the child listens.
        self._waiting: dict[int, socket.socket] = {}
        self._dealer: ConnectionDealer | None = None
        self._deaths: list[float] = []
        self._first_ready = False
        self.restarts = 0

    @property
    def port(self) -> int:
        return self.settings.port

    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._procs.values() if p.pid is not None]

    def _spawn(self, number: int) -> None:
        assert self._dealer is not None
        self._dealer.remove(number)
        receive, send = self._ctx.Pipe(duplex=False)
        mine, theirs = self._dealer.pair()
        verbose = logging.getLogger().level <= logging.DEBUG
        proc = self._ctx.Process(
            target=_child_main, name=f"marketplace-api-{number}",
            args=(self.settings, number, self.pages, send, theirs, verbose), daemon=False,
        )
        proc.start()
        send.close()
        theirs.close()
        old = self._waiting.pop(number, None)
        if old is not None:
            old.close()
        self._waiting[number] = mine
        self._procs[number] = (proc, receive)
        log.info("API process %d started (pid %s)", number, proc.pid)

    def _poll(self, number: int) -> set[str]:
        """Read child `number`'s messages: a listening child gets connections from now on;
        the first child's "ready" lets the others start."""
        _, pipe = self._procs[number]
        found: set[str] = set()
        with contextlib.suppress(EOFError, OSError):
            while pipe.poll():
                kind, _n = pipe.recv()
                found.add(str(kind))
        if "listening" in found and number in self._waiting and self._dealer is not None:
            self._dealer.add(number, self._waiting.pop(number))
        if "ready" in found and number == 0:
            self._first_ready = True
        return found

    async def start(self) -> None:
        """Listen, start the first child and return once it takes connections; the rest
        follow in `run`. Connections that arrive meanwhile wait in the listen backlog."""
        self._dealer = ConnectionDealer(self.settings.host, self.settings.port)
        self.settings = replace(self.settings, port=self._dealer.port)
        self._spawn(0)
        proc, _ = self._procs[0]
        while True:
            self._poll(0)
            if 0 not in self._waiting:  # listening
                self._dealer.start()
                return
            if not proc.is_alive():
                raise RuntimeError(f"the first API process exited with {proc.exitcode}")
            await asyncio.sleep(_POLL)

    async def run(self, stop: asyncio.Event) -> int:
        """Supervise until `stop` is set (0) or the children crash-loop (1)."""
        started = time.monotonic()
        while not stop.is_set():
            for number in list(self._procs):
                self._poll(number)
            if len(self._procs) < self.count:
                if not self._first_ready and time.monotonic() - started > FIRST_READY_TIMEOUT:
                    log.warning("the first API process has no index after %.0f s; starting"
                                " the others anyway", FIRST_READY_TIMEOUT)
                    self._first_ready = True
                if self._first_ready:
                    for number in range(1, self.count):
                        self._spawn(number)
            for number, (proc, _) in list(self._procs.items()):
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
        """Stop accepting; SIGTERM every child, wait for clean exits, kill what is left after
        STOP_TIMEOUT."""
        if self._dealer is not None:
            await asyncio.to_thread(self._dealer.close)
        for sock in self._waiting.values():
            sock.close()
        self._waiting.clear()
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
    return "1 API process" if count == 1 else f"{count} API processes (connections dealt in turn)"

