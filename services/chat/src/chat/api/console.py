"""The agent's edge: login, status, conversations, replies, transfer, tags, close, and the
console's WebSocket. The session cookie names one agent of one site; every query is scoped
to that site, so another tenant's ids are simply not found."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from importlib import resources
from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.chat_signals import TypingSignal
from beckon_contracts.envelope import Identifier
from beckon_edge.database import database_away
from beckon_edge.tokens import AgentClaims
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from chat.agents import service as agents
from chat.api.common import client_ip, close_database_away, frame_failed, parse_frame
from chat.api.deps import (
    COOKIE,
    CurrentAgent,
    Rt,
    Valid,
    refuse_cross_site,
    same_origin,
    session_from_cookie,
)
from chat.conversations import service as conversations
from chat.errors import ChatError, Invalid, NotAuthenticated, NotFound
from chat.features import FrameHandler
from chat.hub import Connection
from chat.refs import AgentRef
from chat.runtime import Runtime
from chat.text import clean_client_id, clean_tags, clean_text

log = logging.getLogger("chat.console")
router = APIRouter(prefix="/v1/console", tags=["console"])
pages = APIRouter(tags=["console"])

HEARTBEAT_EVERY_S = 10.0
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "connect-src 'self' ws: wss:{apis}; frame-src 'self'{frames}; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def console_csp(leads_url: str, notifier_url: str) -> str:
    """The console's CSP: its own origin, its sockets and (when set) the origins of the
    leads API and the notifier, which the leads and e-mail views call with the agent's
    session."""
    origins = [url.rstrip("/") for url in (leads_url, notifier_url) if url.rstrip("/")]
    # the e-mail previews are the notifier's own pages (with their own CSP) in a sandboxed frame
    frames = f" {notifier_url.rstrip('/')}" if notifier_url.rstrip("/") else ""
    return CONSOLE_CSP.format(
        apis="".join(f" {origin}" for origin in dict.fromkeys(origins)), frames=frames
    )


STATIC = resources.files("chat") / "static" / "console"
# the console's own files: ES modules and stylesheets, at most one folder deep (core/, chats/,
# i18n/); no dots but the extension's, so never a path outside the folder
ASSET_NAME = re.compile(r"(?:[a-z][a-z0-9_-]{0,40}/)?[a-z][a-z0-9_-]{0,40}\.(js|css)")
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class StatusBody(_Body):
    status: Literal["online", "away"]


class ReplyBody(_Body):
    client_id: str | None = None
    text: str


class TransferBody(_Body):
    agent_id: Identifier | None = None
    team: Identifier | None = None
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None


class TagsBody(_Body):
    tags: list[str]


PreferenceValue = bool | int | float | Annotated[str, StringConstraints(max_length=200)]


class PreferencesBody(_Body):
    locale: Literal["en", "fi"] | None = None
    settings: dict[str, PreferenceValue] | None = None


@router.post("/login", dependencies=[Depends(refuse_cross_site)])  # no login CSRF
async def login(request: Request, rt: Rt, body: Valid[LoginBody]) -> JSONResponse:
    """Log in with e-mail and password: the session cookie and the agent's profile."""
    done = await agents.login(
        uow=rt.uow,
        throttle=rt.login_throttle,
        email=body.email,
        password=body.password,
        client=client_ip(request, rt.settings.trusted_proxies),
    )
    token = rt.signer.agent_token(
        site_id=done.agent.site_id,
        agent_id=done.agent.agent_id,
        session_version=done.session_version,
        ttl_s=rt.settings.agent_session_ttl_s,
        now=time.time(),
    )
    rt.sessions.forget(done.agent)  # a session begun here is known here at once
    answer = JSONResponse({"agent": done.profile})
    answer.set_cookie(
        COOKIE,
        token,
        max_age=rt.settings.agent_session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=rt.settings.cookie_secure,
        path="/",
    )
    return answer


