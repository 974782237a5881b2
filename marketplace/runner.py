"""What each `marketplace` sub-command does: the composition root.

Every command reads Settings once, resolves the servers (the embedded default when no URL is
given) and stops what it started on every exit path, including SIGTERM: SIGTERM is turned into
the same clean shutdown as Ctrl-C, so `docker stop`, systemd and `kill` leave no orphan
PostgreSQL or Valkey behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from config.settings import Settings
from marketplace.loop import run_loop, stop_event_on_signals

log = logging.getLogger("marketplace")
T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
ADMIN_TOKEN_FILE = "admin-token"
DEMO_TOKENS_FILE = "demo-tokens.json"


# ---- signals -----------------------------------------------------------------------------------


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _outside_loop_signals() -> None:
    """Outside the event loop (starting or stopping servers) SIGTERM behaves like Ctrl-C, so
    `finally` blocks run and the embedded servers are stopped."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """asyncio.run with Ctrl-C/SIGTERM handled inside the loop (clean shutdown, exit 0)."""
    try:
        return run_loop(main())
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        _outside_loop_signals()  # the loop's close() reset SIGTERM to the default


def _with_services(body: Callable[[Settings], int]) -> int:
    """Run `body` with resolved servers; every exit path stops what was started here."""
    _outside_loop_signals()
    settings = Settings.from_env()
    try:
        with resolve_services(settings) as resolved:
            return body(resolved)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        if _is_connection_error(exc):
            return _db_error(exc)
        raise


def _is_connection_error(exc: BaseException) -> bool:
    import asyncpg
    from redis.exceptions import ConnectionError as RedisConnectionError  # arq's redis-py
    return isinstance(
        exc,
        OSError | RuntimeError | asyncpg.PostgresError | asyncpg.InterfaceError
        | RedisConnectionError,
    )


# ---- servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def resolve_services(settings: Settings) -> Iterator[Settings]:
    """Settings with real server URLs. Starts the embedded PostgreSQL and/or Valkey under
    settings.data_dir for whichever URL is unset, and stops them on exit (only what this
    process started: a server another process already runs on the same DATA_DIR is reused
    and left running)."""
    if settings.database_url and settings.redis_url:
        yield settings
        return
    from marketplace.embedded import EmbeddedPostgres, EmbeddedValkey

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(data_dir) if not settings.database_url else None
    valkey = EmbeddedValkey(data_dir) if not settings.redis_url else None
    try:
        database_url = settings.database_url
        redis_url = settings.redis_url
        if postgres is not None:
            log.info("starting PostgreSQL (embedded) under %s ...", postgres.pgdata)
            database_url = postgres.start()
            log.info("PostgreSQL ready on port %s", postgres.port)
        if valkey is not None:
            log.info("starting Valkey (embedded) under %s ...", valkey.workdir)
            redis_url = valkey.start()
            log.info("Valkey ready on port %s", valkey.port)
        assert database_url and redis_url
        yield settings.with_urls(database_url, redis_url)
    finally:
        if valkey is not None:
            valkey.stop()
        if postgres is not None:
            postgres.stop()
        if postgres is not None or valkey is not None:
            log.info("embedded servers stopped (or left to the process that started them)")


# ---- helpers ---------------------------------------------------------------------------------


async def _migrate(database_url: str) -> list[str]:
    from models.db import connect
    from models.migrate import migrate

    conn = await connect(database_url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("migrations applied: %s", ", ".join(applied))
    else:
        log.info("migrations: schema up to date")
    return applied


def _db_error(exc: BaseException) -> int:
    log.error("stopped: %s: %s", type(exc).__name__, exc)
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_ERROR


def _write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def admin_token_for(settings: Settings) -> tuple[str, bool]:
    """MARKETPLACE_ADMIN_TOKEN, else the token kept in DATA_DIR/admin-token, else a new one
    (saved there, mode 0600) so every restart prints the same. Returns (token, generated)."""
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.data_dir / ADMIN_TOKEN_FILE
    with contextlib.suppress(OSError):
        saved = path.read_text().strip()
        if saved:
            return saved, False
    token = "adm_" + secrets.token_urlsafe(32)
    _write_secret(path, token + "\n")
    return token, True


async def _serve_app(settings: Settings) -> Any:
    """Start the API on settings.host:port; returns the aiohttp AppRunner (caller cleans up)."""
    from aiohttp import web

    from api.app import create_app

    app = create_app(settings, pages=True)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
    return runner


def _bound_port(runner: Any, default: int) -> int:
    for address in getattr(runner, "addresses", []):
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


# ---- migrate -----------------------------------------------------------------------------------


def run_migrate(args: argparse.Namespace) -> int:
    def body(s: Settings) -> int:
        async def main() -> int:
            assert s.database_url
            await _migrate(s.database_url)
            return EXIT_OK

        return _run(main)

    return _with_services(body)


# ---- serve -------------------------------------------------------------------------------------


def process_count(args: argparse.Namespace, settings: Settings) -> int:
    """--processes, else MARKETPLACE_API_PROCESSES (default 1)."""
    from config.settings import parse_processes

    given = getattr(args, "processes", None)
    if given is None:
        return settings.api_processes
    return parse_processes(str(given), "--processes")


async def _serve_processes(s: Settings, count: int, stop: asyncio.Event) -> int:
    from marketplace.processes import ApiProcesses, describe

    procs = ApiProcesses(s, count, pages=True)
    try:
        await procs.start()
        log.info("API listening on http://%s:%s (%s)", s.host, procs.port, describe(count))
        code = await procs.run(stop)
        log.info("stopping the API ...")
        return code
    finally:
        await procs.stop()


def run_serve(args: argparse.Namespace) -> int:
    no_migrate = bool(getattr(args, "no_migrate", False))

    def body(s: Settings) -> int:
        count = process_count(args, s)

        async def main() -> int:
            stop = stop_event_on_signals(asyncio.get_running_loop())
            if not no_migrate:
                assert s.database_url
                await _migrate(s.database_url)
            if count > 1:
                return await _serve_processes(s, count, stop)
            runner = await _serve_app(s)
            try:
                log.info("API listening on http://%s:%s", s.host, _bound_port(runner, s.port))
                await stop.wait()
                log.info("stopping the API ...")
            finally:
                await runner.cleanup()
            return EXIT_OK

        return _run(main)

    return _with_services(body)


# ---- worker ------------------------------------------------------------------------------------


async def _wait_worker_or_stop(worker: asyncio.Task[None], stop: asyncio.Event) -> int:
    """Wait for a stop signal or the worker ending; stop the worker cleanly. arq may install
    its own SIGINT/SIGTERM handlers (replacing ours): then the worker task ends by itself,
    which we take as the same stop request."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not worker.done():
        worker.cancel()
    try:
        await worker
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("the worker failed")
        return EXIT_ERROR
    return EXIT_OK


