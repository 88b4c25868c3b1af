"""The visitor's edge: session, conversation, messages, e-mail, offline form, invitations and
the widget's WebSocket. Every call is bound by a signed token to one site and one visitor,
checked against the site's origins and rate-limited per (IP, site)."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.chat_events import Language
from beckon_contracts.chat_signals import MAX_PREVIEW_CHARS, TypingSignal
from beckon_contracts.envelope import Identifier
from beckon_edge.database import database_away
from beckon_edge.tokens import InvalidToken, VisitorClaims
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from chat import views
from chat.activity import service as activity
from chat.api.common import client_ip, close_database_away, frame_failed, parse_frame
from chat.api.deps import Rt, Valid
from chat.conversations import service as conversations
from chat.conversations.model import Conversation
from chat.errors import NotAuthenticated, TooMany
from chat.hub import Connection
from chat.refs import Visitor
from chat.runtime import Runtime
from chat.text import InvalidInput, clean_client_id, clean_email, clean_text, without_control

log = logging.getLogger("chat.widget")
router = APIRouter(prefix="/v1/widget", tags=["widget"])

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_LARGE = 4413
CLOSE_RATE_LIMITED = 4429


MAX_VOUCHED_NAME = 200


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionBody(_Body):
    site_key: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    visitor_id: Identifier
    lang: Annotated[str, StringConstraints(max_length=35)] | None = None
    # the browser credential an earlier session of this visitor handed out
    credential: Annotated[str, StringConstraints(max_length=128)] | None = None
    # the user the store's page says is logged in, and the store server's HMAC of the id
    user_id: Identifier | None = None
    user_hash: Annotated[str, StringConstraints(max_length=128)] | None = None
    # that user's e-mail and name as the store knows them: kept only with a valid user_hash
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    name: Annotated[str, StringConstraints(max_length=MAX_VOUCHED_NAME)] | None = None


class StartBody(_Body):
    invitation_id: UUID | None = None
    team: Identifier | None = None
    text: str | None = None
    client_id: str | None = None
    language: Language | None = None  # the widget's: e-mails to the visitor use it


class MessageBody(_Body):
    client_id: str | None = None
    text: str


class EmailBody(_Body):
    email: str


class OfflineBody(_Body):
    email: str
    text: str
    name: Annotated[str, StringConstraints(max_length=120)] | None = None
    team: Identifier | None = None
    language: Language | None = None


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Browsers always send Origin on these calls: a call without one is not the widget."""
    return origin is not None and origin.rstrip("/").lower() in allowed


def _visitor_of(claims: VisitorClaims) -> Visitor:
    try:
        credential = UUID(claims.credential_id) if claims.credential_id else None
    except ValueError:
        credential = None
    return Visitor(claims.site_id, claims.visitor_id, credential, claims.user_id)


def _limit(request: Request, rt: Runtime, scope: str) -> None:
    wait = rt.widget_limiter.acquire((client_ip(request, rt.settings.trusted_proxies), scope))
    if wait > 0:
        raise TooMany("rate_limited", f"too many requests; retry in {wait:.1f} s", retry_after=wait)


async def current_visitor(request: Request, rt: Rt) -> Visitor:
    """The visitor a widget call's bearer token names, from an allowed origin, within the
    rate limit."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("missing_token", "send Authorization: Bearer <token>")
    try:
        claims = rt.signer.check_visitor(token.strip(), now=time.time())
    except InvalidToken as exc:
        raise NotAuthenticated("invalid_token", str(exc)) from None
    site = await rt.sites.get(claims.site_id)
    if site is None:
        raise NotAuthenticated("invalid_token", "the site of this token no longer exists")
    conversations.check_origin(request.headers.get("origin"), list(site["allowed_origins"]))
    _limit(request, rt, claims.site_id)
    return _visitor_of(claims)


CurrentVisitor = Annotated[Visitor, Depends(current_visitor)]


@router.post("/session")
async def create_session(request: Request, rt: Rt, body: Valid[SessionBody]) -> dict[str, Any]:
    """Open the widget for one visitor of one site in one browser: the browser's credential
    (a new one when none or another was presented: keep it and send it next time), a
    token, the identity's state, the site's settings and what this browser reaches."""
    _limit(request, rt, body.site_key)
    info = await conversations.visitor_session(
        uow=rt.uow,
        site_key=body.site_key,
        visitor_id=body.visitor_id,
        origin=request.headers.get("origin"),
        credential=body.credential,
        user_id=body.user_id,
        user_hash=body.user_hash,
    )
    site = info.pop("site_row")
    visitor: Visitor = info.pop("visitor")
    if visitor.user_id is not None:  # the store vouched for the user: the card shows it so
        await activity.widget_identified(
            uow=rt.uow,
            site_id=site["site_id"],
            visitor_id=visitor.visitor_id,
            user_id=visitor.user_id,
            email=_vouched_email(body.email),
            name=without_control(body.name).strip() or None if body.name else None,
        )
    if info["credential"] is None:
        info.pop("credential")
    conversation = info["conversation"]
    live = conversation if conversation and Conversation.of(conversation).live else None
    info["token"] = _token(rt, visitor, live["id"] if live else None)
    return info


def _vouched_email(email: str | None) -> str | None:
    """The store's e-mail of its user, when it is one (a store's odd value never fails the
    widget's start: the user is still verified, without an e-mail)."""
    if not email:
        return None
    try:
        return clean_email(email)
    except InvalidInput:
        log.info("the store's e-mail for a verified user is not an address; not kept")
        return None