@router.post("/logout", status_code=204)
async def logout(request: Request, rt: Rt) -> Response:
    """Ends every session of the agent (each console of theirs, on every instance)."""
    refuse_cross_site(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        with contextlib.suppress(ChatError):  # an invalid cookie: nothing to end
            session = session_from_cookie(rt, cookie)
            await rt.sessions.end(
                AgentRef(session.site_id, session.agent_id), session.session_version
            )
    answer = Response(status_code=204)
    answer.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=rt.settings.cookie_secure
    )
    return answer


@router.get("/me")
async def me(rt: Rt, agent: CurrentAgent) -> dict[str, Any]:
    """The agent, their site and its teams (what the console starts with), and the base
    URLs of the leads API (`leads_url`, null: no leads views) and of the notifier
    (`notifier_url`, null: no e-mail views)."""
    answer = await agents.me(uow=rt.uow, agent=agent)
    return {
        **answer,
        "leads_url": rt.settings.leads_url.rstrip("/") or None,
        "notifier_url": rt.settings.notifier_url.rstrip("/") or None,
    }


@router.post("/status")
async def set_status(rt: Rt, agent: CurrentAgent, body: Valid[StatusBody]) -> dict[str, Any]:
    """Go online or away."""
    return {"agent": await agents.set_status(uow=rt.uow, agent=agent, status=body.status)}


@router.post("/me/preferences")
async def preferences(rt: Rt, agent: CurrentAgent, body: Valid[PreferencesBody]) -> dict[str, Any]:
    """The agent's language (`en`, `fi`) and console settings (notifications, sound, …)."""
    changed = await agents.set_preferences(
        uow=rt.uow, agent=agent, locale=body.locale, settings=body.settings
    )
    return {"agent": changed}


@router.get("/conversations")
async def conversation_list(
    rt: Rt, agent: CurrentAgent, scope: Literal["queue", "mine", "all"] = "mine"
) -> dict[str, Any]:
    """The agent's list: the queue of their teams, their open chats, or the site's latest."""
    found = await conversations.agent_conversations(uow=rt.uow, agent=agent, scope=scope)
    # the live list's picture of each visitor still on the site: device, browser, landing
    for conversation in found:
        seen = rt.visitors.brief(agent.site_id, conversation["visitor_id"])
        if seen is not None:
            conversation["visitor"] = seen
    return {"conversations": found}


@router.get("/conversations/{conversation_id}")
async def conversation(rt: Rt, agent: CurrentAgent, conversation_id: UUID) -> dict[str, Any]:
    """The conversation with its timeline (opening, messages, notes, transfers)."""
    return await conversations.agent_conversation(
        uow=rt.uow, agent=agent, conversation_id=conversation_id
    )


@router.post("/conversations/{conversation_id}/pickup")
async def pickup(rt: Rt, agent: CurrentAgent, conversation_id: UUID) -> dict[str, Any]:
    """The agent takes a queued conversation."""
    picked = await conversations.pickup(uow=rt.uow, agent=agent, conversation_id=conversation_id)
    return {"conversation": picked}


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def reply(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[ReplyBody]
) -> dict[str, Any]:
    """The agent replies in a conversation they hold."""
    message = await conversations.agent_message(
        uow=rt.uow,
        agent=agent,
        conversation_id=conversation_id,
        text=clean_text(body.text, max_chars=rt.settings.max_message_chars),
        client_id=clean_client_id(body.client_id),
    )
    return {"message": message}


@router.post("/conversations/{conversation_id}/transfer")
async def transfer(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[TransferBody]
) -> dict[str, Any]:
    """Hand the conversation to an agent or a team, with a note for agents."""
    if (body.agent_id is None) == (body.team is None):
        raise Invalid("invalid", "give exactly one of agent_id or team")
    note = body.note.strip() if body.note else None
    moved, transfer = await conversations.transfer(
        uow=rt.uow,
        agent=agent,
        conversation_id=conversation_id,
        to_agent=body.agent_id,
        to_team=body.team,
        note=note or None,
    )
    # the timeline's "Anna → Ben" with its note: to agents only, like a private note
    await rt.bus.push_to_agents(
        agent.site_id,
        {"t": "transfer", "conversation_id": transfer["conversation_id"], "transfer": transfer},
    )
    return {"conversation": moved, "transfer": transfer}


