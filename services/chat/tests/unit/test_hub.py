import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
import pytest
from beckon_contracts.chat_signals import (
    AgentCard,
    AgentsChangedSignal,
    AgentsPushSignal,
    ChatSignal,
    InvitationSignal,
    ShownInvitation,
    TypingSignal,
)
from beckon_contracts.topics import CHAT_EVENTS, CHAT_SIGNALS
from chat import hub as hub_module
from chat.conversations import views
from chat.hub import Connection, Hub
from chat.outbox import chat_event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONVERSATION = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000001")
QUEUED_ELSEWHERE = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000002")
MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "seq",
    "author",
    "agent",
    "text",
    "client_id",
    "created_at",
    "channel",
    "attachments",
}


MARKER = {"t": "test.marker"}


class FakeSocket:
    """What the hub needs of a Starlette WebSocket: `send_text` and `close`. The test's own
    marker frames are counted in `markers`, not kept in `sent`."""

    def __init__(self, name: str, *, stalled: bool = False) -> None:
        self.name = name
        self.sent: list[dict] = []
        self.markers = 0
        self.stalled = stalled
        self.closed_with: tuple[int, str] | None = None
        self._release = asyncio.Event()
        if not stalled:
            self._release.set()

    async def send_text(self, text: str) -> None:
        await self._release.wait()
        frame = orjson.loads(text)
        if frame == MARKER:
            self.markers += 1
        else:
            self.sent.append(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)

    def kinds(self) -> list[str]:
        return [frame["t"] for frame in self.sent]


def browser(site_id: str, visitor_id: str) -> UUID:
    """The browser credential of a visitor here (one browser per visitor id, its tabs alike)."""
    return uuid5(NAMESPACE_URL, f"{site_id}:{visitor_id}")


def _row(conversation_id=CONVERSATION, *, visitor_id="v_1", status="open", position=None):
    return {
        "conversation_id": conversation_id,
        "site_id": "demo",
        "visitor_id": visitor_id,
        "credential_id": browser("demo", visitor_id),
        "user_id": None,
        "team": "sales",
        "agent_id": "demo-anna" if status == "open" else None,
        "agent_name": "Anna" if status == "open" else None,
        "agent_avatar_url": None,
        "status": status,
        "queue_position": position,
        "last_seq": 3,
        "email": None,
        "tags": ["price"],
        "created_at": NOW,
    }


