"""Replies by e-mail without a broker or Postgres: a `chat.inbound` command as the message to
store, the use case on a fake unit of work (once per command, a closed conversation back in
its team's queue), and the handler's dead letters with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiokafka import ConsumerRecord
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.inbound import AddEmailReply
from beckon_contracts.topics import CHAT_EVENTS, CHAT_INBOUND, CHAT_INBOUND_DLQ
from chat.conversations import service as conversations
from chat.conversations.model import Conversation
from chat.conversations.store import ConversationStore
from chat.errors import Forbidden, Invalid, NotFound
from chat.inbound.consumer import InboundHandler, handle_until_done
from chat.inbound.domain import EmailReply, letter_of, reply_of
from chat.refs import AgentRef, Visitor
from fake_conversations import FakeConversations
from fake_uow import FakeUnitsOfWork

BROWSER = UUID(int=1)  # the browser credential the visitors here chat from
SITE = "s1"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def command(
    conversation_id: UUID, *, site_id: str = SITE, text: str = "Yes, size 44 please", **payload: Any
) -> AddEmailReply:
    return AddEmailReply.model_validate(
        {
            "event_id": uuid7(),
            "occurred_at": NOW,
            "site_id": site_id,
            "payload": {
                "conversation_id": conversation_id,
                "text": text,
                "from_email": "visitor@example.com",
                "received_at": NOW,
                **payload,
            },
        }
    )


# --- the command as a message (pure) -----------------------------------------------------------


def test_a_command_becomes_the_message_with_its_attachment_notes() -> None:
    conversation_id = uuid7()
    sent = command(
        conversation_id,
        text="  Thanks!\x00 See the photo.\n",
        attachments=[
            {"filename": "tent\x07.jpg", "content_type": "image/jpeg", "size": 1234},
            {"content_type": "text/calendar", "size": 0},
        ],
    )
    reply = reply_of(sent, max_chars=4000)
    assert reply == EmailReply(
        site_id=SITE,
        command_id=sent.event_id,
        conversation_id=conversation_id,
        text="Thanks! See the photo.",
        attachments=[
            {"filename": "tent.jpg", "content_type": "image/jpeg", "size": 1234},
            {"filename": None, "content_type": "text/calendar", "size": 0},
        ],
    )


def test_a_reply_longer_than_the_services_limit_is_cut_not_refused() -> None:
    reply = reply_of(command(uuid7(), text="word " * 100), max_chars=20)
    assert len(reply.text) == 20
    assert reply.text.endswith("…")


def test_a_reply_with_nothing_but_control_characters_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        reply_of(command(uuid7(), text="\x00\x01 "), max_chars=4000)
    assert refused.value.code == "empty_text"


@pytest.mark.parametrize(
    ("refusal", "reason", "loc"),
    [
        (NotFound("unknown_conversation", "none"), "processing_failed", "payload.conversation_id"),
        (Forbidden("wrong_site", "not this site's"), "processing_failed", "site_id"),
        (Invalid("empty_text", "no text"), "schema_invalid", "payload.text"),
    ],
)
def test_a_refusal_reads_as_its_dead_letter_with_chats_code(refusal, reason, loc) -> None:
    got_reason, detail, errors = letter_of(refusal)
    assert got_reason == reason
    assert detail == f"{refusal.code}: {refusal.detail}"
    assert errors == [{"loc": loc, "msg": refusal.detail, "type": refusal.code}]


@pytest.mark.parametrize(
    ("status", "elsewhere", "effect"),
    [
        ("queued", False, "add"),
        ("open", False, "add"),
        ("offline", False, "add"),
        ("closed", False, "reopen"),
        ("closed", True, "keep_closed"),
    ],
)
def test_what_a_reply_does_to_its_conversation(status, elsewhere, effect) -> None:
    assert (
        Conversation(status=status).on_email_reply(visitor_chatting_elsewhere=elsewhere) == effect
    )


# --- the use case ------------------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.store = FakeConversations()
        self.store.add_site(SITE, teams=["sales"])
        self.store.add_site("s2", teams=["sales"])
        self.uow = FakeUnitsOfWork({ConversationStore: self.store})

    def agent(self, agent_id: str, **kwargs: Any) -> AgentRef:
        self.store.add_agent(SITE, agent_id, teams=["sales"], **kwargs)
        return AgentRef(SITE, agent_id)

    async def chat(self, visitor_id: str = "v1") -> UUID:
        started, _ = await conversations.start_conversation(
            uow=self.uow,
            visitor=Visitor(SITE, visitor_id, BROWSER),
            invitation_id=None,
            team=None,
            text="Do these run small?",
            client_id=None,
        )
        return UUID(started["id"])

    async def reply(self, sent: AddEmailReply) -> str:
        reply = reply_of(sent, max_chars=4000)
        return await conversations.add_email_reply(
            uow=self.uow,
            site_id=reply.site_id,
            command_id=reply.command_id,
            conversation_id=reply.conversation_id,
            text=reply.text,
            attachments=reply.attachments,
        )

    def events(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(record.value)
            for record in self.uow.committed[-1].records
            if record.topic == CHAT_EVENTS.name
        ]


async def test_a_reply_is_the_visitors_email_message_and_a_second_delivery_adds_nothing() -> None:
    world = World()
    world.agent("anna")
    conversation_id = await world.chat()
    sent = command(
        conversation_id, attachments=[{"filename": "a.pdf", "content_type": "x/y", "size": 9}]
    )
    assert await world.reply(sent) == "added"
    tx = world.uow.committed[-1]
    assert tx.lock is True
    [event] = world.events()
    assert event["type"] == "message.sent"
    assert event["visitor_id"] == "v1"
    assert event["payload"]["author"] == "visitor"
    assert event["payload"]["channel"] == "email"
    assert event["payload"]["seq"] == 2
    assert event["payload"]["text"] == "Yes, size 44 please"
    stored = world.store.messages_of[conversation_id][-1]
    assert (stored["channel"], stored["command_id"]) == ("email", sent.event_id)
    assert stored["attachments"] == [{"filename": "a.pdf", "content_type": "x/y", "size": 9}]

    assert await world.reply(sent) == "duplicate"
    assert world.uow.committed[-1].records == []
    assert len(world.store.messages_of[conversation_id]) == 2


async def test_a_reply_to_a_closed_conversation_puts_it_back_to_its_teams_agent() -> None:
    world = World()
    anna = world.agent("anna")
    conversation_id = await world.chat()
    await conversations.close(uow=world.uow, agent=anna, conversation_id=conversation_id)
    assert await world.reply(command(conversation_id)) == "reopened"
    kinds = [event["type"] for event in world.events()]
    assert kinds == ["conversation.transferred", "conversation.assigned", "message.sent"]
    moved = world.events()[0]["payload"]
    assert (moved["from_agent_id"], moved["to_agent_id"], moved["to_team"]) == (
        "anna",
        None,
        "sales",
    )
    row = world.store.rows[conversation_id]
    assert (row["status"], row["agent_id"], row["closed_at"]) == ("open", "anna", None)
    assert world.uow.committed[-1].teams == {"sales"}  # capacity changed: presence again


async def test_with_nobody_online_a_reopened_conversation_waits_in_the_queue() -> None:
    world = World()
    anna = world.agent("anna")
    conversation_id = await world.chat()
    await conversations.close(uow=world.uow, agent=anna, conversation_id=conversation_id)
    world.store.agents["anna"]["status"] = "away"
    assert await world.reply(command(conversation_id)) == "reopened"
    assert [e["type"] for e in world.events()] == ["conversation.transferred", "message.sent"]
    assert world.store.rows[conversation_id]["status"] == "queued"


async def test_while_the_visitor_chats_elsewhere_the_closed_one_keeps_the_reply() -> None:
    world = World()
    anna = world.agent("anna")
    old = await world.chat()
    await conversations.close(uow=world.uow, agent=anna, conversation_id=old)
    live = await world.chat()
    assert await world.reply(command(old)) == "kept_closed"
    assert [e["type"] for e in world.events()] == ["message.sent"]
    assert world.store.rows[old]["status"] == "closed"
    assert world.store.rows[live]["status"] == "open"
    assert world.store.messages_of[old][-1]["channel"] == "email"


async def test_an_unknown_or_another_sites_conversation_is_refused_and_nothing_written() -> None:
    world = World()
    world.agent("anna")
    conversation_id = await world.chat()
    with pytest.raises(NotFound) as unknown:
        await world.reply(command(uuid7()))
    assert unknown.value.code == "unknown_conversation"
    with pytest.raises(Forbidden) as wrong:
        await world.reply(command(conversation_id, site_id="s2"))
    assert wrong.value.code == "wrong_site"
    assert len(world.uow.rolled_back) == 2
    assert len(world.store.messages_of[conversation_id]) == 1


async def test_a_command_for_a_site_this_deployment_does_not_know_is_skipped() -> None:
    """Another deployment's (staging beside production on one cluster, each its own group)."""
    world = World()
    assert await world.reply(command(uuid7(), site_id="elsewhere")) == "skipped"
    assert world.uow.committed[-1].records == []


