"""The conversations' use cases on a fake unit of work: what each refuses (kind and code), what
it emits and whether it holds the site's assignment lock. No Postgres, no Kafka."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import CHAT_EVENTS
from beckon_edge.identity import user_hash
from chat.conversations import service as conversations
from chat.conversations.store import ConversationStore
from chat.errors import ChatError, Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from chat.refs import AgentRef, Visitor
from fake_conversations import SHOP_ORIGIN, FakeConversations
from fake_uow import FakeUnitsOfWork

BROWSER = UUID(int=1)  # the browser credential the visitors here chat from
SITE = "s1"


class World:
    def __init__(self) -> None:
        self.store = FakeConversations()
        self.store.add_site(SITE, teams=["sales", "support"])
        self.uow = FakeUnitsOfWork({ConversationStore: self.store})

    def agent(self, agent_id: str, **kwargs: Any) -> AgentRef:
        kwargs.setdefault("teams", ["sales"])
        self.store.add_agent(SITE, agent_id, **kwargs)
        return AgentRef(SITE, agent_id)

    async def start(self, visitor_id: str = "v1", **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("invitation_id", None)
        kwargs.setdefault("team", None)
        kwargs.setdefault("text", None)
        kwargs.setdefault("client_id", None)
        conversation, created = await conversations.start_conversation(
            uow=self.uow, visitor=Visitor(SITE, visitor_id, BROWSER), **kwargs
        )
        assert created
        return conversation

    def last(self) -> Any:
        return self.uow.committed[-1]

    def events(self) -> list[dict[str, Any]]:
        """The `chat.events` of the last committed unit."""
        return [
            orjson.loads(record.value)
            for record in self.last().records
            if record.topic == CHAT_EVENTS.name
        ]


async def _refused(kind: type[ChatError], code: str, call: Any) -> ChatError:
    with pytest.raises(kind) as refused:
        await call
    assert refused.value.code == code
    return refused.value


# --- a visitor starts and writes ------------------------------------------------------------


async def test_a_chat_with_nobody_online_waits_in_the_queue_under_the_lock() -> None:
    world = World()
    world.agent("anna", status="away")
    conversation = await world.start()
    assert conversation["status"] == "queued"
    assert conversation["queue_position"] == 1
    assert conversation["opening"] is None
    tx = world.last()
    assert tx.lock is True
    assert tx.kinds() == ["conversation.started"]
    assert tx.teams == {"sales"}  # the site's default team: its presence is republished
    assert tx.agents == set()


async def test_a_chat_goes_to_the_least_busy_online_agent_with_its_first_message() -> None:
    world = World()
    anna, ben = world.agent("anna"), world.agent("ben")
    await world.start("v0")
    conversation = await world.start("v1", text="Hello?", client_id="m1")
    assert conversation["status"] == "open"
    assert conversation["agent"] == {"name": "Ben", "avatar_url": None}
    assert world.last().kinds() == ["conversation.started", "conversation.assigned", "message.sent"]
    assigned = world.events()[1]["payload"]
    assert (assigned["agent_id"], assigned["how"]) == (ben.agent_id, "auto")
    assert world.last().agents == {ben.agent_id}
    assert world.events()[2]["payload"]["seq"] == 1
    assert world.store.assignments[0]["agent_id"] == anna.agent_id


async def test_starting_again_gives_the_live_conversation_and_publishes_nothing() -> None:
    world = World()
    first = await world.start()
    again, created = await conversations.start_conversation(
        uow=world.uow,
        visitor=Visitor(SITE, "v1", BROWSER),
        invitation_id=None,
        team="support",
        text=None,
        client_id=None,
    )
    assert created is False
    assert again["id"] == first["id"]
    assert world.last().records == []


async def test_a_start_names_a_known_team_and_an_invitation_of_this_visitor() -> None:
    world = World()
    await _refused(Invalid, "unknown_team", world.start(team="billing"))
    other = uuid7()
    world.store.add_invitation(SITE, "someone-else", other, team="sales")
    await _refused(NotFound, "unknown_invitation", world.start(invitation_id=other))
    assert world.uow.committed == []
    assert len(world.uow.rolled_back) == 2


async def test_a_personal_invitations_chat_goes_to_the_inviter_with_its_words_first() -> None:
    world = World()
    world.agent("anna")
    ben = world.agent("ben", teams=["support"])
    await world.start("v0")  # anna now has one chat more than ben
    invitation = uuid7()
    card = {"agent_id": ben.agent_id, "name": "Ben", "avatar_url": None}
    world.store.add_invitation(SITE, "v1", invitation, team="sales", agent=card)
    conversation = await world.start("v1", invitation_id=invitation)
    assert conversation["agent"] == {"name": "Ben", "avatar_url": None}
    assert conversation["opening"] == {
        "text": "Can I help?",
        "agent": {"name": "Ben", "avatar_url": None},
    }
    assert world.events()[1]["payload"]["how"] == "personal"
    assert world.last().trace == {"continued": "conversation.started"}


async def test_a_visitor_message_needs_a_live_conversation_and_a_client_id_counts_once() -> None:
    world = World()
    visitor = Visitor(SITE, "v1", BROWSER)
    await _refused(
        Conflict,
        "no_conversation",
        conversations.visitor_message(uow=world.uow, visitor=visitor, text="Hi", client_id=None),
    )
    await world.start()
    first = await conversations.visitor_message(
        uow=world.uow, visitor=visitor, text="Hi", client_id="m1"
    )
    assert world.last().kinds() == ["message.sent"]
    again = await conversations.visitor_message(
        uow=world.uow, visitor=visitor, text="Hi", client_id="m1"
    )
    assert again == first
    assert world.last().records == []
    listed = await conversations.visitor_messages(uow=world.uow, visitor=visitor, after=0)
    assert [m["text"] for m in listed] == ["Hi"]


async def test_hello_offers_invitations_only_without_a_live_conversation() -> None:
    world = World()
    visitor = Visitor(SITE, "v1", BROWSER)
    world.store.add_invitation(SITE, "v1", uuid7(), team="sales")
    hello = await conversations.visitor_hello(uow=world.uow, visitor=visitor)
    assert (hello["conversation"], len(hello["invitations"])) == (None, 1)
    await world.start()
    hello = await conversations.visitor_hello(uow=world.uow, visitor=visitor)
    assert hello["conversation"]["status"] == "queued"
    assert hello["invitations"] == []


async def test_the_first_answer_to_an_invitation_stands() -> None:
    world = World()
    visitor = Visitor(SITE, "v1", BROWSER)
    invitation = uuid7()
    world.store.add_invitation(SITE, "v1", invitation, team="sales")
    await conversations.invitation_outcome(
        uow=world.uow, visitor=visitor, invitation_id=invitation, outcome="accepted"
    )
    assert world.last().kinds() == ["invitation.accepted"]
    assert world.last().trace == {"continued": "invitation.accepted"}
    await conversations.invitation_outcome(
        uow=world.uow, visitor=visitor, invitation_id=invitation, outcome="declined"
    )
    assert world.last().records == []
    assert world.store.invitations[invitation]["status"] == "accepted"
    await _refused(
        NotFound,
        "unknown_invitation",
        conversations.invitation_outcome(
            uow=world.uow,
            visitor=Visitor(SITE, "v2", BROWSER),
            invitation_id=invitation,
            outcome="shown",
        ),
    )


async def test_an_invitation_from_triggers_is_kept_once_and_only_for_a_known_site() -> None:
    world = World()
    values = {
        "invitation_id": uuid7(),
        "site_id": SITE,
        "visitor_id": "v1",
        "rule_id": "size-help",
        "team": "sales",
        "message": "Need a size?",
        "agent": None,
        "personal": False,
        "expires_at": None,
    }
    assert await conversations.record_invitation(uow=world.uow, values=values) is True
    assert await conversations.record_invitation(uow=world.uow, values=values) is False
    elsewhere = {**values, "invitation_id": uuid7(), "site_id": "gone"}
    assert await conversations.record_invitation(uow=world.uow, values=elsewhere) is False


async def test_an_email_is_kept_on_the_conversation_or_keyed_by_the_visitor() -> None:
    world = World()
    visitor = Visitor(SITE, "v1", BROWSER)
    await conversations.capture_email(uow=world.uow, visitor=visitor, email="a@example.com")
    assert world.last().records[0].key == b"s1:v1"
    conversation = await world.start()
    await conversations.capture_email(uow=world.uow, visitor=visitor, email="b@example.com")
    assert world.last().records[0].key == conversation["id"].encode()
    assert world.store.rows[UUID(conversation["id"])]["email"] == "b@example.com"


async def test_an_offline_message_is_never_live() -> None:
    world = World()
    visitor = Visitor(SITE, "v1", BROWSER)
    left = await conversations.leave_offline_message(
        uow=world.uow, visitor=visitor, email="a@example.com", text="Call me", name=None, team=None
    )
    assert left["status"] == "offline"
    assert world.last().kinds() == ["message.sent", "offline.message_left"]
    assert world.last().lock is False
    assert (await world.start())["status"] == "queued"  # a live chat can still begin


async def test_a_session_needs_a_known_site_key_and_says_whether_anyone_is_online() -> None:
    world = World()
    await _refused(
        NotAuthenticated,
        "unknown_site_key",
        conversations.visitor_session(
            uow=world.uow, site_key="nope", visitor_id="v1", origin=SHOP_ORIGIN, credential=None
        ),
    )
    world.agent("anna", teams=["support"])
    session = await _session(world)
    assert session["agents_available"] is False  # nobody of the default team (sales)
    world.agent("ben")
    session = await _session(world, credential=session["credential"])
    assert (session["agents_available"], session["conversation"]) == (True, None)


async def _session(world: World, **kwargs: Any) -> dict[str, Any]:
    options = {"visitor_id": "v1", "origin": SHOP_ORIGIN, "credential": None, **kwargs}
    return await conversations.visitor_session(uow=world.uow, site_key="key-s1", **options)


async def test_a_session_is_refused_without_origin_or_from_another_origin() -> None:
    world = World()
    for origin, code in ((None, "origin_required"), ("https://evil.test", "origin_not_allowed")):
        await _refused(Forbidden, code, _session(world, origin=origin))


async def test_only_the_browser_holding_the_credential_reaches_its_conversation() -> None:
    world = World()
    world.agent("anna")
    mine = await _session(world)
    credential = mine["credential"]
    assert len(credential) >= 43  # 256 random bits
    await conversations.start_conversation(
        uow=world.uow,
        visitor=mine["visitor"],
        invitation_id=None,
        team=None,
        text="hi",
        client_id="c-1",
    )
    again = await _session(world, credential=credential)
    assert again["credential"] is None  # the one presented stands
    assert again["conversation"] is not None
    # the visitor id alone, or with a credential of its own: a new, empty browser
    for presented in (None, "guessed-" + credential[8:]):
        stranger = await _session(world, credential=presented)
        assert stranger["conversation"] is None
        assert stranger["credential"] not in (None, credential)
        assert (
            await conversations.visitor_messages(
                uow=world.uow, visitor=stranger["visitor"], after=0
            )
            == []
        )
        await _refused(
            Conflict,
            "no_conversation",
            conversations.visitor_message(
                uow=world.uow, visitor=stranger["visitor"], text="it's me", client_id=None
            ),
        )
    # a credential is bound to its visitor id
    other = await _session(world, visitor_id="v2", credential=credential)
    assert other["conversation"] is None
    assert other["credential"] is not None


async def test_a_verified_user_reaches_their_conversation_from_another_device() -> None:
    world = World()
    world.agent("anna")
    secret = "s" * 64
    world.store.sites["s1"]["identity_secrets"] = [{"secret_id": "abcdefgh", "secret": secret}]
    laptop = await _session(world, user_id="u-7", user_hash=user_hash("u-7", secret))
    assert laptop["identity"] == "verified"
    started, _ = await conversations.start_conversation(
        uow=world.uow,
        visitor=laptop["visitor"],
        invitation_id=None,
        team=None,
        text="hi",
        client_id="c-1",
    )
    phone = await _session(
        world, visitor_id="v-phone", user_id="u-7", user_hash=user_hash("u-7", secret)
    )
    assert phone["conversation"]["id"] == started["id"]
    assert phone["visitor"].credential_id != laptop["visitor"].credential_id
    # claiming the id without the store's hash reaches nothing
    claim = await _session(world, visitor_id="v-evil", user_id="u-7", user_hash="0" * 64)
    assert claim["identity"] == "unverified"
    assert claim["conversation"] is None
    assert claim["visitor"].user_id is None


# --- an agent picks up, replies, transfers, tags and closes ---------------------------------


async def test_pickup_refusals_and_a_pickup_under_the_lock() -> None:
    world = World()
    anna = world.agent("anna", status="away", max_chats=1)
    ben = world.agent("ben", status="away", teams=["support"])
    first = UUID((await world.start("v1"))["id"])
    second = UUID((await world.start("v2"))["id"])
    await _refused(
        NotFound,
        "unknown_conversation",
        conversations.pickup(uow=world.uow, agent=anna, conversation_id=uuid7()),
    )
    await _refused(
        Conflict,
        "not_in_team",
        conversations.pickup(uow=world.uow, agent=ben, conversation_id=first),
    )
    picked = await conversations.pickup(uow=world.uow, agent=anna, conversation_id=first)
    assert (picked["status"], picked["agent_id"]) == ("open", anna.agent_id)
    assert world.last().lock is True
    assert world.events()[0]["payload"]["how"] == "pickup"
    assert world.last().agents == {anna.agent_id}
    await _refused(
        Conflict,
        "not_queued",
        conversations.pickup(uow=world.uow, agent=anna, conversation_id=first),
    )
    await _refused(
        Conflict,
        "at_limit",
        conversations.pickup(uow=world.uow, agent=anna, conversation_id=second),
    )
    gone = AgentRef(SITE, "deleted")
    await _refused(
        NotAuthenticated,
        "unknown_agent",
        conversations.pickup(uow=world.uow, agent=gone, conversation_id=second),
    )


async def test_only_the_holder_replies() -> None:
    world = World()
    anna, ben = world.agent("anna"), world.agent("ben", status="away")
    conversation = UUID((await world.start())["id"])
    await _refused(
        Conflict,
        "not_your_conversation",
        conversations.agent_message(
            uow=world.uow, agent=ben, conversation_id=conversation, text="Hi", client_id=None
        ),
    )
    message = await conversations.agent_message(
        uow=world.uow, agent=anna, conversation_id=conversation, text="Hi", client_id=None
    )
    assert message["agent"] == {"name": "Anna", "avatar_url": None}
    assert world.events()[0]["payload"]["agent_name"] == "Anna"
    assert world.last().lock is False


async def _transfer(world: World, agent: AgentRef, conversation: UUID, **kwargs: Any) -> Any:
    kwargs.setdefault("to_agent", None)
    kwargs.setdefault("to_team", None)
    kwargs.setdefault("note", None)
    return await conversations.transfer(
        uow=world.uow, agent=agent, conversation_id=conversation, **kwargs
    )


async def test_transfer_refusals() -> None:
    world = World()
    anna = world.agent("anna")
    ben = world.agent("ben", status="away")
    boss = world.agent("boss", status="away", role="admin", teams=[])
    conversation = UUID((await world.start())["id"])  # anna's
    await _refused(
        Forbidden, "transfer_not_allowed", _transfer(world, ben, conversation, to_team="support")
    )
    await _refused(
        Conflict, "agent_unavailable", _transfer(world, anna, conversation, to_agent="ben")
    )
    await _refused(NotFound, "unknown_agent", _transfer(world, anna, conversation, to_agent="zed"))
    await _refused(
        NotFound, "unknown_team", _transfer(world, anna, conversation, to_team="billing")
    )
    await _refused(Invalid, "missing_target", _transfer(world, anna, conversation))
    world.store.agents["ben"]["status"] = "online"
    world.store.agents["ben"]["max_chats"] = 0
    await _refused(Conflict, "at_limit", _transfer(world, anna, conversation, to_agent="ben"))
    assert world.uow.committed[-1].kinds()[0] == "conversation.started"  # nothing since
    moved, _ = await _transfer(world, boss, conversation, to_team="support")  # an admin may
    assert (moved["status"], moved["team"]) == ("queued", "support")


async def test_a_transfer_to_an_agent_of_another_team_moves_the_chat_into_their_team() -> None:
    world = World()
    anna = world.agent("anna")
    world.agent("ben", teams=["support"])
    conversation = UUID((await world.start())["id"])
    moved, transfer = await _transfer(world, anna, conversation, to_agent="ben", note="VIP")
    assert (moved["agent_id"], moved["team"]) == ("ben", "support")
    assert transfer["note"] == "VIP"
    assert transfer["from"] == {"name": "Anna", "avatar_url": None}
    tx = world.last()
    assert tx.lock is True
    assert tx.kinds() == ["conversation.assigned", "conversation.transferred"]
    published = world.events()[1]["payload"]
    assert (published["to_agent_id"], published["to_team"], published["note"]) == (
        "ben",
        "support",
        None,  # the note is for agents only
    )
    assert tx.agents == {"anna", "ben"}


async def test_the_slot_a_transfer_frees_takes_the_next_queued_chat() -> None:
    world = World()
    anna = world.agent("anna", max_chats=1)
    first = UUID((await world.start("v1"))["id"])
    waiting = UUID((await world.start("v2"))["id"])
    assert world.store.rows[waiting]["status"] == "queued"
    await _transfer(world, anna, first, to_team="support")
    assert world.last().kinds() == ["conversation.transferred", "conversation.assigned"]
    assert world.store.rows[waiting]["agent_id"] == "anna"
    assert world.events()[1]["payload"]["how"] == "dequeue"


async def test_close_by_its_agent_frees_the_slot_for_the_queue() -> None:
    world = World()
    anna = world.agent("anna", max_chats=1)
    ben = world.agent("ben", status="away")
    first = UUID((await world.start("v1"))["id"])
    waiting = UUID((await world.start("v2"))["id"])
    await _refused(
        Conflict,
        "not_your_conversation",
        conversations.close(uow=world.uow, agent=ben, conversation_id=first),
    )
    closed = await conversations.close(uow=world.uow, agent=anna, conversation_id=first)
    assert closed["status"] == "closed"
    tx = world.last()
    assert tx.lock is True
    assert tx.kinds() == ["conversation.closed", "conversation.assigned"]
    assert world.events()[0]["payload"]["closed_by"] == "agent"
    assert world.store.rows[waiting]["agent_id"] == "anna"
    await _refused(
        Conflict,
        "conversation_closed",
        conversations.close(uow=world.uow, agent=anna, conversation_id=first),
    )


async def test_tags_are_set_published_and_join_the_sites_list() -> None:
    world = World()
    anna = world.agent("anna")
    conversation = UUID((await world.start())["id"])
    tagged = await conversations.tag(
        uow=world.uow, agent=anna, conversation_id=conversation, tags=["sizes", "vip"]
    )
    assert tagged["tags"] == ["sizes", "vip"]
    assert world.last().kinds() == ["conversation.tagged"]
    assert world.store.site_tags[SITE] == {"sizes", "vip"}


async def test_an_agent_reads_lists_and_timelines_of_their_site_only() -> None:
    world = World()
    anna = world.agent("anna")
    conversation = UUID((await world.start(text="Hi"))["id"])
    mine = await conversations.agent_conversations(uow=world.uow, agent=anna, scope="mine")
    assert [c["last_message"]["text"] for c in mine] == ["Hi"]
    assert await conversations.agent_conversations(uow=world.uow, agent=anna, scope="queue") == []
    timeline = await conversations.agent_conversation(
        uow=world.uow, agent=anna, conversation_id=conversation
    )
    assert [m["text"] for m in timeline["messages"]] == ["Hi"]
    stranger = AgentRef("s2", "anna")
    await _refused(
        NotFound,
        "unknown_conversation",
        conversations.agent_conversation(
            uow=world.uow, agent=stranger, conversation_id=conversation
        ),
    )
    assert (
        await conversations.conversation_row(
            uow=world.uow, site_id="s2", conversation_id=conversation
        )
        is None
    )
    last = await conversations.last_message(
        uow=world.uow, site_id=SITE, conversation_id=conversation
    )
    assert last["seq"] == 1
