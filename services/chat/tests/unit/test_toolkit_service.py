"""The toolkit's use cases on a fake unit of work: who may manage which canned set, the
refusals (kind, code), what goes out (a lead mark on chat.events, a note only to consoles)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest
from beckon_contracts.ids import uuid7
from chat.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from chat.refs import AgentRef
from chat.text import InvalidInput
from chat.toolkit import domain, service
from chat.toolkit.store import CANNED_REPLIES, OBJECTION_TAGS, ToolkitStore
from fake_uow import FakeUnitsOfWork

SITE = "s1"
ANN = AgentRef(SITE, "ann")  # an admin in sales
BOB = AgentRef(SITE, "bob")  # an agent in sales
CONVERSATION = UUID("0190a0a0-0000-7000-8000-000000000001")
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeToolkit:
    """ToolkitStore's methods on dicts (a shortcut is unique within its set, as in SQL)."""

    def __init__(self) -> None:
        self.agents = {
            "ann": {"agent_id": "ann", "name": "Ann Admin", "role": "admin", "teams": ["sales"]},
            "bob": {"agent_id": "bob", "name": "Bob", "role": "agent", "teams": ["sales"]},
        }
        self.teams = {"sales", "support"}
        self.sites = {SITE: {"site_id": SITE, "name": "Shop", "settings": {}}}
        self.defaults: set[tuple[str, str]] = set()
        self.replies: dict[UUID, dict[str, Any]] = {}
        self.conversations = {
            CONVERSATION: {
                "conversation_id": CONVERSATION,
                "visitor_id": "v1",
                "team": "sales",
                "email": None,
                "visitor_name": "Maija",
                "visitor_email": "maija@example.com",
            }
        }
        self.activity: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.marks: dict[UUID, dict[str, Any]] = {}
        self.locked: list[str] = []

    async def agent(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        return self.agents.get(agent_id) if site_id == SITE else None

    async def has_defaults(self, site_id: str, what: str) -> bool:
        return (site_id, what) in self.defaults

    async def create_defaults(self, site_id: str, what: str) -> None:
        if (site_id, what) in self.defaults:
            return
        self.defaults.add((site_id, what))
        if what == CANNED_REPLIES:
            for shortcut, text in domain.DEFAULT_CANNED:
                await self.insert_canned(
                    site_id=site_id, team=None, agent_id=None, shortcut=shortcut, text=text
                )

    async def canned_visible(self, site_id: str, agent_id: str, teams: list[str]) -> list[Any]:
        return [
            row
            for row in self.replies.values()
            if row["agent_id"] == agent_id
            or (row["agent_id"] is None and row["team"] in teams)
            or (row["agent_id"] is None and row["team"] is None)
        ]

    async def canned_all_shared(self, site_id: str) -> list[Any]:
        return [row for row in self.replies.values() if row["agent_id"] is None]

    async def canned(self, site_id: str, reply_id: UUID) -> dict[str, Any] | None:
        return self.replies.get(reply_id)

    async def team_exists(self, site_id: str, team: str) -> bool:
        return team in self.teams

    def _taken(self, row: dict[str, Any], shortcut: str) -> bool:
        return any(
            (other["team"], other["agent_id"], other["shortcut"])
            == (row["team"], row["agent_id"], shortcut)
            and other["reply_id"] != row["reply_id"]
            for other in self.replies.values()
        )

    async def insert_canned(
        self, *, site_id: str, team: str | None, agent_id: str | None, shortcut: str, text: str
    ) -> dict[str, Any] | None:
        row = {
            "reply_id": uuid7(),
            "site_id": site_id,
            "team": team,
            "agent_id": agent_id,
            "shortcut": shortcut,
            "text": text,
        }
        if self._taken(row, shortcut):
            return None
        self.replies[row["reply_id"]] = row
        return row

    async def update_canned(
        self, site_id: str, reply_id: UUID, shortcut: str, text: str
    ) -> dict[str, Any] | None:
        row = self.replies[reply_id]
        if self._taken(row, shortcut):
            return None
        row.update(shortcut=shortcut, text=text)
        return row

    async def delete_canned(self, site_id: str, reply_id: UUID) -> bool:
        return self.replies.pop(reply_id, None) is not None

    async def conversation(
        self, site_id: str, conversation_id: UUID, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        if for_update:
            self.locked.append("conversation")
        return self.conversations.get(conversation_id) if site_id == SITE else None

    async def site(self, site_id: str) -> dict[str, Any] | None:
        return self.sites.get(site_id)

    async def recent_activity(self, site_id: str, visitor_id: str) -> list[dict[str, Any]]:
        return self.activity

    async def insert_note(
        self, *, conversation_id: UUID, agent_id: str, text: str, now: datetime
    ) -> dict[str, Any]:
        note = {
            "note_id": uuid7(),
            "conversation_id": conversation_id,
            "agent_id": agent_id,
            "text": text,
            "created_at": now,
            "agent_name": self.agents[agent_id]["name"],
            "agent_avatar_url": None,
        }
        self.notes.append(note)
        return note

    async def lead_mark(
        self, site_id: str, conversation_id: UUID, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        if for_update:
            self.locked.append("lead_mark")
        mark = self.marks.get(conversation_id)
        return dict(mark) if mark is not None else None

    async def save_lead_mark(self, **values: Any) -> dict[str, Any]:
        mark = {**values, "created_at": AT, "updated_at": AT}
        self.marks[values["conversation_id"]] = mark
        return dict(mark)


@pytest.fixture
def toolkit() -> FakeToolkit:
    return FakeToolkit()


@pytest.fixture
def uow(toolkit: FakeToolkit) -> FakeUnitsOfWork:
    return FakeUnitsOfWork({ToolkitStore: toolkit})


def _payloads(uow: FakeUnitsOfWork) -> list[dict[str, Any]]:
    return [orjson.loads(record.value)["payload"] for record in uow.records]


# --- canned replies ----------------------------------------------------------------------------


async def test_the_site_defaults_are_created_once_then_only_read(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    first = await service.list_canned(uow=uow, agent=BOB, query=None, manage=False)
    assert {r["shortcut"] for r in first["replies"]} == {s for s, _ in domain.DEFAULT_CANNED}
    assert all(r["scope"] == "site" and not r["editable"] for r in first["replies"])
    assert not first["can_manage_shared"]
    assert len(uow.committed) == 1  # the defaults, in a unit of their own
    hello = next(r for r in first["replies"] if r["shortcut"] == "hello")
    await service.delete_canned(uow=uow, agent=ANN, reply_id=UUID(hello["id"]))
    again = await service.list_canned(uow=uow, agent=BOB, query=None, manage=False)
    assert "hello" not in {r["shortcut"] for r in again["replies"]}  # deleted stays deleted
    assert len(uow.committed) == 2  # the delete; the second list only read
    assert uow.records == []


async def test_an_agent_keeps_a_personal_set_and_a_shortcut_is_one_reply_per_set(
    uow: FakeUnitsOfWork,
) -> None:
    reply = await service.create_canned(
        uow=uow, agent=BOB, shortcut=" /Sizes ", text="Hi {visitor_name}, sizes run small."
    )
    assert (reply["shortcut"], reply["scope"], reply["editable"]) == ("sizes", "personal", True)
    with pytest.raises(Conflict) as taken:
        await service.create_canned(uow=uow, agent=BOB, shortcut="sizes", text="twice")
    assert taken.value.code == "shortcut_taken"
    assert taken.value.detail == "/sizes is already in that set"
    # the same shortcut in someone else's set is another reply
    anns = await service.create_canned(uow=uow, agent=ANN, shortcut="sizes", text="Ann's")
    assert anns["id"] != reply["id"]
    with pytest.raises(InvalidInput, match="not a variable"):
        await service.create_canned(uow=uow, agent=BOB, shortcut="oops", text="Hi {visitor}")
    assert len(uow.rolled_back) == 2


@pytest.mark.parametrize("scope", ["site", "team"])
async def test_only_an_admin_manages_shared_sets(uow: FakeUnitsOfWork, scope: Any) -> None:
    with pytest.raises(Forbidden) as refused:
        await service.create_canned(
            uow=uow, agent=BOB, shortcut="teamwide", text="x", scope=scope, team="sales"
        )
    assert refused.value.code == "not_admin"
    shared = await service.create_canned(
        uow=uow, agent=ANN, shortcut="teamwide", text="For sales", scope=scope, team="sales"
    )
    assert (shared["scope"], shared["team"]) == (scope, "sales" if scope == "team" else None)
    reply_id = UUID(shared["id"])
    with pytest.raises(Forbidden):
        await service.update_canned(uow=uow, agent=BOB, reply_id=reply_id, text="mine now")
    with pytest.raises(Forbidden):
        await service.delete_canned(uow=uow, agent=BOB, reply_id=reply_id)
    bobs = await service.list_canned(uow=uow, agent=BOB, query="teamwide", manage=True)
    assert [(r["shortcut"], r["editable"]) for r in bobs["replies"]] == [("teamwide", False)]


async def test_a_team_reply_names_a_team_that_exists(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(Invalid) as unnamed:
        await service.create_canned(uow=uow, agent=ANN, shortcut="x", text="x", scope="team")
    assert (unnamed.value.code, unnamed.value.detail) == (
        "invalid",
        "team: a team reply names its team",
    )
    with pytest.raises(Invalid) as unknown:
        await service.create_canned(
            uow=uow, agent=ANN, shortcut="x", text="x", scope="team", team="nope"
        )
    assert (unknown.value.code, unknown.value.detail) == (
        "unknown_team",
        "team 'nope' does not exist",
    )


async def test_another_agents_own_replies_are_not_there_even_for_an_admin(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    bobs = await service.create_canned(uow=uow, agent=BOB, shortcut="sizes", text="Small")
    reply_id = UUID(bobs["id"])
    for attempt in (
        lambda: service.update_canned(uow=uow, agent=ANN, reply_id=reply_id, text="x"),
        lambda: service.delete_canned(uow=uow, agent=ANN, reply_id=reply_id),
        lambda: service.delete_canned(uow=uow, agent=BOB, reply_id=uuid7()),
    ):
        with pytest.raises(NotFound) as missing:
            await attempt()
        assert (missing.value.code, missing.value.detail) == (
            "unknown_reply",
            "no such canned reply",
        )
    managed = await service.list_canned(uow=uow, agent=ANN, query=None, manage=True)
    assert "sizes" not in {r["shortcut"] for r in managed["replies"]}
    assert managed["can_manage_shared"]
    assert reply_id in toolkit.replies


async def test_an_update_keeps_what_it_does_not_name_and_refuses_a_taken_shortcut(
    uow: FakeUnitsOfWork,
) -> None:
    await service.create_canned(uow=uow, agent=BOB, shortcut="first", text="One")
    second = await service.create_canned(uow=uow, agent=BOB, shortcut="second", text="Two")
    changed = await service.update_canned(
        uow=uow, agent=BOB, reply_id=UUID(second["id"]), text="Two, {agent_first_name} says"
    )
    assert (changed["shortcut"], changed["text"]) == ("second", "Two, {agent_first_name} says")
    with pytest.raises(Conflict, match="/first is already in that set"):
        await service.update_canned(
            uow=uow, agent=BOB, reply_id=UUID(second["id"]), shortcut="/First"
        )


async def test_a_search_puts_the_shortcut_match_first(uow: FakeUnitsOfWork) -> None:
    await service.create_canned(uow=uow, agent=BOB, shortcut="sizes", text="They run small")
    found = await service.list_canned(uow=uow, agent=BOB, query="/siz", manage=False)
    assert found["replies"][0]["shortcut"] == "sizes"
    assert found["variables"] == list(domain.VARIABLES)


async def test_a_gone_agent_is_told_to_log_in_again(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(NotAuthenticated) as gone:
        await service.create_canned(uow=uow, agent=AgentRef(SITE, "zed"), shortcut="x", text="x")
    assert (gone.value.code, gone.value.detail) == ("unknown_agent", "log in again")


# --- context and fill --------------------------------------------------------------------------


class Visitors:
    def __init__(self, snapshot: dict[str, Any] | None = None) -> None:
        self.snapshot = snapshot

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return self.snapshot

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return None


async def test_variables_come_from_the_conversation_the_visitor_and_the_agent(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    visitors = Visitors({"current_product": "Trail Runner X", "cart_value": 129.5})
    visitors.snapshot = {**(visitors.snapshot or {}), "currency": "EUR"}
    filled = await service.fill(
        uow=uow,
        visitors=visitors,
        agent=ANN,
        conversation_id=CONVERSATION,
        text="Hi {visitor_name}! {agent_first_name} here. The {product}: {cart_value}",
    )
    assert filled["text"] == "Hi Maija! Ann here. The Trail Runner X: €129.50"
    toolkit.sites[SITE]["settings"] = {"language": "fi"}  # money as the site writes it
    values = await service.context_values(
        uow=uow, visitors=visitors, agent=ANN, conversation_id=CONVERSATION
    )
    assert values["cart_value"] == "129,50\u00a0€"
    assert uow.committed == []  # reading only


async def test_the_context_of_an_unknown_conversation_is_not_found(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(NotFound) as missing:
        await service.context_values(
            uow=uow, visitors=Visitors(), agent=ANN, conversation_id=uuid7()
        )
    assert (missing.value.code, missing.value.detail) == (
        "unknown_conversation",
        "no such conversation",
    )


# --- notes -------------------------------------------------------------------------------------


class Pushed:
    def __init__(self) -> None:
        self.frames: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, site_id: str, frame: dict[str, Any]) -> None:
        self.frames.append((site_id, frame))


async def test_a_note_is_stored_and_pushed_to_consoles_never_published(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    pushed = Pushed()
    note = await service.add_note(
        uow=uow,
        push_to_agents=pushed,
        agent=BOB,
        conversation_id=CONVERSATION,
        text="  a reseller\x07, quote the trade price ",
    )
    assert note["text"] == "a reseller, quote the trade price"
    assert note["agent"]["name"] == "Bob"
    assert pushed.frames == [
        (SITE, {"t": "note", "conversation_id": str(CONVERSATION), "note": note})
    ]
    assert len(uow.committed) == 1
    assert uow.records == []  # never on chat.events


async def test_a_note_on_an_unknown_conversation_is_refused_and_nothing_is_pushed(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    pushed = Pushed()
    with pytest.raises(NotFound) as missing:
        await service.add_note(
            uow=uow, push_to_agents=pushed, agent=BOB, conversation_id=uuid7(), text="hello"
        )
    assert missing.value.code == "unknown_conversation"
    with pytest.raises(InvalidInput, match="must not be empty"):
        await service.add_note(
            uow=uow, push_to_agents=pushed, agent=BOB, conversation_id=CONVERSATION, text="  "
        )
    assert (toolkit.notes, pushed.frames, uow.committed) == ([], [], [])


# --- leads -------------------------------------------------------------------------------------


async def test_a_lead_mark_goes_out_once_and_an_identical_second_mark_emits_nothing(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    mark, changed = await service.mark_lead(
        uow=uow, agent=ANN, conversation_id=CONVERSATION, validation="qualified", note=" 12 pairs "
    )
    assert changed
    assert (mark["validation"], mark["note"]) == ("qualified", "12 pairs")
    assert toolkit.locked == ["conversation", "lead_mark"]  # the row, against a second click
    assert [tx.kinds() for tx in uow.committed] == [["conversation.lead_marked"]]
    assert not uow.committed[0].lock  # no conversation moves
    [payload] = _payloads(uow)
    assert payload["email"] == "maija@example.com"  # the visitor's, the conversation had none
    assert (payload["team"], payload["agent_id"], payload["validation"]) == (
        "sales",
        "ann",
        "qualified",
    )

    again, changed = await service.mark_lead(
        uow=uow, agent=ANN, conversation_id=CONVERSATION, validation="qualified", note="12 pairs"
    )
    assert not changed
    assert again["id"] == mark["id"]
    assert len(uow.records) == 1  # nothing more published

    upgraded, changed = await service.mark_lead(
        uow=uow, agent=BOB, conversation_id=CONVERSATION, validation="ready_to_buy"
    )
    assert changed
    assert upgraded["id"] == mark["id"]  # one mark per conversation
    assert [p["validation"] for p in _payloads(uow)] == ["qualified", "ready_to_buy"]
    lead = await service.lead(uow=uow, agent=BOB, conversation_id=CONVERSATION)
    assert lead is not None
    assert (lead["validation"], lead["agent_id"]) == ("ready_to_buy", "bob")


async def test_a_lead_mark_is_refused_for_a_bad_level_or_an_unknown_conversation(
    uow: FakeUnitsOfWork,
) -> None:
    with pytest.raises(InvalidInput, match="must be one of"):
        await service.mark_lead(uow=uow, agent=ANN, conversation_id=CONVERSATION, validation="hot")
    with pytest.raises(NotFound) as missing:
        await service.mark_lead(uow=uow, agent=ANN, conversation_id=uuid7(), validation="qualified")
    assert missing.value.code == "unknown_conversation"
    assert uow.records == []
    assert await service.lead(uow=uow, agent=ANN, conversation_id=CONVERSATION) is None
    with pytest.raises(NotFound) as elsewhere:  # another site's (or no) conversation: 404
        await service.lead(uow=uow, agent=ANN, conversation_id=uuid7())
    assert elsewhere.value.code == "unknown_conversation"


async def test_tags_get_their_objection_defaults_on_first_read(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    async def tags(site_id: str) -> list[dict[str, Any]]:
        return [{"tag": "price", "label": "Price", "kind": "objection", "conversations": 2}]

    toolkit.tags = tags  # type: ignore[attr-defined]
    assert await service.list_tags(uow=uow, agent=BOB) == [
        {"tag": "price", "label": "Price", "kind": "objection", "conversations": 2}
    ]
    assert (SITE, OBJECTION_TAGS) in toolkit.defaults


async def test_answers_are_questions_and_answers_of_tagged_conversations(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    asked: list[tuple[str | None, str | None, int]] = []

    async def tagged_conversations(
        site_id: str, tag: str | None, query: str | None, limit: int
    ) -> list[dict[str, Any]]:
        asked.append((tag, query, limit))
        row = {
            "visitor_id": "v1",
            "team": "sales",
            "tags": ["shipping"],
            "status": "closed",
            "agent_name": "Ann",
            "created_at": AT,
        }
        return [{**row, "conversation_id": CONVERSATION}, {**row, "conversation_id": uuid7()}]

    async def messages_of(ids: list[UUID]) -> dict[UUID, list[dict[str, Any]]]:
        said = [("visitor", None, "Free shipping?"), ("agent", "Ann", "Over 50 euros, yes.")]
        return {  # the second conversation has nobody's answer: left out
            CONVERSATION: [
                {"seq": seq, "author": author, "agent_id": None, "agent_name": name, "text": text}
                for seq, (author, name, text) in enumerate(said)
            ]
        }

    toolkit.tagged_conversations = tagged_conversations  # type: ignore[attr-defined]
    toolkit.messages_of = messages_of  # type: ignore[attr-defined]
    found = await service.search_answers(uow=uow, agent=BOB, tag=" Shipping ", query="  ")
    assert asked == [("shipping", None, service.ANSWERS_LIMIT)]
    assert [(a["conversation_id"], a["created_at"]) for a in found] == [
        (str(CONVERSATION), AT.isoformat())
    ]
    assert found[0]["pairs"] == [
        {"question": "Free shipping?", "answer": "Over 50 euros, yes.", "agent": "Ann"}
    ]


async def test_transfer_targets_mark_the_asking_agent(
    uow: FakeUnitsOfWork, toolkit: FakeToolkit
) -> None:
    async def transfer_agents(site_id: str) -> list[dict[str, Any]]:
        return [
            {
                "agent_id": agent_id,
                "name": agent_id.title(),
                "avatar_url": None,
                "status": "online",
                "open_chats": 1,
                "max_chats": 5,
                "teams": ("sales",),
            }
            for agent_id in ("ann", "bob")
        ]

    async def transfer_teams(site_id: str) -> list[dict[str, Any]]:
        return [{"team": "sales", "name": "Sales", "online": 2, "queued": 3}]

    toolkit.transfer_agents = transfer_agents  # type: ignore[attr-defined]
    toolkit.transfer_teams = transfer_teams  # type: ignore[attr-defined]
    targets = await service.transfer_targets(uow=uow, agent=BOB)
    assert [(a["id"], a["me"], a["teams"]) for a in targets["agents"]] == [
        ("ann", False, ["sales"]),
        ("bob", True, ["sales"]),
    ]
    assert targets["teams"] == [{"team": "sales", "name": "Sales", "online": 2, "queued": 3}]