def run_worker(args: argparse.Namespace) -> int:
    def body(s: Settings) -> int:
        async def main() -> int:
            from workers.main import run_worker as worker_main

            stop = stop_event_on_signals(asyncio.get_running_loop())
            log.info("worker starting")
            worker = asyncio.create_task(worker_main(s), name="worker")
            return await _wait_worker_or_stop(worker, stop)

        return _run(main)

    return _with_services(body)


# ---- token create ------------------------------------------------------------------------------


def _usage_error(message: str) -> int:
    print(f"marketplace token create: error: {message}", file=sys.stderr)
    return EXIT_USAGE


async def _create_token(
    database_url: str, *, role: str, name: str, organisation: str, seller_id: int | None,
    expires_days: int | None,
) -> int:
    from models import accounts, audit
    from models.db import connect

    await _migrate(database_url)  # idempotent; lets `token create` work on a fresh DATA_DIR
    conn = await connect(database_url)
    try:
        async with conn.transaction():
            if seller_id is not None and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM sellers WHERE id = $1)", seller_id
            ):
                return _usage_error(f"no seller with id {seller_id}")
            account_id = await accounts.create_account(
                conn, role=role, name=name, organisation=organisation, seller_id=seller_id
            )
            expires_at = (
                datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
            )
            token = await accounts.issue_token(conn, account_id, expires_at=expires_at)
            await audit.record(
                conn, actor_id=None, action="token.created", entity="token",
                entity_id=account_id, data={"role": role, "via": "cli"},
            )
    finally:
        await conn.close()
    log.info("account %s (%s) created; its token is printed once", account_id, role)
    print(token, flush=True)  # stdout carries only the token: TOKEN=$(marketplace token ...)
    return EXIT_OK