# --- the handler: what goes to chat.inbound.dlq ------------------------------------------------


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> None:
        self.sent.append((topic, key, value))


def record(value: bytes, offset: int = 7) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=CHAT_INBOUND.name,
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(value),
        headers=(),
    )


async def handled(value: bytes, apply: Any = None) -> tuple[str, list[DeadLettered]]:
    producer = FakeProducer()

    async def refuse(reply: EmailReply) -> str:
        raise NotFound("unknown_conversation", f"no conversation {reply.conversation_id}")

    handler = InboundHandler(apply or refuse, producer, max_chars=4000)  # type: ignore[arg-type]
    outcome = await handler.handle(record(value))
    letters = []
    for topic, key, sent in producer.sent:
        assert topic == CHAT_INBOUND_DLQ.name
        letter = DeadLettered.model_validate_json(sent)
        assert key == letter.site_id.encode()
        letters.append(letter)
    return outcome, letters


async def test_junk_is_dead_lettered_as_malformed_json() -> None:
    outcome, [letter] = await handled(b"not json {")
    assert outcome == "dead_lettered"
    assert letter.payload.reason == "malformed_json"
    assert (letter.payload.topic, letter.payload.partition, letter.payload.offset) == (
        CHAT_INBOUND.name,
        2,
        7,
    )
    assert letter.payload.raw == "not json {"


