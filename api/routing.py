"""Operations: one declaration per endpoint drives the router, the permission check, the
per-request transaction and the OpenAPI document, so the three cannot drift apart."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import orjson
from aiohttp import web
from pydantic import BaseModel

from api.auth import authorise
from api.errors import NotFound, ServiceUnavailable, Unauthorized
from api.keys import POOL
from api.limits import AUTHENTICATED
from api.validation import parse_body, parse_query, read_body
from models.accounts import Account

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
AfterCommit = Callable[[], Awaitable[None]]
_MAX_ID = 2**63 - 1
# Path parameters whose column is a 32-bit integer (rule_sets.version is a serial).
PATH_ID_MAX = {"version": 2**31 - 1}
_ACQUIRE_TIMEOUT = 10.0

ANY_ROLE = frozenset({"admin", "buyer", "seller"})
ADMIN = frozenset({"admin"})


@dataclass
class Ctx:
    """What a handler gets: the request, its connection (inside the request's transaction for
    mutating operations), the caller, and a place for work that must wait for the commit."""

    request: web.Request
    _conn: asyncpg.Connection | None
    account: Account | None
    after_commit: list[AfterCommit] = field(default_factory=list)

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("this operation was declared without a database connection")
        return self._conn

    @property
    def user(self) -> Account:
        if self.account is None:
            raise Unauthorized()
        return self.account

    @property
    def app(self) -> web.Application:
        return self.request.app

    async def body(self, model: type[M]) -> M:
        return await parse_body(self.request, model)

    def query(self, model: type[M]) -> M:
        return parse_query(self.request, model)

    def path_id(self, name: str = "id") -> int:
        """A numeric path parameter; ids beyond their column's type (bigint, or integer for a
        rules version) cannot exist, so they are a 404, never a database error."""
        text = self.request.match_info[name]
        value = int(text) if text.isdigit() and len(text) <= 19 else 0
        if value < 1 or value > PATH_ID_MAX.get(name, _MAX_ID):
            raise NotFound(f"no such {name}")
        return value


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # aiohttp form, e.g. /api/v1/briefs/{id:\d+}
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[str] | None = ANY_ROLE  # None: public, no token needed
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | dict[str, Any] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    db: bool = True
    # False: the connection serves only the permission check and goes back to the pool before
    # the handler runs (handlers that do not touch the database, e.g. a live preview, which
    # would otherwise hold a connection while it waits for the index).
    handler_db: bool = True
    transaction: bool | None = None  # default: every method but GET
    # A read-only snapshot (REPEATABLE READ, READ ONLY) for handlers that read several queries
    # that must agree, e.g. an export and its ETag.
    snapshot: bool = False
    content_type: str = "application/json"
    description: str = ""
    # The answer carries an ETag; a write honours If-Match (412 when stale): api.etags.
    etag: bool = False

    @property
    def openapi_path(self) -> str:
        return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    @property
    def in_transaction(self) -> bool:
        if self.snapshot:
            return True
        return self.transaction if self.transaction is not None else self.method != "GET"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _db_down(exc: BaseException) -> bool:
    return isinstance(
        exc,
        OSError
        | asyncio.TimeoutError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.TooManyConnectionsError,
    )


def _action(op: Operation) -> str:
    return op.summary[:1].lower() + op.summary[1:]


def wrap(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        if not op.db:
            return await op.handler(Ctx(request, None, None))
        if op.body is not None and request.body_exists:
            await read_body(request)  # before taking a connection: see read_body
        ctx: Ctx
        try:
            async with request.app[POOL].acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                account = await authorise(op.roles, _action(op), request, conn)
                if account is not None:
                    request[AUTHENTICATED] = True  # api.limits: a real caller, not a guesser
                if not op.handler_db:
                    # The handler runs below, after the connection went back to the pool.
                    ctx = Ctx(request, None, account)
                elif not op.in_transaction:
                    ctx = Ctx(request, conn, account)
                    response = await op.handler(ctx)
                else:
                    ctx = Ctx(request, conn, account)
                    # One transaction per request, opened here at the edge: handlers and
                    # repositories never commit; any error rolls everything back.
                    isolation = "repeatable_read" if op.snapshot else None
                    async with conn.transaction(isolation=isolation, readonly=op.snapshot):
                        response = await op.handler(ctx)
        except asyncpg.exceptions.PostgresError as exc:
            if _db_down(exc):
                raise ServiceUnavailable("the database is unavailable") from exc
            raise
        except (TimeoutError, OSError, asyncpg.exceptions.InterfaceError) as exc:
            raise ServiceUnavailable("the database is unavailable") from exc
        if not op.handler_db:
            return await op.handler(ctx)
        for hook in ctx.after_commit:
            try:
                await hook()
            except Exception:  # committed already: the answer stands, the relay catches up
                log.exception("after-commit hook failed")
        return response

    endpoint.__name__ = op.operation_id
    return endpoint


def add_routes(app: web.Application, ops: list[Operation]) -> None:
    for op in ops:
        app.router.add_route(op.method, op.path, wrap(op), name=op.operation_id)