def run_token(args: argparse.Namespace) -> int:
    if getattr(args, "token_command", None) != "create":
        return _usage_error("unknown action (try: marketplace token create --help)")
    role, name = args.role, (args.name or "").strip()
    seller_id = getattr(args, "seller_id", None)
    expires_days = getattr(args, "expires_days", None)
    if role not in ("admin", "buyer", "seller"):
        return _usage_error("--role must be admin, buyer or seller")
    if not name:
        return _usage_error("--name must not be empty")
    if role == "seller" and seller_id is None:
        return _usage_error("--seller-id is required for role seller")
    if role != "seller" and seller_id is not None:
        return _usage_error("--seller-id is only for role seller")
    if expires_days is not None and expires_days <= 0:
        return _usage_error("--expires-days must be a positive number of days")

    def body(s: Settings) -> int:
        assert s.database_url
        url = s.database_url
        return _run(lambda: _create_token(
            url, role=role, name=name, organisation=getattr(args, "organisation", "") or "",
            seller_id=seller_id, expires_days=expires_days,
        ))

    return _with_services(body)


# ---- up ----------------------------------------------------------------------------------------


def _load_saved_demo_tokens(settings: Settings) -> dict[str, Any]:
    import json

    with contextlib.suppress(OSError, ValueError):
        data = json.loads((settings.data_dir / DEMO_TOKENS_FILE).read_text())
        if isinstance(data, dict):
            return data
    return {}


async def _bootstrap_and_demo(settings: Settings) -> dict[str, Any]:
    """Admin account, then the demo on first start. Returns the demo accounts (tokens, ids)."""
    import json

    from models import accounts
    from models.db import connect

    assert settings.database_url and settings.admin_token
    conn = await connect(settings.database_url)
    try:
        await accounts.ensure_bootstrap_admin(conn, settings.admin_token)
        log.info("admin account ready")
        from marketplace.demo_data import load_demo as load

        log.info("demo data: loading on first start (skipped when sellers exist) ...")
        report = await load(conn)
    finally:
        await conn.close()
    if report.skipped:
        log.info("demo: the database already has sellers, nothing loaded")
        return _load_saved_demo_tokens(settings)
    demo = {
        "buyer_token": report.tokens.get("buyer"),
        "seller_token": report.tokens.get("seller"),
        "seller_id": report.seller_id,
        "sellers": report.sellers,
        "briefs": report.briefs,
    }
    _write_secret(settings.data_dir / DEMO_TOKENS_FILE, json.dumps(demo, indent=2) + "\n")
    log.info(
        "demo loaded: %d sellers / %d briefs (%d published)",
        report.sellers, report.briefs, report.published,
    )
    await _enqueue_outbox(settings, report.outbox)
    return demo


async def _enqueue_outbox(settings: Settings, rows: list[tuple[int, str, list[Any]]]) -> None:
    """Enqueue the demo's publish jobs now rather than wait for the relay cron."""
    if not rows:
        return
    try:
        from workers.enqueue import create_queue, enqueue_outbox
    except ImportError:
        log.info("demo: %d match jobs left to the outbox relay", len(rows))
        return
    from models.db import create_pool

    assert settings.database_url and settings.redis_url
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        queue = await create_queue(settings.redis_url)
        try:
            done = 0
            for outbox_id, job, args in rows:
                done += bool(await enqueue_outbox(queue, pool, outbox_id, job, args))
            log.info("demo: %d match jobs enqueued", done)
        finally:
            await queue.aclose()
    finally:
        await pool.close()


