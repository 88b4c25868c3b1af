"""When a service's Postgres is away: what asyncpg raises then, and the answer an edge gives.

A request that meets a database that is down, restarting or unreachable is answered 503
`database_unavailable` with Retry-After, never a 500: the caller (a browser's widget, the
SMTP server handing over a reply, a CRM calling the leads API) is told to try again shortly,
and a 500 without CORS headers would look to a page like a network error.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from starlette.responses import Response

from beckon_edge.answers import error_response
from beckon_edge.refusals import Unavailable

# The connection refused or lost (a Unix socket gone is FileNotFoundError, an OSError), the
# server shutting down or still starting, the connection dying under the query.
DATABASE_AWAY: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # ConnectionDoesNotExistError: the connection died under the query
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A connection cut in the middle of a pipelined operation (executemany, a prepare) can
    # leave asyncpg's protocol between states: "cannot switch to state 15; another operation
    # (2) is in progress" (MagicStack/asyncpg#1069). The pool terminates that connection when
    # it is released; to the caller it is the database going away like any other.
    asyncpg.InternalClientError,
    OSError,
)
DATABASE_RETRY_S = 5


def database_away(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, says Postgres is not answering (not a bad query)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, DATABASE_AWAY):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def database_unavailable(service: str) -> Unavailable:
    return Unavailable(
        "database_unavailable",
        f"{service} cannot reach its database right now; try again shortly",
        retry_after=DATABASE_RETRY_S,
    )


def answer_database_outages(app: FastAPI, service: str) -> None:
    """Answer a request that met an absent database 503 `database_unavailable` (logged as a
    warning with the path), not 500."""
    log = logging.getLogger(service)

    async def away(request: Request, exc: Exception) -> Response:
        log.warning(
            "request failed: the database is away",
            extra={"path": request.url.path, "error": repr(exc)},
        )
        return error_response(database_unavailable(service))

    for kind in DATABASE_AWAY:
        app.add_exception_handler(kind, away)
