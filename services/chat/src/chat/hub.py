"""The sockets this instance holds, and what each record of the feed means for them.

Nothing is delivered from memory alone: a message written on this instance reaches its own
sockets the same way as another instance's, through `chat.events` / `chat.signals`. Sends
never block the feed: each connection drains its own small queue, and a socket that falls
too far behind is closed (its client reconnects and syncs what it missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

import orjson
from beckon_contracts.chat_signals import (
    AgentsChangedSignal,
    AgentsPushSignal,
    ChatSignal,
    InvitationSignal,
    TypingSignal,
    chat_signal_adapter,
)
from beckon_contracts.topics import CHAT_EVENTS
from pydantic import ValidationError
from starlette.websockets import WebSocket

from chat.conversations import views
from chat.conversations.model import Conversation
from chat.views import agent_card

log = logging.getLogger("chat.hub")

# well above one feed batch (1000 records), so only a socket that really stalls is dropped
MAX_PENDING_FRAMES = 5000
CONVERSATION_CHANGES = frozenset(
    {
        "conversation.started",
        "conversation.assigned",
        "conversation.transferred",
        "conversation.tagged",
        "conversation.email_captured",
        "conversation.closed",
    }
)


_closing: set[asyncio.Task[None]] = set()


# what can change a waiting visitor's place in the queue
QUEUE_MOVES = frozenset(
    {
        "conversation.started",
        "conversation.assigned",
        "conversation.transferred",
        "conversation.closed",
    }
)


class Connection:
    __slots__ = (
        "_held",
        "_pending",
        "_writer",
        "agent_id",
        "closed",
        "conversation_id",
        "credential_id",
        "following",
        "queued",
        "recheck",
        "site_id",
        "told_place",
        "user_id",
        "visitor_id",
        "ws",
    )

    def __init__(
        self,
        ws: WebSocket,
        *,
        site_id: str,
        visitor_id: str | None = None,
        agent_id: str | None = None,
        held: bool = False,
        credential_id: UUID | None = None,
        user_id: str | None = None,
    ) -> None:
        self.ws = ws
        self.site_id = site_id
        self.visitor_id = visitor_id
        self.agent_id = agent_id
        self.credential_id = credential_id  # a visitor's browser credential
        self.user_id = user_id  # a visitor's verified identity
        self.following: UUID | None = None  # the conversation the widget shows (live or not)
        self.closed = False
        self.conversation_id: UUID | None = None  # the visitor's live conversation
        self.queued: UUID | None = None  # the same, while it waits for an agent
        self.told_place: tuple[str, int | None] | None = None  # status and place last sent
        self._pending: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._held = held  # frames wait until `start` sends the greeting first
        # an agent's socket: set when the agent changed (a logout on any instance), so the
        # socket asks at once whether its session still stands
        self.recheck = asyncio.Event()

    def start(self, greeting: dict[str, Any]) -> None:
        """Send the greeting, then whatever arrived for this socket while it was prepared."""
        self._pending.appendleft(orjson.dumps(greeting).decode())
        self._held = False
        self._wake()

    def push(self, frame: dict[str, Any]) -> None:
        self.push_text(orjson.dumps(frame).decode())

    def push_text(self, text: str) -> None:
        """Queue one frame already serialised (once for every socket it goes to)."""
        if self.closed:
            return
        if len(self._pending) >= MAX_PENDING_FRAMES:
            self.closed = True
            task = asyncio.get_running_loop().create_task(self._close_slow())
            _closing.add(task)  # keep a reference until it has run
            task.add_done_callback(_closing.discard)
            return
        self._pending.append(text)
        self._wake()

    def _wake(self) -> None:
        if self._writer is None and not self._held and self._pending:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending and not self.closed:
                await self.ws.send_text(self._pending.popleft())
        except Exception:  # the socket went away; its handler cleans up
            self.closed = True
        finally:
            self._writer = None

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=4408, reason="too slow; reconnect and sync")


async def _close(connection: Connection, code: int, reason: str) -> None:
    connection.closed = True
    with contextlib.suppress(Exception):  # gone already
        await connection.ws.close(code=code, reason=reason)


ConversationLookup = Callable[[str, UUID], Awaitable[Any]]
ConversationsLookup = Callable[[str, list[UUID]], Awaitable[list[Any]]]
LastMessageLookup = Callable[[str, UUID], Awaitable[Any]]
MessageLookup = Callable[[str, UUID, UUID], Awaitable[Any]]
AgentLookup = Callable[[str, str], Awaitable[dict[str, Any]]]


class Hub:
    def __init__(
        self,
        conversation: ConversationLookup,
        conversations: ConversationsLookup,
        agent: AgentLookup,
        last_message: LastMessageLookup,
        message: MessageLookup | None = None,
    ) -> None:
        self._conversation = conversation
        self._conversations = conversations  # many rows in one query (queued visitors' places)
        self._agent = agent
        self._last_message = last_message
        self._message = message  # a stored message: an e-mailed reply's attachment notes
        self.visitors: dict[tuple[str, str], set[Connection]] = defaultdict(set)
        # verified visitors by (site, user id): their conversations reach them on any device
        self.users: dict[tuple[str, str], set[Connection]] = defaultdict(set)
        # visitor sockets by the conversation they show: where its messages go
        self.following: dict[UUID, set[Connection]] = defaultdict(set)
        self.agents: dict[str, set[Connection]] = defaultdict(set)  # by site
        self.waiting: dict[str, set[Connection]] = defaultdict(set)  # queued visitors, by site
        self.delivered = 0
        self.skipped_signals = 0  # invalid records on chat.signals, logged and skipped
        self._closing: tuple[int, str] | None = None  # set by close_all
        self._queue_moved: set[str] = set()  # sites whose queue moved in this feed batch

    # --- registry --------------------------------------------------------------------------

    def add(self, connection: Connection) -> None:
        if self._closing is not None:  # opened while the instance shuts down: elsewhere, please
            task = asyncio.get_running_loop().create_task(_close(connection, *self._closing))
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        if connection.agent_id is not None:
            self.agents[connection.site_id].add(connection)
        else:
            assert connection.visitor_id is not None
            self.visitors[(connection.site_id, connection.visitor_id)].add(connection)
            if connection.user_id is not None:
                self.users[(connection.site_id, connection.user_id)].add(connection)

    def track(self, connection: Connection, conversation: Any) -> None:
        """Remember a visitor socket's live conversation, and whether it waits in the queue."""
        state = Conversation.of(conversation) if conversation is not None else None
        live = state is not None and state.live
        queued = state is not None and state.queued
        connection.conversation_id = UUID(str(conversation["id"])) if live else None
        connection.queued = connection.conversation_id if queued else None
        shown = UUID(str(conversation["id"])) if conversation is not None else None
        if shown != connection.following:
            _discard(self.following, connection.following, connection)
            connection.following = shown
            if shown is not None:
                self.following[shown].add(connection)
        waiting = self.waiting[connection.site_id]
        if queued:
            waiting.add(connection)
        else:
            waiting.discard(connection)
            if not waiting:
                self.waiting.pop(connection.site_id, None)

    def remove(self, connection: Connection) -> None:
        connection.closed = True
        self.waiting.get(connection.site_id, set()).discard(connection)
        if connection.agent_id is not None:
            group = self.agents.get(connection.site_id)
            key: Any = connection.site_id
            registry: dict[Any, set[Connection]] = self.agents
        else:
            key = (connection.site_id, connection.visitor_id)
            group = self.visitors.get(key)
            registry = self.visitors
            _discard(self.following, connection.following, connection)
            if connection.user_id is not None:
                _discard(self.users, (connection.site_id, connection.user_id), connection)
        if group is not None:
            group.discard(connection)
            if not group:
                registry.pop(key, None)

    async def close_all(self, code: int, reason: str) -> int:
        """Close every socket this instance holds, and each one added from now on (shutting
        down); how many there were."""
        self._closing = (code, reason)
        connections = [
            connection
            for groups in (self.visitors.values(), self.agents.values())
            for group in groups
            for connection in group
        ]

        await asyncio.gather(*(_close(connection, code, reason) for connection in connections))
        return len(connections)

    @property
    def socket_count(self) -> int:
        return sum(map(len, self.visitors.values())) + sum(map(len, self.agents.values()))

    def _send(self, connections: Iterable[Connection] | None, frame: dict[str, Any]) -> None:
        if not connections:
            return
        text = orjson.dumps(frame).decode()
        for connection in list(connections):
            connection.push_text(text)
            self.delivered += 1

    # --- the feed --------------------------------------------------------------------------

    async def handle(self, topic: str, record: dict[str, Any]) -> None:
        if topic == CHAT_EVENTS.name:
            await self._fact(record)
            return
        try:
            signal = chat_signal_adapter.validate_python(record)
        except ValidationError as exc:
            # an instance of another version, or a bug: skip it, the feed goes on
            self.skipped_signals += 1
            first = exc.errors(include_url=False, include_input=False)[0]
            log.warning(
                "invalid signal skipped",
                extra={
                    "kind": str(record.get("kind"))[:40],
                    "loc": ".".join(str(part) for part in first["loc"]),
                    "error": first["msg"][:200],
                },
            )
            return
        await self.signal(signal)

    async def _fact(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        site_id, visitor_id = event.get("site_id"), event.get("visitor_id")
        payload = event.get("payload") or {}
        if not isinstance(site_id, str) or not isinstance(visitor_id, str):
            return
        # never every socket of the visitor id: only the browsers that reach the conversation
        visitors = self._following(site_id, payload.get("conversation_id"))
        agents = self.agents.get(site_id)
        if kind == "message.sent":
            message = message_frame(payload)
            if message["channel"] == "email" and (visitors or agents):
                message["attachments"] = await self._attachments(site_id, payload)
            self._send(visitors, {"t": "message", "message": message})
            self._send(
                agents,
                {"t": "message", "conversation_id": payload["conversation_id"], "message": message},
            )
        elif kind in CONVERSATION_CHANGES and (
            agents or self.visitors.get((site_id, visitor_id)) or self.users
        ):
            await self._conversation_changed(site_id, visitor_id, payload, agents)
        if kind in QUEUE_MOVES and self.waiting.get(site_id):
            self._queue_moved.add(site_id)  # told once the batch is through (`batch_end`)

    async def _attachments(self, site_id: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """An e-mailed reply's attachment notes: stored with the message, not in its event."""
        if self._message is None:
            return []
        try:
            row = await self._message(
                site_id, UUID(str(payload["conversation_id"])), UUID(str(payload["message_id"]))
            )
        except Exception:  # the message matters more than its notes (a reload shows them)
            log.exception("attachment notes not found for a live e-mailed reply")
            return []
        return views.attachments(row["attachments"]) if row is not None else []

    def _following(self, site_id: str, conversation_id: Any) -> set[Connection] | None:
        try:
            group = self.following.get(UUID(str(conversation_id)), ())
        except ValueError:
            return None
        return {connection for connection in group if connection.site_id == site_id}

    async def _conversation_changed(
        self,
        site_id: str,
        visitor_id: str,
        payload: dict[str, Any],
        agents: set[Connection] | None,
    ) -> None:
        if payload.get("conversation_id") is None:  # an e-mail left before any chat
            return
        row = await self._conversation(site_id, UUID(payload["conversation_id"]))
        if row is None:
            return
        candidates = set(self.visitors.get((site_id, visitor_id), ()))
        if row.get("user_id") is not None:
            candidates |= self.users.get((site_id, row["user_id"]), set())
        visitors = {c for c in candidates if reaches(c, row)}
        conversation = views.conversation(row)
        for connection in list(visitors or ()):
            self.track(connection, conversation)
            connection.told_place = _place(conversation)
        self._send(visitors, {"t": "conversation", "conversation": conversation})
        if agents:
            # A console may hear of this conversation for the first time (a transfer to its
            # agent, an assignment): the frame alone must fill its row, preview included.
            last = await self._last_message(site_id, row["conversation_id"])
            self._send(
                agents,
                {"t": "conversation", "conversation": views.agent_conversation(row, last)},
            )

    async def batch_end(self) -> None:
        """After each feed batch: visitors waiting here learn their new place, once per batch
        however often the queue moved in it, with one query per site. (Once per move, one
        lookup per waiting visitor, made the feed's work grow with the square of the queue:
        in the chaos battery a queue of a few hundred visitors left the feed minutes behind,
        and consoles heard of lines long after they were written.)"""
        moved, self._queue_moved = self._queue_moved, set()
        for site_id in sorted(moved):
            await self._refresh_queue(site_id)

    async def _refresh_queue(self, site_id: str) -> None:
        by_conversation: dict[UUID, list[Connection]] = defaultdict(list)
        for connection in self.waiting.get(site_id, ()):
            if connection.queued is not None:
                by_conversation[connection.queued].append(connection)
        if not by_conversation:
            return
        for row in await self._conversations(site_id, sorted(by_conversation)):
            conversation = views.conversation(row)
            place = _place(conversation)
            # still waiting for this one (a frame handled meanwhile may have moved it on)
            told = [
                connection
                for connection in by_conversation.get(row["conversation_id"], ())
                if connection.queued == row["conversation_id"] and connection.told_place != place
            ]
            for connection in told:
                self.track(connection, conversation)
                connection.told_place = place
            self._send(told, {"t": "conversation", "conversation": conversation})

    async def signal(self, signal: ChatSignal) -> None:
        """Deliver one signal to the sockets here it is meant for."""
        site_id = signal.site_id
        if isinstance(signal, TypingSignal):
            if signal.who == "visitor":
                self._send(
                    self.agents.get(site_id),
                    {
                        "t": "typing",
                        "conversation_id": str(signal.conversation_id),
                        "who": "visitor",
                        "on": signal.on,
                        "preview": signal.preview,
                    },
                )
            else:  # never a preview: agents' drafts are theirs
                self._send(
                    self.following.get(signal.conversation_id), {"t": "typing", "on": signal.on}
                )
        elif isinstance(signal, InvitationSignal):
            self._send(
                self.visitors.get((site_id, signal.visitor_id)),
                {"t": "invitation", "invitation": signal.invitation.model_dump(mode="json")},
            )
        elif isinstance(signal, AgentsPushSignal):  # agents-only frames (Bus.push_to_agents)
            group: Iterable[Connection] = self.agents.get(site_id, ())
            if signal.agent_ids is not None:
                ids = set(signal.agent_ids)
                group = [c for c in group if c.agent_id in ids]
            self._send(group, signal.frame)
        elif isinstance(signal, AgentsChangedSignal):
            wanted = set(signal.agent_ids)
            mine = [c for c in self.agents.get(site_id, ()) if c.agent_id in wanted]
            for connection in mine:
                connection.recheck.set()
            for agent_id in {c.agent_id for c in mine}:
                assert agent_id is not None
                agent = await self._agent(site_id, agent_id)
                self._send(
                    {c for c in mine if c.agent_id == agent_id}, {"t": "agent", "agent": agent}
                )


def _place(conversation: dict[str, Any]) -> tuple[str, int | None]:
    """What a waiting visitor is told of their conversation's place in the queue."""
    return (str(conversation.get("status")), conversation.get("queue_position"))


def reaches(connection: Connection, row: Any) -> bool:
    """Whether a visitor socket may see this conversation: its browser started it, or the
    store vouched for the user who did."""
    same_browser = (
        connection.credential_id is not None
        and connection.visitor_id == row["visitor_id"]
        and connection.credential_id == row.get("credential_id")
    )
    same_user = connection.user_id is not None and connection.user_id == row.get("user_id")
    return same_browser or same_user


def _discard(registry: dict[Any, set[Connection]], key: Any, connection: Connection) -> None:
    group = registry.get(key) if key is not None else None
    if group is not None:
        group.discard(connection)
        if not group:
            registry.pop(key, None)


def message_frame(payload: dict[str, Any]) -> dict[str, Any]:
    """A `message.sent` payload as the Message shape of docs/chat.md."""
    name = payload.get("agent_name")
    return {
        "id": payload["message_id"],
        "conversation_id": payload["conversation_id"],
        "seq": payload["seq"],
        "author": payload["author"],
        "agent": agent_card(name, payload.get("agent_avatar_url")) if name else None,
        "text": payload["text"],
        "client_id": payload.get("client_id"),
        "created_at": payload.get("sent_at"),
        "channel": payload.get("channel") or "chat",
        "attachments": [],  # an e-mailed reply's: filled from its stored row (`Hub._fact`)
    }