def _banner(settings: Settings, port: int, source: str, demo: dict[str, Any]) -> str:
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    url = settings.public_url or f"http://{host}:{port}"
    api = f"{url}/api/v1"
    admin = settings.admin_token
    buyer = demo.get("buyer_token") or "<BUYER_TOKEN>"
    seller = demo.get("seller_token") or "<SELLER_TOKEN>"
    seller_id = demo.get("seller_id") or 1
    lines = [
        "",
        "=" * 72,
        f"marketplace matcher is up: {url}",
        f"  web pages  {url}/   (sign in with one of the tokens below)",
        f"  API        {api}   (OpenAPI: {api}/openapi.json, health: {url}/health)",
        f"  admin token   {admin}   ({source})",
        f"  demo buyer    {buyer}",
        f"  demo seller   {seller}   (seller {seller_id})",
        "",
        "Try it (copy and paste):",
        f"  export API={api} ADMIN={admin} BUYER={buyer} SELLER={seller}",
        "  # create a seller (admin)",
        '  curl -s -X POST $API/sellers -H "Authorization: Bearer $ADMIN" -H "Content-Type: '
        'application/json" -d \'{"name": "Acme Digital", "summary": "Agile delivery of GOV.UK '
        'services, user research and Python development", "categories": ["digital-outcomes"], '
        '"skills": ["user research", "python", "agile delivery"], "locations": ["London"], '
        '"day_rate": 650, "sme": true}\'',
        "  # create a brief (buyer), then publish it: the worker scores it against every seller",
        '  BRIEF=$(curl -s -X POST $API/briefs -H "Authorization: Bearer $BUYER" -H '
        '"Content-Type: application/json" -d \'{"title": "Discovery for a digital licensing '
        'service", "summary": "User research and agile delivery of a new GOV.UK service", '
        '"category": "digital-outcomes", "location": "London", "essential_skills": ["user '
        'research", "agile delivery"], "nice_to_have_skills": ["python"], "max_day_rate": 800}\''
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')",
        '  curl -s -X POST $API/briefs/$BRIEF/publish -H "Authorization: Bearer $BUYER"',
        "  # the ranked shortlist with the reasons for each seller (buyer)",
        '  curl -s $API/briefs/$BRIEF/shortlist -H "Authorization: Bearer $BUYER"',
        "  # a seller's matched opportunities and alerts (seller)",
        f'  curl -s $API/sellers/{seller_id}/opportunities -H "Authorization: Bearer $SELLER"',
        f'  curl -s $API/sellers/{seller_id}/alerts -H "Authorization: Bearer $SELLER"',
        "",
        "Ctrl-C stops everything.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def run_up(args: argparse.Namespace) -> int:
    from marketplace.processes import describe

    from_env = Settings.from_env().admin_token is not None

    def body(resolved: Settings) -> int:
        count = process_count(args, resolved)
        token, generated = admin_token_for(resolved)
        s = replace(resolved, admin_token=token)
        if from_env:
            source = "from MARKETPLACE_ADMIN_TOKEN"
        else:
            state = "generated now, saved" if generated else "saved"
            source = f"{state} in {s.data_dir / ADMIN_TOKEN_FILE}"

        async def main() -> int:
            stop = stop_event_on_signals(asyncio.get_running_loop())
            assert s.database_url
            await _migrate(s.database_url)
            demo = await _bootstrap_and_demo(s)
            runner: Any = None
            procs: Any = None
            supervisor: asyncio.Task[int] | None = None
            worker: asyncio.Task[None] | None = None
            # With several API processes the worker runs here and the API in the children;
            # a crash loop of the children stops everything (exit status 1).
            stop_all = stop
            try:
                if count > 1:
                    from marketplace.processes import ApiProcesses

                    procs = ApiProcesses(s, count, pages=True)
                    await procs.start()
                    port = procs.port
                    stop_all = asyncio.Event()

                    async def supervise() -> int:
                        try:
                            return int(await procs.run(stop))
                        finally:
                            stop_all.set()

                    supervisor = asyncio.create_task(supervise(), name="api-processes")
                else:
                    runner = await _serve_app(s)
                    port = _bound_port(runner, s.port)
                from workers.main import run_worker as worker_main

                # Our handlers stop API and worker together; the worker is stopped by cancel.
                worker = asyncio.create_task(
                    worker_main(s, handle_signals=False), name="worker"
                )
                log.info("API listening on http://%s:%s (%s); worker running", s.host, port,
                         describe(count))
                print(_banner(s, port, source, demo), flush=True)
                code = await _wait_worker_or_stop(worker, stop_all)
                if supervisor is not None:
                    stop.set()
                    code = max(code, await supervisor)
                log.info("stopping the API and the worker ...")
                return code
            finally:
                if worker is not None and not worker.done():
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await worker
                if supervisor is not None and not supervisor.done():
                    stop.set()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await supervisor
                if procs is not None:
                    await procs.stop()
                if runner is not None:
                    await runner.cleanup()

        code = _run(main)
        log.info("API and worker stopped")
        return code

    return _with_services(body)