@router.post("/conversations/{conversation_id}/tags")
async def tag(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[TagsBody]
) -> dict[str, Any]:
    """The conversation's tags."""
    tagged = await conversations.tag(
        uow=rt.uow, agent=agent, conversation_id=conversation_id, tags=clean_tags(body.tags)
    )
    return {"conversation": tagged}


@router.post("/conversations/{conversation_id}/close")
async def close(rt: Rt, agent: CurrentAgent, conversation_id: UUID) -> dict[str, Any]:
    """The agent ends the conversation."""
    closed = await conversations.close(uow=rt.uow, agent=agent, conversation_id=conversation_id)
    return {"conversation": closed}


# --- the console's pages --------------------------------------------------------------------


def _page(request: Request, name: str, media_type: str) -> Response:
    path = STATIC / name
    headers = {
        # set by main.create_app from the settings (the pages answer before the lifespan ran)
        "Content-Security-Policy": request.app.state.console_csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-cache",
    }
    return FileResponse(str(path), media_type=media_type, headers=headers)


@pages.get("/console", include_in_schema=False)
@pages.get("/console/", include_in_schema=False)
async def console_page(request: Request) -> Response:
    return _page(request, "index.html", "text/html; charset=utf-8")


@pages.get("/console/{asset:path}", include_in_schema=False)
async def console_asset(request: Request, asset: str) -> Response:
    match = ASSET_NAME.fullmatch(asset)
    if match is None or not (STATIC / asset).is_file():
        raise NotFound("not_found", "no such file")
    return _page(request, asset, MEDIA_TYPES[match.group(1)])


# --- WebSocket ------------------------------------------------------------------------------


@router.websocket("/ws")
async def agent_socket(ws: WebSocket) -> None:
    rt: Runtime = ws.app.state.chat
    if not same_origin(ws.headers.get("origin"), ws.headers.get("host")):
        await ws.accept()
        await ws.close(code=4403, reason="cross-site console socket")
        return
    try:
        session = session_from_cookie(rt, ws.cookies.get(COOKIE))
        agent = AgentRef(session.site_id, session.agent_id)
        await rt.sessions.ensure(agent, session.session_version)
        profile = await agents.profile(uow=rt.uow, agent=agent)
    except ChatError as exc:
        await ws.accept()
        await ws.close(code=4401, reason=exc.detail)
        return
    except Exception as exc:
        if not database_away(exc):
            raise
        await close_database_away(ws, exc, "console")
        return
    await ws.accept()
    connection = Connection(ws, site_id=agent.site_id, agent_id=agent.agent_id, held=True)
    rt.hub.add(connection)
    watch = asyncio.create_task(_close_when_session_ends(rt, ws, agent, session, connection))
    visitors: dict[str, str] = {}  # conversation -> visitor, for typing signals
    last_beat = 0.0
    try:
        await agents.heartbeat(uow=rt.uow, agent=agent)
        last_beat = time.monotonic()
        connection.start({"t": "hello", "agent": profile})
        while True:
            text = await ws.receive_text()
            if len(text) > rt.settings.max_ws_frame_bytes:
                await ws.close(code=4413, reason="frame too large")
                return
            ended = await _session_ended(rt, agent, session)
            if ended is not None:  # a frame is a console call: refused as the HTTP call would be
                with contextlib.suppress(Exception):  # the watch may have closed it already
                    await ws.close(code=4401, reason=ended.detail)
                return
            if time.monotonic() - last_beat > HEARTBEAT_EVERY_S:
                await agents.heartbeat(uow=rt.uow, agent=agent)
                last_beat = time.monotonic()
            await _on_agent_frame(rt, connection, agent, text, visitors)
    except (WebSocketDisconnect, WebSocketDisconnected):  # gone, or closed by the hub
        pass
    except Exception as exc:
        if not database_away(exc):  # the session check or the heartbeat met it
            raise
        await close_database_away(ws, exc, "console")
    finally:
        watch.cancel()
        rt.hub.remove(connection)
        for feature in rt.features:
            feature.disconnected(connection)