def _token(rt: Runtime, visitor: Visitor, conversation_id: str | None) -> str:
    return rt.signer.visitor_token(
        site_id=visitor.site_id,
        visitor_id=visitor.visitor_id,
        conversation_id=conversation_id,
        ttl_s=rt.settings.visitor_token_ttl_s,
        now=time.time(),
        credential_id=str(visitor.credential_id) if visitor.credential_id else None,
        user_id=visitor.user_id,
    )


@router.post("/conversations")
async def start_conversation(
    rt: Rt, visitor: CurrentVisitor, body: Valid[StartBody]
) -> JSONResponse:
    """The visitor's live conversation, started (201) or as it is (200), and a token for it."""
    text = clean_text(body.text, max_chars=rt.settings.max_message_chars) if body.text else None
    conversation, created = await conversations.start_conversation(
        uow=rt.uow,
        visitor=visitor,
        invitation_id=body.invitation_id,
        team=body.team,
        text=text,
        client_id=clean_client_id(body.client_id),
        language=body.language,
    )
    token = _token(rt, visitor, conversation["id"])
    return JSONResponse(
        {"conversation": conversation, "token": token}, status_code=201 if created else 200
    )


@router.get("/messages")
async def list_messages(rt: Rt, visitor: CurrentVisitor, after: int = 0) -> dict[str, Any]:
    """The messages of the visitor's conversation after seq `after`."""
    messages = await conversations.visitor_messages(
        uow=rt.uow, visitor=visitor, after=max(0, after)
    )
    return {"messages": messages}


@router.post("/messages", status_code=201)
async def post_message(rt: Rt, visitor: CurrentVisitor, body: Valid[MessageBody]) -> dict[str, Any]:
    """The visitor writes in their live conversation."""
    message = await conversations.visitor_message(
        uow=rt.uow,
        visitor=visitor,
        text=clean_text(body.text, max_chars=rt.settings.max_message_chars),
        client_id=clean_client_id(body.client_id),
    )
    return {"message": message}


@router.post("/email", status_code=204)
async def capture_email(rt: Rt, visitor: CurrentVisitor, body: Valid[EmailBody]) -> Response:
    """The visitor leaves their e-mail address."""
    await conversations.capture_email(uow=rt.uow, visitor=visitor, email=clean_email(body.email))
    return Response(status_code=204)


@router.post("/offline", status_code=201)
async def leave_offline_message(
    rt: Rt, visitor: CurrentVisitor, body: Valid[OfflineBody]
) -> dict[str, Any]:
    """Nobody is online: the visitor leaves a message and an address."""
    conversation = await conversations.leave_offline_message(
        uow=rt.uow,
        visitor=visitor,
        email=clean_email(body.email),
        text=clean_text(body.text, max_chars=rt.settings.max_message_chars),
        name=body.name.strip() if body.name and body.name.strip() else None,
        team=body.team,
        language=body.language,
    )
    return {"conversation": conversation}


@router.post("/invitations/{invitation_id}/{outcome}", status_code=204)
async def invitation_outcome(
    rt: Rt,
    visitor: CurrentVisitor,
    invitation_id: UUID,
    outcome: Literal["shown", "accepted", "declined"],
) -> Response:
    """The widget showed, accepted or declined an invitation."""
    await conversations.invitation_outcome(
        uow=rt.uow, visitor=visitor, invitation_id=invitation_id, outcome=outcome
    )
    return Response(status_code=204)


# --- WebSocket ------------------------------------------------------------------------------


