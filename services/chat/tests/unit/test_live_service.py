"""The live list's use cases on a fake unit of work: who may invite whom, what an invitation
stores and signals, and the list over HTTP with its filters."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from beckon_contracts.chat_signals import ChatSignal, InvitationSignal
from beckon_contracts.visitors import VisitorSnapshotPayload
from chat.errors import Conflict, NotAuthenticated, Unavailable
from chat.live import service
from chat.live.domain import Filter
from chat.live.reader import LiveVisitors
from chat.live.store import LiveStore
from chat.refs import AgentRef
from chat.text import InvalidInput
from fake_uow import FakeUnitsOfWork

SITE = "shop"
BEN = AgentRef(SITE, "ben")


def payload(**fields: Any) -> VisitorSnapshotPayload:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "url": "https://shop.test/p/boots",
        "title": "Boots",
        "page_type": "product",
        "session_started_at": now - timedelta(minutes=5),
        "last_seen_at": now,
        "time_on_site_s": 300.0,
        "sessions": 1,
        "returning": False,
        "cart_value": 0.0,
        "score": 10.0,
        "segment": "cold",
        "invited": False,
    }
    values.update(fields)
    return VisitorSnapshotPayload.model_validate(values)


class FakeLiveStore:
    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {
            "ben": {
                "agent_id": "ben",
                "name": "Ben",
                "avatar_url": None,
                "status": "online",
                "teams": ["sales", "support"],
            }
        }
        self.chatting_visitors: set[str] = set()
        self.site_default_team = "front-desk"
        self.invitations: list[dict[str, Any]] = []
        self.news: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        self.news_window: float | None = None

    async def agent(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        assert site_id == SITE
        return self.agents.get(agent_id)

    async def chatting(self, site_id: str, visitor_id: str) -> bool:
        return visitor_id in self.chatting_visitors

    async def default_team(self, site_id: str) -> str:
        return self.site_default_team

    async def insert_invitation(self, values: dict[str, Any]) -> None:
        self.invitations.append(values)

    async def chat_news(
        self, *, invited_within_s: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.news_window = invited_within_s
        return self.news


class Signals:
    def __init__(self) -> None:
        self.sent: list[ChatSignal] = []

    async def __call__(self, signal: ChatSignal) -> None:
        self.sent.append(signal)


@pytest.fixture
async def live() -> LiveVisitors:
    found = LiveVisitors("localhost:1", "test", idle_after_s=600, push_interval_s=1)
    found.registry.apply(SITE, "v1", payload(), time.time())
    return found


@pytest.fixture
def stored() -> FakeLiveStore:
    return FakeLiveStore()


@pytest.fixture
def uow(stored: FakeLiveStore) -> FakeUnitsOfWork:
    return FakeUnitsOfWork({LiveStore: stored})


async def invite(
    uow: FakeUnitsOfWork,
    live: LiveVisitors | None,
    signals: Signals | None = None,
    *,
    visitor_id: str = "v1",
    message: str = "Hi!",
    agent: AgentRef = BEN,
) -> dict[str, Any]:
    return await service.invite(
        uow=uow,
        live=live,
        signal=signals or Signals(),
        agent=agent,
        visitor_id=visitor_id,
        message=message,
    )


# --- refusals ---------------------------------------------------------------------------------


async def test_a_visitor_not_on_the_site_now_cannot_be_invited(
    uow: FakeUnitsOfWork, live: LiveVisitors
) -> None:
    with pytest.raises(Conflict) as refused:
        await invite(uow, live, visitor_id="gone")
    assert (refused.value.code, refused.value.detail) == (
        "not_live",
        "this visitor is not on the site now",
    )
    assert uow.committed == []
    assert uow.rolled_back == []


async def test_a_visitor_the_live_list_shows_chatting_cannot_be_invited(
    uow: FakeUnitsOfWork, live: LiveVisitors, stored: FakeLiveStore
) -> None:
    live.registry.note(SITE, "v1", time.time(), chatting=True)
    with pytest.raises(Conflict) as refused:
        await invite(uow, live)
    assert refused.value.code == "already_chatting"
    assert stored.invitations == []


async def test_a_visitor_whose_chat_the_live_list_does_not_know_yet_cannot_be_invited(
    uow: FakeUnitsOfWork, live: LiveVisitors, stored: FakeLiveStore
) -> None:
    stored.chatting_visitors.add("v1")  # started a moment ago: the snapshot still says no
    signals = Signals()
    with pytest.raises(Conflict) as refused:
        await invite(uow, live, signals)
    assert (refused.value.code, refused.value.detail) == (
        "already_chatting",
        "this visitor is already in a chat",
    )
    assert stored.invitations == []
    assert len(uow.rolled_back) == 1
    assert uow.committed == []
    assert signals.sent == []


@pytest.mark.parametrize("status", ["away", "offline"])
async def test_an_agent_who_is_not_online_cannot_invite(
    uow: FakeUnitsOfWork, live: LiveVisitors, stored: FakeLiveStore, status: str
) -> None:
    stored.agents["ben"]["status"] = status
    signals = Signals()
    with pytest.raises(Conflict) as refused:
        await invite(uow, live, signals)
    assert (refused.value.code, refused.value.detail) == (
        "agent_offline",
        "go online to invite visitors",
    )
    assert stored.invitations == []
    assert signals.sent == []
    assert live.registry.visitor(SITE, "v1")["invited"] is False  # type: ignore[index]


async def test_an_agent_who_no_longer_exists_must_log_in_again(
    uow: FakeUnitsOfWork, live: LiveVisitors
) -> None:
    with pytest.raises(NotAuthenticated) as refused:
        await invite(uow, live, agent=AgentRef(SITE, "deleted"))
    assert (refused.value.code, refused.value.detail) == ("unknown_agent", "log in again")


@pytest.mark.parametrize(
    ("message", "why"),
    [(" \x07 ", "must not be empty"), ("x" * 1001, "is longer than 1000 characters")],
)
async def test_an_empty_or_too_long_message_is_refused_before_anything_else(
    uow: FakeUnitsOfWork, message: str, why: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await invite(uow, None, message=message)  # not even the list running is checked
    assert (refused.value.field, str(refused.value)) == ("message", why)


async def test_nobody_can_be_invited_while_the_live_list_has_not_started(
    uow: FakeUnitsOfWork,
) -> None:
    with pytest.raises(Unavailable) as refused:
        await invite(uow, None)
    assert (refused.value.code, refused.value.detail) == (
        "starting",
        "the live list is not running yet",
    )


# --- an invitation sent -----------------------------------------------------------------------


async def test_an_invitation_is_stored_signalled_and_marks_the_visitor_invited(
    uow: FakeUnitsOfWork, live: LiveVisitors, stored: FakeLiveStore
) -> None:
    signals = Signals()
    sent = await invite(uow, live, signals, message="  Hi, I'm Ben\x07 ")

    [row] = stored.invitations
    assert {k: row[k] for k in ("site_id", "visitor_id", "rule_id", "team", "message")} == {
        "site_id": SITE,
        "visitor_id": "v1",
        "rule_id": None,
        "team": "sales",  # the agent's first team
        "message": "Hi, I'm Ben",
    }
    assert row["personal"] is True
    assert row["agent"] == {"agent_id": "ben", "name": "Ben", "avatar_url": None}
    assert [tx.lock for tx in uow.committed] == [False]  # no load or queue changes
    assert uow.records == []  # nothing for chat.events until the visitor answers

    [signal] = signals.sent
    assert isinstance(signal, InvitationSignal)
    assert (signal.site_id, signal.visitor_id) == (SITE, "v1")
    assert str(signal.invitation.id) == sent["id"] == str(row["invitation_id"])
    assert signal.invitation.rule_id is None
    assert signal.invitation.agent is not None
    assert signal.invitation.agent.name == "Ben"
    assert signal.invitation.expires_at == row["expires_at"]

    assert sent == {
        "id": str(row["invitation_id"]),
        "message": "Hi, I'm Ben",
        "agent": {"name": "Ben", "avatar_url": None},
        "team": "sales",
        "expires_at": row["expires_at"].isoformat(),
        "rule_id": None,
        "visitor_id": "v1",
        "personal": True,
    }
    remaining = row["expires_at"] - datetime.now(UTC)
    assert timedelta(minutes=9) < remaining <= timedelta(minutes=10)
    assert live.registry.visitor(SITE, "v1")["invited"] is True  # type: ignore[index]


async def test_an_agent_in_no_team_invites_for_the_sites_default_team_and_without_a_name_no_card(
    uow: FakeUnitsOfWork, live: LiveVisitors, stored: FakeLiveStore
) -> None:
    stored.agents["ben"].update(teams=[], name=None)
    signals = Signals()
    sent = await invite(uow, live, signals)
    assert stored.invitations[0]["team"] == sent["team"] == "front-desk"
    assert sent["agent"] is None
    [signal] = signals.sent
    assert isinstance(signal, InvitationSignal)
    assert signal.invitation.agent is None
    assert signal.invitation.team == "front-desk"


# --- the list over HTTP -----------------------------------------------------------------------


async def test_the_list_filters_sorts_and_counts_the_agents_site_only(live: LiveVisitors) -> None:
    now = time.time()
    live.registry.apply(SITE, "v2", payload(cart_value=150.0, score=80.0, segment="hot"), now)
    live.registry.apply(SITE, "v3", payload(cart_value=60.0, score=40.0, segment="warm"), now)
    live.registry.apply("other-shop", "v9", payload(cart_value=999.0), now)

    found = service.visitors(
        live=live, agent=BEN, wanted=Filter(min_cart=50), sort="cart", descending=False
    )
    assert [row["id"] for row in found["visitors"]] == ["v3", "v2"]
    assert (found["count"], found["total"], found["loaded"]) == (2, 3, False)

    live.loaded.set()
    top = service.visitors(live=live, agent=BEN, wanted=Filter(), limit=1)
    assert [row["id"] for row in top["visitors"]] == ["v2"]  # by score, highest first
    assert (top["count"], top["total"], top["loaded"]) == (1, 3, True)


def test_the_list_is_unavailable_until_it_runs() -> None:
    with pytest.raises(Unavailable) as refused:
        service.visitors(live=None, agent=BEN, wanted=Filter())
    assert refused.value.code == "starting"


# --- what the reader loads at start-up --------------------------------------------------------


async def test_the_reader_starts_knowing_every_sites_chats_and_recent_personal_invitations(
    uow: FakeUnitsOfWork, stored: FakeLiveStore
) -> None:
    reader = LiveVisitors("localhost:1", "test", idle_after_s=600, push_interval_s=1, uow=uow)
    now = time.time()
    reader.registry.apply(SITE, "chatting", payload(), now)
    reader.registry.apply("other-shop", "invited", payload(), now)
    reader.registry.apply(SITE, "neither", payload(), now)
    stored.news = (
        [{"site_id": SITE, "visitor_id": "chatting", "email": "eve@example.com"}],
        [{"site_id": "other-shop", "visitor_id": "invited", "at": datetime.now(UTC)}],
    )
    await reader.load_chat_news()
    assert stored.news_window == 600
    assert uow.reads == 1
    assert uow.committed == []
    chatting = reader.visitor(SITE, "chatting")
    invited = reader.visitor("other-shop", "invited")
    neither = reader.visitor(SITE, "neither")
    assert chatting is not None
    assert invited is not None
    assert neither is not None
    assert (chatting["chatting"], chatting["invited"]) == (True, False)
    assert (invited["chatting"], invited["invited"]) == (False, True)
    assert (neither["chatting"], neither["invited"]) == (False, False)
    rows = {row["id"]: row for row in reader.registry.rows(SITE)}
    assert rows["chatting"]["label"]["en"] == "eve@example.com"