async def _session_ended(rt: Runtime, agent: AgentRef, session: AgentClaims) -> ChatError | None:
    """Why the socket's session no longer stands (expired, logged out, new password,
    deactivated), or None."""
    if session.expires_at <= time.time():
        return NotAuthenticated("session_expired", "this session has expired; log in again")
    try:
        await rt.sessions.ensure(agent, session.session_version)
    except ChatError as exc:
        return exc
    return None


async def _close_when_session_ends(
    rt: Runtime, ws: WebSocket, agent: AgentRef, session: AgentClaims, connection: Connection
) -> None:
    """An open console of a session that ended (logout, new password, deactivation) or
    expired is closed, as the console's next HTTP call would be refused: at once when the
    agent changed (a logout on any instance signals it), else within `session_check_s`."""
    while True:
        wait = max(0.0, min(rt.settings.session_check_s, session.expires_at - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.recheck.wait(), wait)
        if connection.recheck.is_set():
            connection.recheck.clear()
            rt.sessions.forget(agent)  # what this instance read of the sessions is stale
        try:
            ended = await _session_ended(rt, agent, session)
        except Exception:  # the database may blink: the next round asks again
            log.warning("console session check failed", exc_info=True)
            continue
        if ended is not None:
            with contextlib.suppress(Exception):
                await ws.close(code=4401, reason=ended.detail)
            return


async def _on_agent_frame(
    rt: Runtime, connection: Connection, agent: AgentRef, text: str, visitors: dict[str, str]
) -> None:
    frame = parse_frame(text, connection)
    if frame is None:
        return
    kind = frame.get("t")
    try:
        if kind == "message":
            await conversations.agent_message(
                uow=rt.uow,
                agent=agent,
                conversation_id=UUID(str(frame.get("conversation_id"))),
                text=clean_text(frame.get("text"), max_chars=rt.settings.max_message_chars),
                client_id=clean_client_id(frame.get("client_id")),
            )
        elif kind == "typing":
            conversation_id = str(frame.get("conversation_id"))
            visitor = visitors.get(conversation_id)
            if visitor is None:
                row = await conversations.conversation_row(
                    uow=rt.uow, site_id=agent.site_id, conversation_id=UUID(conversation_id)
                )
                if row is None or row["agent_id"] != agent.agent_id:
                    return
                visitor = visitors[conversation_id] = row["visitor_id"]
            await rt.bus.signal(
                TypingSignal(
                    who="agent",
                    site_id=agent.site_id,
                    visitor_id=visitor,
                    conversation_id=UUID(conversation_id),
                    on=bool(frame.get("on")),
                )
            )
        elif kind == "ping":
            connection.push({"t": "pong"})
        elif isinstance(kind, str) and (handler := _frame_handler(rt, kind)) is not None:
            await handler(rt, connection, agent, frame)
        else:
            connection.push(
                {"t": "error", "error": "unknown_frame", "detail": f"unknown t {kind!r}"}
            )
    except Exception as exc:
        frame_failed(exc, connection)


def _frame_handler(rt: Runtime, kind: str) -> FrameHandler | None:
    """The feature's handler of socket frames `{"t": kind}` (features own distinct kinds)."""
    for feature in rt.features:
        handler = feature.frames.get(kind)
        if handler is not None:
            return handler
    return None
