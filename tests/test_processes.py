"""`marketplace serve --processes 2` as a real process: two API children behind one port
(the parent deals connections in turn), each keeps its own live index current within a second,
a child that dies is restarted, and SIGTERM stops every child cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.conftest import Servers
from tests.test_cli import CLI, _env

ADMIN = "test-admin-token-processes-0123456789"


async def _children(proc: subprocess.Popen[str], count: int, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited"
        kids = []
        for child in psutil.Process(proc.pid).children():
            try:  # a killed child stays a zombie until the parent notices (then restarts it)
                if "spawn_main" in " ".join(child.cmdline()):
                    kids.append(child.pid)
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
        if len(kids) == count:
            return kids
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} API processes did not start within {within} s")


async def _everywhere(http: aiohttp.ClientSession, url: str, headers: dict[str, str],
                      name: str, within: float) -> float:
    """Seconds until 24 previews in a row, each on a new connection (the kernel spreads new
    connections across the processes), all show seller `name`."""
    started = time.monotonic()
    body = {"title": "Kubernetes platform engineering", "essential_skills": ["kubernetes"]}
    while time.monotonic() - started < within:
        seen = 0
        for _ in range(24):
            async with http.post(url, json=body, headers={**headers, "Connection": "close"}) as r:
                assert r.status == 200, await r.text()
                names = {i["seller_name"] for i in (await r.json())["items"]}
            seen += name in names
        if seen == 24:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} not visible in every process within {within} s")


async def test_serve_processes(clean_db: Servers, tmp_path: Path) -> None:
    from marketplace.embedded import free_port

    port = free_port()
    env = _env(clean_db)
    env.update(MARKETPLACE_DATA_DIR=str(tmp_path / "data"), MARKETPLACE_PORT=str(port),
               MARKETPLACE_ADMIN_TOKEN=ADMIN, MARKETPLACE_RATE_LIMIT="off")
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {ADMIN}"}
    with (tmp_path / "stderr.log").open("w") as errors:
        proc = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once; waits are threaded
            [*CLI, "serve", "--processes", "2"], env=env, stdout=subprocess.DEVNULL,
            stderr=errors, text=True,
        )
        try:
            kids = await _children(proc, 2, 90)
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        async with http.get(f"{base}/health/ready",
                                            headers={"Connection": "close"}) as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < deadline, "not ready"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2.0)  # the second child loads the first one's snapshot
                # An edit reaches the index of every process within a second.
                r = await http.post(f"{base}/api/v1/sellers", headers=h, json={
                    "name": "Cluster Ltd", "summary": "Kubernetes platform engineering",
                    "categories": ["digital-outcomes"], "skills": ["kubernetes"],
                    "locations": ["London"]})
                assert r.status == 201, await r.text()
                assert await _everywhere(http, f"{base}/api/v1/briefs/preview", h,
                                         "Cluster Ltd", 5.0) < 1.5
                # A child that dies is reported and replaced.
                os.kill(kids[1], signal.SIGKILL)
                deadline = time.monotonic() + 60
                while True:
                    now = await _children(proc, 2, 60)
                    if kids[1] not in now:
                        break
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
                await asyncio.sleep(3.0)  # the replacement loads the snapshot
                await _everywhere(http, f"{base}/api/v1/briefs/preview", h, "Cluster Ltd", 10)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = (tmp_path / "stderr.log").read_text()
    assert code == 0, log[-3000:]
    assert "died with exit code -9" in log
    assert not [p for p in now if psutil.pid_exists(p) and
                psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


async def test_a_crash_loop_stops_the_service(clean_db: Servers, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Children that keep dying are not restarted forever: past the limit `run` returns 1 (the
    service exits with an error for its process manager) and `stop` leaves none behind."""
    from marketplace import processes
    from marketplace.embedded import free_port
    from tests.api.conftest import settings_for

    monkeypatch.setattr(processes, "RESTART_LIMIT", 1)
    settings = settings_for(clean_db, port=free_port(), data_dir=tmp_path / "data")
    procs = processes.ApiProcesses(settings, 2, pages=False)
    await procs.start()
    stop = asyncio.Event()
    supervisor = asyncio.create_task(procs.run(stop))
    try:
        for _ in range(2):  # two deaths within the window: one more than the limit
            first = procs.pids()[0]
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while first in procs.pids() and not supervisor.done():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert await asyncio.wait_for(supervisor, 30) == 1
        assert procs.restarts == 1
    finally:
        stop.set()
        await procs.stop()
    assert not [p for p in procs.pids() if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_the_dealer_deals_connections_in_turn_and_skips_a_gone_child() -> None:
    """Real sockets: ten connections split 5/5 between two children (the kernel's hash for
    SO_REUSEPORT splits them unevenly as often as not); once a child's end is closed, every
    connection goes to the other; with no child left a connection is closed, not hung."""
    import socket

    from marketplace.processes import ConnectionDealer

    dealer = ConnectionDealer("127.0.0.1", 0)
    pairs = [dealer.pair() for _ in range(2)]
    for number, (mine, _) in enumerate(pairs):
        dealer.add(number, mine)
    dealer.start()
    clients: list[socket.socket] = []

    def received(theirs: socket.socket, wanted: int) -> int:
        got = 0
        theirs.settimeout(5)
        while got < wanted:
            _, fds, _, _ = socket.recv_fds(theirs, 64, 64)
            for fd in fds:
                os.close(fd)
            got += len(fds)
        return got

    try:
        for _ in range(10):
            clients.append(socket.create_connection(("127.0.0.1", dealer.port)))
        assert [received(theirs, 5) for _, theirs in pairs] == [5, 5]
        pairs[1][1].close()  # child 1 is gone
        for _ in range(4):
            clients.append(socket.create_connection(("127.0.0.1", dealer.port)))
        assert received(pairs[0][1], 4) == 4
        pairs[0][1].close()  # no child left: the connection is closed by the parent
        lonely = socket.create_connection(("127.0.0.1", dealer.port))
        clients.append(lonely)
        lonely.settimeout(5)
        assert lonely.recv(1) == b""
    finally:
        dealer.close()
        for c in clients:
            c.close()
