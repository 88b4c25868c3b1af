"""Shared edge helpers: JSON errors in one shape, bodies validated into clear 422s."""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, TypeVar

import orjson
from beckon_edge import BadContentLength, BodyTooLarge, client_address, read_limited
from beckon_edge.database import database_away, database_unavailable
from beckon_edge.proxies import IPNetwork
from beckon_edge.refusals import status_of
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketState

from chat.errors import ChatError, Invalid, Malformed, TooLarge
from chat.hub import Connection
from chat.runtime import Runtime
from chat.text import InvalidInput

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("chat.api")
MAX_BODY_BYTES = 65_536
# RFC 6455: a server's condition that will pass (the database away); sockets reconnect
CLOSE_TRY_AGAIN_LATER = 1013


async def close_database_away(ws: WebSocket, exc: Exception, socket: str) -> None:
    """Close a socket that met the database away 1013 "try again later" (accepted first if
    it was not yet): the widget says chat is away and the console that it is reconnecting,
    and both reconnect with backoff, keeping their token or cookie."""
    log.warning(f"{socket} socket closed: the database is away", extra={"error": repr(exc)})
    with contextlib.suppress(Exception):  # gone already
        if ws.application_state == WebSocketState.CONNECTING:
            await ws.accept()
        await ws.close(code=CLOSE_TRY_AGAIN_LATER, reason="database unavailable")


def runtime(request: Request) -> Runtime:
    state: Runtime = request.app.state.chat
    return state


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def error_response(exc: Exception) -> Response:
    if isinstance(exc, ChatError):
        extra = {"errors": exc.errors} if exc.errors is not None else {}
        answer = problem(status_of(exc), exc.code, exc.detail, **extra)
        if exc.retry_after is not None:
            answer.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return answer
    if isinstance(exc, InvalidInput):
        return problem(
            422, "invalid", f"{exc.field} {exc}", errors=[{"loc": exc.field, "msg": str(exc)}]
        )
    raise exc


async def _parsed(request: Request, limit: int) -> Any:
    try:  # stops reading at the limit: an unauthenticated route never holds more
        raw = await read_limited(request.stream(), limit, request.headers.get("content-length"))
    except BodyTooLarge:
        raise TooLarge("too_large", f"the body is larger than {limit} bytes") from None
    except BadContentLength as exc:
        raise Malformed("bad_request", str(exc)) from None
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise Malformed("malformed_json", "the body is not JSON") from None
    if b"\\u0000" in raw and _holds_nul(data):  # Postgres text cannot store NUL
        raise Invalid("invalid", "text must not contain NUL characters (\\u0000)")
    return data


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object as it is, for bodies a route validates itself (e.g. rules
    documents, whose errors are answered per place), or a ChatError."""
    data = await _parsed(request, limit)
    if not isinstance(data, dict):
        raise Invalid("invalid", "the body must be a JSON object")
    return data


async def read_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`, or a ChatError saying what is wrong with it."""
    data = await _parsed(request, MAX_BODY_BYTES)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Invalid("invalid", f"{where}: {first['msg']}") from None


def parse_frame(text: str, connection: Connection) -> dict[str, Any] | None:
    """A socket frame as a JSON object; otherwise the socket is told, and None."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        frame = None
    if isinstance(frame, dict):
        return frame
    connection.push({"t": "error", "error": "malformed_json", "detail": "frames are JSON objects"})
    return None


def frame_failed(exc: Exception, connection: Connection) -> None:
    """What a socket hears when its frame could not be acted on."""
    if isinstance(exc, ChatError):
        connection.push({"t": "error", "error": exc.code, "detail": exc.detail})
    elif isinstance(exc, ValueError):  # InvalidInput and bad ids
        connection.push({"t": "error", "error": "invalid", "detail": str(exc)})
    elif database_away(exc):
        log.warning("socket frame failed: the database is away", extra={"error": repr(exc)})
        refusal = database_unavailable("chat")
        connection.push({"t": "error", "error": refusal.code, "detail": refusal.detail})
    else:
        log.error("socket frame failed", exc_info=exc)
        connection.push({"t": "error", "error": "internal", "detail": "try again"})


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def client_ip(request: Request, trusted_proxies: tuple[IPNetwork, ...]) -> str:
    """The caller's address: X-Forwarded-For is believed only as far as CHAT_TRUSTED_PROXIES."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return client_address(peer, forwarded, trusted_proxies) or "unknown"