class World:
    """A hub with sockets on two sites: who received what."""

    def __init__(self) -> None:
        self.rows: dict[UUID, dict] = {CONVERSATION: _row()}
        self.lookups: list[tuple[str, UUID]] = []
        self.batch_lookups: list[tuple[str, list[UUID]]] = []  # many rows in one query
        self.last_messages: dict[UUID, dict] = {}
        self.stored: dict[UUID, dict] = {}  # messages by id (an e-mailed reply's notes)
        self.hub = Hub(
            self._conversation,
            self._conversations,
            self._agent,
            self._last_message,
            self._message,
        )
        self.sockets: dict[str, FakeSocket] = {}
        self.connections: dict[str, Connection] = {}
        self.visitor("visitor", "demo", "v_1")
        self.visitor("visitor_tab2", "demo", "v_1")
        self.visitor("other_visitor", "demo", "v_2")
        self.visitor("same_id_other_site", "other", "v_1")
        self.agent("anna", "demo", "demo-anna")
        self.agent("ben", "demo", "demo-ben")
        self.agent("other_site_agent", "other", "other-olga")

    async def _conversation(self, site_id, conversation_id):
        self.lookups.append((site_id, conversation_id))
        row = self.rows.get(conversation_id)
        return row if row is not None and row["site_id"] == site_id else None

    async def _conversations(self, site_id, conversation_ids):
        self.batch_lookups.append((site_id, list(conversation_ids)))
        rows = [self.rows.get(cid) for cid in conversation_ids]
        return [row for row in rows if row is not None and row["site_id"] == site_id]

    async def _message(self, site_id, conversation_id, message_id):
        row = self.stored.get(message_id)
        return row if row is not None and self.rows[conversation_id]["site_id"] == site_id else None

    async def _last_message(self, site_id, conversation_id):
        return self.last_messages.get(conversation_id)

    async def _agent(self, site_id, agent_id):
        return {"id": agent_id, "site_id": site_id, "status": "online"}

    def visitor(self, name, site_id, visitor_id, *, credential=None, user_id=None, **options):
        """A widget socket, greeted with the conversation its browser reaches (as the widget
        socket's hello does)."""
        connection = self._connect(
            name,
            Connection(
                FakeSocket(name, **options),
                site_id=site_id,
                visitor_id=visitor_id,
                credential_id=credential or browser(site_id, visitor_id),
                user_id=user_id,
            ),
        )
        for row in self.rows.values():
            if hub_module.reaches(connection, row) and row["site_id"] == site_id:
                self.hub.track(connection, views.conversation(row))
        return connection

    def agent(self, name, site_id, agent_id):
        return self._connect(name, Connection(FakeSocket(name), site_id=site_id, agent_id=agent_id))

    def _connect(self, name, connection):
        self.sockets[name] = connection.ws
        self.connections[name] = connection
        self.hub.add(connection)
        return connection

    def received(self) -> set[str]:
        return {name for name, socket in self.sockets.items() if socket.sent}

    async def settle(self) -> None:
        """Wait until every open socket has everything the hub queued for it so far: a marker
        frame queued now behind it arrives (each connection sends in order), so a frame that
        is not in `sent` by then was never queued. Stalled sockets get no marker."""
        expected = {}
        for name, connection in self.connections.items():
            socket = self.sockets[name]
            if not connection.closed and not socket.stalled:
                expected[name] = socket.markers + 1
                connection.push(MARKER)
        await until(
            lambda: all(
                self.sockets[name].markers >= count or self.connections[name].closed
                for name, count in expected.items()
            )
        )


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition` holds (no clock: a bounded number of turns)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def _message_event(
    *,
    site_id="demo",
    visitor_id="v_1",
    author="visitor",
    seq=1,
    channel="chat",
    conversation=CONVERSATION,
):
    agent = {"agent_id": "demo-anna", "agent_name": "Anna"} if author == "agent" else {}
    record = chat_event(
        "message.sent",
        site_id=site_id,
        visitor_id=visitor_id,
        key=str(conversation),
        now=NOW,
        payload={
            "conversation_id": conversation,
            "message_id": UUID(int=seq),
            "seq": seq,
            "author": author,
            "text": f"message {seq}",
            "client_id": f"c-{seq}",
            "sent_at": NOW,
            "channel": channel,
            **agent,
        },
    )
    return orjson.loads(record.value)  # as the feed hands it to the hub


def _change_event(kind="conversation.assigned", *, visitor_id="v_1", conversation=CONVERSATION):
    payloads = {
        "conversation.assigned": {
            "conversation_id": conversation,
            "team": "sales",
            "agent_id": "demo-anna",
            "agent_name": "Anna",
            "how": "auto",
        },
        "conversation.closed": {
            "conversation_id": conversation,
            "closed_by": "agent",
            "team": "sales",
            "messages": 3,
        },
    }
    record = chat_event(
        kind,
        site_id="demo",
        visitor_id=visitor_id,
        payload=payloads[kind],
        key=str(conversation),
        now=NOW,
    )
    return orjson.loads(record.value)


async def test_a_message_reaches_the_visitors_sockets_and_the_sites_agents_only():
    world = World()
    await world.hub.handle(CHAT_EVENTS.name, _message_event())
    await world.settle()
    assert world.received() == {"visitor", "visitor_tab2", "anna", "ben"}
    for name in ("visitor", "visitor_tab2"):
        [frame] = world.sockets[name].sent
        assert set(frame) == {"t", "message"}
        assert frame["t"] == "message"
        assert set(frame["message"]) == MESSAGE_KEYS
        assert frame["message"]["seq"] == 1
        assert frame["message"]["author"] == "visitor"
        assert frame["message"]["agent"] is None
        assert frame["message"]["conversation_id"] == str(CONVERSATION)
    for name in ("anna", "ben"):
        [frame] = world.sockets[name].sent
        assert frame == {
            "t": "message",
            "conversation_id": str(CONVERSATION),
            "message": world.sockets["visitor"].sent[0]["message"],
        }


async def test_an_emailed_reply_reaches_every_socket_with_its_attachment_notes() -> None:
    """Its event has no room for the attachments: the hub adds them from the stored row."""
    world = World()
    notes = [{"filename": "receipt.pdf", "content_type": "application/pdf", "size": 2048}]
    world.stored[UUID(int=1)] = {"attachments": orjson.dumps(notes).decode()}  # jsonb as text
    await world.hub.handle(CHAT_EVENTS.name, _message_event(channel="email"))
    await world.settle()
    assert world.received() == {"visitor", "visitor_tab2", "anna", "ben"}
    for name in ("visitor", "anna"):
        [frame] = world.sockets[name].sent
        assert frame["message"]["author"] == "visitor"
        assert frame["message"]["channel"] == "email"
        assert frame["message"]["attachments"] == notes


async def test_an_emailed_reply_whose_notes_cannot_be_read_is_delivered_without_them() -> None:
    world = World()

    async def away(site_id, conversation_id, message_id):
        raise ConnectionRefusedError("postgres is away")

    world.hub._message = away
    await world.hub.handle(CHAT_EVENTS.name, _message_event(channel="email"))
    await world.settle()
    [frame] = world.sockets["anna"].sent
    assert (frame["message"]["channel"], frame["message"]["attachments"]) == ("email", [])


async def test_a_typed_message_is_on_the_chat_channel_without_a_lookup() -> None:
    world = World()
    world.stored[UUID(int=1)] = {"attachments": '[{"content_type": "x/y", "size": 1}]'}
    await world.hub.handle(CHAT_EVENTS.name, _message_event())
    await world.settle()
    [frame] = world.sockets["anna"].sent
    assert (frame["message"]["channel"], frame["message"]["attachments"]) == ("chat", [])


async def test_an_agents_message_carries_the_agents_card():
    world = World()
    await world.hub.handle(CHAT_EVENTS.name, _message_event(author="agent", seq=2))
    await world.settle()
    message = world.sockets["visitor"].sent[0]["message"]
    assert message["author"] == "agent"
    assert message["agent"] == {"name": "Anna", "avatar_url": None}
    assert message["client_id"] == "c-2"


async def test_a_message_on_another_site_never_reaches_this_sites_sockets():
    world = World()
    await world.hub.handle(CHAT_EVENTS.name, _message_event(site_id="other"))
    await world.settle()
    # the other site's visitor with the same id does not show this conversation either
    assert world.received() == {"other_site_agent"}


async def test_a_message_to_a_visitor_without_sockets_still_reaches_the_agents():
    world = World()
    await world.hub.handle(
        CHAT_EVENTS.name, _message_event(visitor_id="v_nobody", conversation=QUEUED_ELSEWHERE)
    )
    await world.settle()
    assert world.received() == {"anna", "ben"}


async def deliver(world: World, signal: ChatSignal) -> None:
    """Through the wire, as Bus.signal writes it and the feed hands it to the hub."""
    await world.hub.handle(CHAT_SIGNALS.name, orjson.loads(signal.model_dump_json()))
    await world.settle()


def typing(who: Literal["visitor", "agent"], *, preview: str) -> TypingSignal:
    """Typing on in the demo site's conversation with v_1."""
    return TypingSignal(
        who=who,
        site_id="demo",
        visitor_id="v_1",
        conversation_id=CONVERSATION,
        on=True,
        preview=preview,
    )


async def test_visitor_typing_reaches_the_sites_agents_with_the_preview():
    world = World()
    await deliver(world, typing("visitor", preview="Do you have this in 4"))
    assert world.received() == {"anna", "ben"}
    assert world.sockets["anna"].sent == [
        {
            "t": "typing",
            "conversation_id": str(CONVERSATION),
            "who": "visitor",
            "on": True,
            "preview": "Do you have this in 4",
        }
    ]


async def test_agent_typing_reaches_only_that_visitor_and_never_with_a_preview():
    world = World()
    await deliver(world, typing("agent", preview="must not leak"))
    assert world.received() == {"visitor", "visitor_tab2"}
    assert world.sockets["visitor"].sent == [{"t": "typing", "on": True}]


async def test_an_invitation_reaches_only_that_visitor_in_the_widgets_shape():
    world = World()
    invitation = ShownInvitation(
        id=UUID("0192f0c3-aaaa-7bbb-8ccc-000000000009"),
        message="Need a hand?",
        agent=AgentCard(name="Anna", avatar_url=None),
        team="sales",
        expires_at=NOW,
        rule_id="size-help",
    )
    await deliver(world, InvitationSignal(site_id="demo", visitor_id="v_2", invitation=invitation))
    assert world.received() == {"other_visitor"}
    assert world.sockets["other_visitor"].sent == [
        {
            "t": "invitation",
            "invitation": {
                "id": "0192f0c3-aaaa-7bbb-8ccc-000000000009",
                "message": "Need a hand?",
                "agent": {"name": "Anna", "avatar_url": None},
                "team": "sales",
                "expires_at": "2026-11-23T12:00:00Z",
                "rule_id": "size-help",
            },
        }
    ]


async def test_an_agents_change_reaches_only_that_agents_consoles():
    world = World()
    world.agent("anna_second_tab", "demo", "demo-anna")
    await deliver(world, AgentsChangedSignal(site_id="demo", agent_ids=["demo-anna", "other-olga"]))
    assert world.received() == {"anna", "anna_second_tab"}
    assert world.sockets["anna"].sent == [
        {"t": "agent", "agent": {"id": "demo-anna", "site_id": "demo", "status": "online"}}
    ]


async def test_an_agents_change_makes_only_that_agents_consoles_check_their_session():
    """A logout on any instance is such a change: those sockets ask at once whether their
    session still stands (the console's watch), the others keep their periodic check."""
    world = World()
    world.agent("anna_second_tab", "demo", "demo-anna")
    await deliver(world, AgentsChangedSignal(site_id="demo", agent_ids=["demo-anna", "other-olga"]))
    asked = {name for name, connection in world.connections.items() if connection.recheck.is_set()}
    assert asked == {"anna", "anna_second_tab"}


async def test_a_push_reaches_every_agent_of_the_site_or_only_those_named():
    world = World()
    frame = {"t": "note", "conversation_id": str(CONVERSATION), "note": {"text": "VIP"}}
    await deliver(world, AgentsPushSignal(site_id="demo", frame=frame))
    assert world.received() == {"anna", "ben"}
    assert world.sockets["ben"].sent == [frame]
    world = World()
    await deliver(world, AgentsPushSignal(site_id="demo", agent_ids=["demo-ben"], frame=frame))
    assert world.received() == {"ben"}


@pytest.mark.parametrize(
    "signal",
    [
        {"kind": "typing", "who": "visitor", "visitor_id": "v_1", "on": True},  # no site
        {"kind": "typing", "who": "visitor", "site_id": 7, "on": True},
        {"kind": "something-new", "site_id": "demo", "visitor_id": "v_1"},
        {"kind": "invitation", "site_id": "demo", "visitor_id": "v_2", "invitation": {"id": 1}},
        {"kind": "push", "site_id": "demo", "frame": "not an object"},
    ],
)
async def test_invalid_signals_are_logged_and_skipped_and_the_feed_goes_on(signal, caplog):
    world = World()
    await world.hub.handle(CHAT_SIGNALS.name, signal)
    await deliver(world, AgentsChangedSignal(site_id="demo", agent_ids=["demo-ben"]))
    assert world.received() == {"ben"}  # the next signal is delivered
    assert world.hub.skipped_signals == 1
    assert "invalid signal skipped" in caplog.text


async def test_facts_without_a_site_or_visitor_reach_nobody():
    world = World()
    for missing in ("site_id", "visitor_id"):
        event = _message_event()
        del event[missing]
        await world.hub.handle(CHAT_EVENTS.name, event)
    await world.settle()
    assert world.received() == set()


async def test_a_conversation_change_reaches_the_visitor_and_the_sites_agents():
    world = World()
    await world.hub.handle(CHAT_EVENTS.name, _change_event())
    await world.settle()
    assert world.received() == {"visitor", "visitor_tab2", "anna", "ben"}
    visitor_frame = world.sockets["visitor"].sent[0]
    assert visitor_frame["t"] == "conversation"
    assert set(visitor_frame["conversation"]) == {
        "id",
        "status",
        "team",
        "agent",
        "queue_position",
        "last_seq",
    }
    agent_frame = world.sockets["anna"].sent[0]
    assert agent_frame["t"] == "conversation"
    assert agent_frame["conversation"]["visitor_id"] == "v_1"
    assert agent_frame["conversation"]["id"] == str(CONVERSATION)
    assert world.lookups[0] == ("demo", CONVERSATION)
    assert world.connections["visitor"].conversation_id == CONVERSATION
    assert world.connections["visitor"].queued is None


async def test_a_transfer_gives_the_new_agents_console_the_row_with_its_last_message():
    """Ben's console heard of the chat only by this frame (it was Anna's until the
    transfer, so no list snapshot of his held it); without the last message his row was empty,
    and whether a later snapshot filled it depended on timing."""
    world = World()
    world.rows[CONVERSATION] = {**_row(), "agent_id": "demo-ben", "agent_name": "Ben"}
    world.last_messages[CONVERSATION] = {
        "message_id": UUID(int=3),
        "conversation_id": CONVERSATION,
        "seq": 3,
        "author": "agent",
        "agent_name": "Anna",
        "agent_avatar_url": None,
        "text": "They run true to size",
        "client_id": "c-3",
        "created_at": NOW,
    }
    event = chat_event(
        "conversation.transferred",
        site_id="demo",
        visitor_id="v_1",
        key=str(CONVERSATION),
        now=NOW,
        payload={
            "conversation_id": CONVERSATION,
            "from_agent_id": "demo-anna",
            "to_agent_id": "demo-ben",
            "to_team": "sales",
            "note": None,
        },
    )
    await world.hub.handle(CHAT_EVENTS.name, orjson.loads(event.value))
    await world.settle()
    [frame] = world.sockets["ben"].sent
    conversation = frame["conversation"]
    assert conversation["agent_id"] == "demo-ben"
    assert conversation["last_message"]["text"] == "They run true to size"
    assert conversation["last_message"]["seq"] == 3
    assert conversation["last_message"]["agent"] == {"name": "Anna", "avatar_url": None}
    assert world.sockets["visitor"].sent[0]["conversation"]["agent"]["name"] == "Ben"


async def test_a_closed_conversation_is_no_longer_the_visitors_live_one():
    world = World()
    world.connections["visitor"].conversation_id = CONVERSATION
    world.rows[CONVERSATION] = _row(status="closed")
    await world.hub.handle(CHAT_EVENTS.name, _change_event("conversation.closed"))
    await world.settle()
    assert world.sockets["visitor"].sent[0]["conversation"]["status"] == "closed"
    assert world.connections["visitor"].conversation_id is None


async def test_a_change_elsewhere_on_the_site_tells_queued_visitors_their_new_place():
    world = World()
    waiting = world.connections["other_visitor"]
    world.hub.track(waiting, {"id": str(QUEUED_ELSEWHERE), "status": "queued"})
    world.rows[QUEUED_ELSEWHERE] = _row(
        QUEUED_ELSEWHERE, visitor_id="v_2", status="queued", position=1
    )
    await world.hub.handle(CHAT_EVENTS.name, _change_event())
    await world.hub.batch_end()
    await world.settle()
    [frame] = world.sockets["other_visitor"].sent
    assert frame["conversation"]["queue_position"] == 1
    assert frame["conversation"]["status"] == "queued"
    assert world.sockets["same_id_other_site"].sent == []


async def test_a_slow_socket_is_closed_with_4408_without_holding_up_the_others():
    world = World()
    world.rows[QUEUED_ELSEWHERE] = _row(QUEUED_ELSEWHERE, visitor_id="v_slow")
    slow = world.visitor("slow", "demo", "v_slow", stalled=True)
    for seq in range(1, hub_module.MAX_PENDING_FRAMES + 3):
        event = _message_event(visitor_id="v_slow", seq=seq, conversation=QUEUED_ELSEWHERE)
        await world.hub.handle(CHAT_EVENTS.name, event)
        await world.settle()  # the feed yields between batches; healthy sockets drain meanwhile
    assert slow.closed
    assert world.sockets["slow"].closed_with is not None
    assert world.sockets["slow"].closed_with[0] == 4408
    assert len(world.sockets["anna"].sent) == hub_module.MAX_PENDING_FRAMES + 2
    assert world.sockets["anna"].closed_with is None


async def test_a_socket_that_keeps_up_is_never_closed():
    world = World()
    for seq in range(1, hub_module.MAX_PENDING_FRAMES + 3):
        await world.hub.handle(CHAT_EVENTS.name, _message_event(seq=seq))
        await world.settle()
    assert world.sockets["visitor"].closed_with is None
    assert len(world.sockets["visitor"].sent) == hub_module.MAX_PENDING_FRAMES + 2


async def test_frames_reach_a_socket_in_order():
    world = World()
    for seq in range(1, 50):
        await world.hub.handle(CHAT_EVENTS.name, _message_event(seq=seq))
    await world.settle()
    assert [frame["message"]["seq"] for frame in world.sockets["visitor"].sent] == list(
        range(1, 50)
    )


async def test_a_socket_that_fails_is_marked_closed_and_skipped():
    world = World()

    async def broken(text):
        raise RuntimeError("gone")

    world.sockets["visitor"].send_text = broken
    await world.hub.handle(CHAT_EVENTS.name, _message_event())
    await world.settle()
    assert world.connections["visitor"].closed
    assert world.sockets["visitor_tab2"].sent  # the visitor's other tab still gets it


async def test_removing_connections_cleans_the_registry():
    world = World()
    assert world.hub.socket_count == 7
    world.hub.remove(world.connections["visitor"])
    assert ("demo", "v_1") in world.hub.visitors
    world.hub.remove(world.connections["visitor_tab2"])
    assert ("demo", "v_1") not in world.hub.visitors
    world.hub.remove(world.connections["other_site_agent"])
    assert "other" not in world.hub.agents
    assert "demo" in world.hub.agents
    assert world.hub.socket_count == 4
    assert world.connections["visitor"].closed

    await world.hub.handle(CHAT_EVENTS.name, _message_event())
    await world.settle()
    assert world.received() == {"anna", "ben"}


async def test_removing_twice_is_harmless():
    world = World()
    world.hub.remove(world.connections["anna"])
    world.hub.remove(world.connections["anna"])
    assert world.hub.socket_count == 6
    assert {c.agent_id for c in world.hub.agents["demo"]} == {"demo-ben"}


async def test_an_email_captured_before_any_conversation_does_not_break_the_feed():
    world = World()
    record = chat_event(
        "conversation.email_captured",
        site_id="demo",
        visitor_id="v_1",
        payload={"conversation_id": None, "email": "v@example.com"},
        key="demo:v_1",
        now=NOW,
    )
    await world.hub.handle(CHAT_EVENTS.name, orjson.loads(record.value))
    await world.settle()
    assert world.lookups == []


async def test_a_held_socket_gets_its_greeting_before_anything_that_arrived_meanwhile():
    socket = FakeSocket("visitor")
    connection = Connection(socket, site_id="demo", visitor_id="v_1", held=True)
    connection.push({"t": "message", "n": 1})  # the feed got there while hello was prepared
    # a socket that is not held, given a frame after it: once that frame is out, a writer
    # started by the push above would have sent its frame too
    other = FakeSocket("other")
    Connection(other, site_id="demo", visitor_id="v_2").push(MARKER)
    await until(lambda: other.markers == 1)
    assert socket.sent == []
    connection.start({"t": "hello"})
    connection.push({"t": "message", "n": 2})
    await until(lambda: len(socket.sent) == 3)
    assert socket.kinds() == ["hello", "message", "message"]
    assert [frame.get("n") for frame in socket.sent] == [None, 1, 2]


async def test_only_waiting_visitors_are_refreshed_when_the_queue_moves():
    world = World()
    world.lookups.clear()
    queued = UUID("01900000-0000-7000-8000-00000000aaaa")
    world.rows[queued] = _row(queued, visitor_id="v_9", status="queued", position=2)
    waiting = world.visitor("waiting", "demo", "v_9")
    chatting = world.visitor("chatting", "demo", "v_1")
    world.hub.track(waiting, {"id": str(queued), "status": "queued"})
    world.hub.track(chatting, {"id": str(CONVERSATION), "status": "open"})
    assert world.hub.waiting["demo"] == {waiting}
    world.rows[queued] = _row(queued, visitor_id="v_9", status="queued", position=1)
    await world.hub.handle(
        "chat.events",
        {
            "type": "conversation.closed",
            "site_id": "demo",
            "visitor_id": "v_2",
            "payload": {"conversation_id": "01900000-0000-7000-8000-00000000bbbb"},
        },
    )
    await world.hub.batch_end()
    await world.settle()
    assert [frame["conversation"]["queue_position"] for frame in world.sockets["waiting"].sent] == [
        1
    ]
    assert world.sockets["chatting"].sent == []
    # the closed conversation itself (for the site's agents), then the one waiting visitor
    assert ("demo", queued) not in world.lookups
    assert world.batch_lookups == [("demo", [queued])]


async def test_a_batch_of_queue_moves_asks_once_and_tells_each_waiting_visitor_once():
    """However often the queue moves in one feed batch, the places are read once per site (in
    one query) when the batch is through, and a visitor hears only a place that changed."""
    world = World()
    waiting = {}
    for n in range(1, 21):
        cid = UUID(f"01900000-0000-7000-8000-{n:012d}")
        world.rows[cid] = _row(cid, visitor_id=f"w_{n}", status="queued", position=n + 1)
        waiting[cid] = world.visitor(f"waiting_{n}", "demo", f"w_{n}")
        world.hub.track(waiting[cid], {"id": str(cid), "status": "queued", "queue_position": n})
    first = UUID("01900000-0000-7000-8000-000000000001")
    world.rows[first] = _row(first, visitor_id="w_1", status="queued", position=1)
    world.hub._queue_moved.clear()
    for n in range(30):  # closes elsewhere on the site: each moves the queue
        await world.hub.handle(
            "chat.events",
            {
                "type": "conversation.closed",
                "site_id": "demo",
                "visitor_id": f"gone_{n}",
                "payload": {"conversation_id": str(UUID(int=n + 1))},
            },
        )
    await world.settle()
    assert all(world.sockets[f"waiting_{n}"].sent == [] for n in range(1, 21))
    world.lookups.clear()

    await world.hub.batch_end()
    await world.settle()
    assert world.lookups == []
    [(site, asked)] = world.batch_lookups
    assert (site, sorted(asked)) == ("demo", sorted(waiting))
    for n in range(1, 21):
        sent = world.sockets[f"waiting_{n}"].sent
        place = 1 if n == 1 else n + 1
        assert [frame["conversation"]["queue_position"] for frame in sent] == [place]

    # nothing moved since: a later batch end asks nothing and tells nobody again
    await world.hub.batch_end()
    world.hub._queue_moved.add("demo")
    await world.hub.batch_end()
    await world.settle()
    assert all(len(world.sockets[f"waiting_{n}"].sent) == 1 for n in range(1, 21))


async def test_another_browser_with_the_same_visitor_id_gets_none_of_its_frames():
    """Someone who learnt the visitor id (a cookie any script on the store reads) and opened a
    socket with a credential of their own sees nothing of the visitor's conversation."""
    world = World()
    world.visitor("impostor", "demo", "v_1", credential=UUID(int=666))
    await world.hub.handle(CHAT_EVENTS.name, _message_event(author="agent", seq=2))
    await world.hub.handle(CHAT_EVENTS.name, _change_event())
    await world.hub.signal(
        TypingSignal(
            who="agent", site_id="demo", visitor_id="v_1", conversation_id=CONVERSATION, on=True
        )
    )
    await world.settle()
    assert "visitor" in world.received()
    assert world.sockets["impostor"].sent == []


async def test_a_verified_users_conversation_reaches_their_other_device():
    world = World()
    world.rows[CONVERSATION]["user_id"] = "u-7"
    world.visitor("phone", "demo", "v_phone", user_id="u-7")
    world.visitor("claimer", "demo", "v_evil")  # not vouched for: no user id on its socket
    await world.hub.handle(CHAT_EVENTS.name, _change_event())
    await world.hub.handle(CHAT_EVENTS.name, _message_event(author="agent", seq=2))
    await world.settle()
    assert world.sockets["phone"].kinds() == ["conversation", "message"]
    assert world.sockets["claimer"].sent == []