async def test_a_command_off_the_contract_names_the_field() -> None:
    value = orjson.loads(command(uuid7()).model_dump_json())
    del value["payload"]["conversation_id"]
    outcome, [letter] = await handled(orjson.dumps(value))
    assert outcome == "dead_lettered"
    assert letter.payload.reason == "schema_invalid"
    [missing] = letter.payload.errors
    assert missing.loc.endswith("payload.conversation_id")
    assert missing.type == "missing"
    assert letter.site_id == SITE


async def test_a_refused_command_carries_chats_code() -> None:
    sent = command(uuid7())
    outcome, [letter] = await handled(sent.model_dump_json().encode())
    assert outcome == "dead_lettered"
    assert letter.payload.reason == "processing_failed"
    assert letter.payload.detail.startswith("unknown_conversation: ")
    assert [(e.loc, e.type) for e in letter.payload.errors] == [
        ("payload.conversation_id", "unknown_conversation")
    ]


async def test_an_applied_command_is_no_dead_letter() -> None:
    async def apply(reply: EmailReply) -> str:
        return "added"

    assert await handled(command(uuid7()).model_dump_json().encode(), apply) == ("added", [])


async def test_an_outage_is_waited_out_and_the_same_record_applied() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    async def flaky(reply: EmailReply) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("postgres is away")
        return "added"

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    producer = FakeProducer()
    handler = InboundHandler(flaky, producer, max_chars=4000)  # type: ignore[arg-type]
    value = command(uuid7()).model_dump_json().encode()
    assert await handle_until_done(handler, record(value), sleep=sleep) == "added"
    assert len(calls) == 3
    assert len(pauses) == 2
    assert pauses[0] < pauses[1]  # a growing pause
    assert producer.sent == []


async def test_a_record_that_keeps_failing_is_dead_lettered_after_the_attempts() -> None:
    async def broken(reply: EmailReply) -> str:
        raise RuntimeError("a bug")

    async def sleep(seconds: float) -> None:
        return None

    producer = FakeProducer()
    handler = InboundHandler(broken, producer, max_chars=4000)  # type: ignore[arg-type]
    value = command(uuid7()).model_dump_json().encode()
    assert await handle_until_done(handler, record(value), sleep=sleep, max_attempts=3) == (
        "dead_lettered"
    )
    [(_, _, sent)] = producer.sent
    letter = DeadLettered.model_validate_json(sent)
    assert letter.payload.reason == "processing_failed"
    assert letter.payload.detail == "RuntimeError: a bug"