class _Bucket:
    """A token bucket for one socket (a dict-backed limiter per socket would cost more)."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, float(burst), float(burst), 0.0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@router.websocket("/ws")
async def visitor_socket(ws: WebSocket) -> None:
    rt: Runtime = ws.app.state.chat
    try:
        claims = rt.signer.check_visitor(ws.query_params.get("token", ""), now=time.time())
    except InvalidToken as exc:
        await ws.accept()
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=str(exc))
        return
    try:
        site = await rt.sites.get(claims.site_id)
    except Exception as exc:
        if not database_away(exc):
            raise
        await close_database_away(ws, exc, "visitor")
        return
    if site is None or not origin_allowed(ws.headers.get("origin"), list(site["allowed_origins"])):
        await ws.accept()
        await ws.close(code=CLOSE_FORBIDDEN, reason="origin missing or not allowed for this site")
        return
    await ws.accept()
    visitor = _visitor_of(claims)
    connection = Connection(
        ws,
        site_id=claims.site_id,
        visitor_id=claims.visitor_id,
        held=True,
        credential_id=visitor.credential_id,
        user_id=visitor.user_id,
    )
    rt.hub.add(connection)
    try:
        try:
            hello = await conversations.visitor_hello(uow=rt.uow, visitor=visitor)
        except Exception as exc:
            if not database_away(exc):
                raise
            await close_database_away(ws, exc, "visitor")  # a new session would meet it too
            return
        rt.hub.track(connection, hello["conversation"])
        connection.start(hello)
        bucket = _Bucket(rt.settings.socket_messages_per_s, rt.settings.socket_message_burst)
        allow_preview = bool(views.site(site)["typing_preview"])
        while True:
            text = await ws.receive_text()
            if len(text) > rt.settings.max_ws_frame_bytes:
                await ws.close(code=CLOSE_TOO_LARGE, reason="frame too large")
                return
            if claims.expires_at <= time.time():  # as a widget call with the token would be
                await ws.close(code=CLOSE_UNAUTHORIZED, reason="token expired; open a new session")
                return
            if not bucket.take():
                connection.push({"t": "error", "error": "rate_limited", "detail": "slow down"})
                continue
            await _on_visitor_frame(rt, connection, visitor, text, allow_preview)
    except (WebSocketDisconnect, WebSocketDisconnected):  # gone, or closed by the hub
        pass
    finally:
        rt.hub.remove(connection)


async def _on_visitor_frame(
    rt: Runtime, connection: Connection, visitor: Visitor, text: str, allow_preview: bool
) -> None:
    frame = parse_frame(text, connection)
    if frame is None:
        return
    kind = frame.get("t")
    try:
        if kind == "message":
            message = await conversations.visitor_message(
                uow=rt.uow,
                visitor=visitor,
                text=clean_text(frame.get("text"), max_chars=rt.settings.max_message_chars),
                client_id=clean_client_id(frame.get("client_id")),
            )
            if connection.conversation_id is None:
                connection.conversation_id = UUID(message["conversation_id"])
        elif kind == "typing":
            if connection.conversation_id is None:
                return
            preview = frame.get("preview") if allow_preview else None
            await rt.bus.signal(
                TypingSignal(
                    who="visitor",
                    site_id=visitor.site_id,
                    visitor_id=visitor.visitor_id,
                    conversation_id=connection.conversation_id,
                    on=bool(frame.get("on")),
                    preview=preview[:MAX_PREVIEW_CHARS] if isinstance(preview, str) else None,
                )
            )
        elif kind == "sync":
            after = frame.get("after")
            after = after if isinstance(after, int) and after >= 0 else 0
            messages = await conversations.visitor_messages(
                uow=rt.uow, visitor=visitor, after=after
            )
            connection.push({"t": "messages", "messages": messages})
        elif kind == "seen":
            await conversations.visitor_seen(uow=rt.uow, visitor=visitor, **_seen_frame(frame))
        elif kind == "ping":
            connection.push({"t": "pong"})
        else:
            connection.push(
                {"t": "error", "error": "unknown_frame", "detail": f"unknown t {kind!r}"}
            )
    except Exception as exc:
        frame_failed(exc, connection)


def _seen_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """A `seen` frame's conversation and seq, or a ValueError that says what is wrong."""
    seq = frame.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("seen: seq must be an integer, the seq of the last message shown")
    try:
        conversation_id = UUID(str(frame.get("conversation_id")))
    except ValueError:
        raise ValueError("seen: conversation_id must be the conversation's id") from None
    return {"conversation_id": conversation_id, "seq": seq}
