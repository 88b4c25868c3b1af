"""The agents' use cases on the fake unit of work: login refusals, status and presence,
preferences, heartbeats and the presence sweep (no Postgres, no Kafka)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from beckon_edge import RateLimiter
from chat.agents import service as agents
from chat.agents.domain import LoginThrottle
from chat.agents.sessions import Sessions
from chat.agents.store import AgentStore
from chat.errors import Invalid, NotAuthenticated, TooMany
from chat.refs import AgentRef
from fake_uow import FakeUnitOfWork, FakeUnitsOfWork

PASSWORD = "correct horse"
HASH = agents.hash_password(PASSWORD)
ANNA = AgentRef("s1", "s1-anna")


class FakeAgents:
    """AgentStore's methods over a dict of agents (what the use cases call)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.touched: dict[str, datetime] = {}
        self.stale_before: datetime | None = None
        self.sites = {"s1": {"site_id": "s1", "name": "Shop", "settings": "{}"}}
        self.teams = {"s1": [{"team": "sales", "name": "Sales"}]}

    def add(self, ref: AgentRef, email: str, **values: Any) -> dict[str, Any]:
        row = {
            "agent_id": ref.agent_id,
            "site_id": ref.site_id,
            "email": email,
            "password_hash": HASH,
            "name": ref.agent_id,
            "avatar_url": None,
            "role": "agent",
            "status": "offline",
            "max_chats": 3,
            "open_chats": 0,
            "teams": ["sales"],
            "locale": "en",
            "settings": {},
            "session_version": 1,
            "active": True,
            "last_seen_at": None,
            **values,
        }
        self.rows[(ref.site_id, ref.agent_id)] = row
        return row

    def _by_id(self, agent_id: str) -> dict[str, Any]:
        return next(row for row in self.rows.values() if row["agent_id"] == agent_id)

    async def get(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        return self.rows.get((site_id, agent_id))

    async def by_email(self, email: str) -> dict[str, Any] | None:
        return next((row for row in self.rows.values() if row["email"] == email), None)

    async def teams_of(self, agent_id: str) -> list[str]:
        return list(self._by_id(agent_id)["teams"])

    async def site(self, site_id: str) -> dict[str, Any] | None:
        return self.sites.get(site_id)

    async def site_teams(self, site_id: str) -> list[dict[str, Any]]:
        return self.teams.get(site_id, [])

    async def session(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        return self.rows.get((site_id, agent_id))

    async def end_sessions(self, site_id: str, agent_id: str, version: int) -> bool:
        row = self.rows.get((site_id, agent_id))
        if row is None or row["session_version"] != version:
            return False
        row["session_version"] += 1
        return True

    async def set_status(self, site_id: str, agent_id: str, status: str, now: datetime) -> None:
        row = self.rows.get((site_id, agent_id))
        if row is not None:
            row.update(status=status, last_seen_at=now)

    async def set_preferences(
        self, site_id: str, agent_id: str, locale: str | None, settings: str | None
    ) -> None:
        row = self.rows.get((site_id, agent_id))
        if row is not None:
            row["locale"] = locale or row["locale"]
            row["settings"] = {**row["settings"], **orjson.loads(settings or "{}")}

    async def touch(self, agent_id: str, now: datetime) -> None:
        self.touched[agent_id] = now

    async def stale(self, before: datetime) -> list[dict[str, Any]]:
        self.stale_before = before
        return [
            {"agent_id": row["agent_id"], "site_id": row["site_id"]}
            for row in self.rows.values()
            if row["status"] != "offline"
            and (row["last_seen_at"] is None or row["last_seen_at"] < before)
        ]

    async def go_offline(self, agent_id: str) -> None:
        self._by_id(agent_id)["status"] = "offline"


@pytest.fixture
def store() -> FakeAgents:
    found = FakeAgents()
    found.add(ANNA, "anna@shop.test", teams=["sales", "support"])
    return found


@pytest.fixture
def uow(store: FakeAgents) -> FakeUnitsOfWork:
    return FakeUnitsOfWork({AgentStore: store})


def throttle(burst: int = 5) -> LoginThrottle:
    return LoginThrottle(per_address=RateLimiter(0.001, 100), per_account=RateLimiter(0.001, burst))


async def _login(uow: FakeUnitsOfWork, gate: LoginThrottle, email: str, password: str) -> Any:
    return await agents.login(
        uow=uow, throttle=gate, email=email, password=password, client="203.0.113.7"
    )


# --- login ------------------------------------------------------------------------------------


async def test_a_wrong_email_and_a_wrong_password_are_refused_alike(uow: FakeUnitsOfWork) -> None:
    gate = throttle()
    refusals = []
    for email, password in (("nobody@shop.test", PASSWORD), ("anna@shop.test", "wrong")):
        with pytest.raises(NotAuthenticated) as refused:
            await _login(uow, gate, email, password)
        refusals.append((refused.value.code, refused.value.detail))
    assert refusals == [("bad_credentials", "wrong e-mail or password")] * 2
    assert uow.committed == []  # a login writes nothing


async def test_a_login_finds_the_agent_by_the_normal_form_of_their_address(
    uow: FakeUnitsOfWork,
) -> None:
    done = await _login(uow, throttle(), "  ANNA@Shop.Test ", PASSWORD)
    assert done.agent == ANNA
    assert done.session_version == 1
    assert done.profile["id"] == "s1-anna"
    assert done.profile["teams"] == ["sales", "support"]
    assert "password_hash" not in done.profile


async def test_failed_logins_are_throttled_with_a_retry_after(uow: FakeUnitsOfWork) -> None:
    gate = throttle(burst=2)
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            await _login(uow, gate, "anna@shop.test", "wrong")
    with pytest.raises(TooMany) as limited:
        await _login(uow, gate, "anna@shop.test", PASSWORD)  # even the right password waits
    assert limited.value.code == "rate_limited"
    assert limited.value.detail.startswith("too many attempts; retry in ")
    assert limited.value.retry_after is not None
    assert limited.value.retry_after > 0


async def test_a_successful_login_does_not_count_against_the_account(
    uow: FakeUnitsOfWork,
) -> None:
    gate = throttle(burst=2)
    with pytest.raises(NotAuthenticated):
        await _login(uow, gate, "anna@shop.test", "wrong")
    for _ in range(3):  # each success gives its attempt back: never limited
        await _login(uow, gate, "anna@shop.test", PASSWORD)


# --- who the agent is ---------------------------------------------------------------------------


async def test_me_is_the_agent_their_site_and_its_teams(uow: FakeUnitsOfWork) -> None:
    shown = await agents.me(uow=uow, agent=ANNA)
    assert shown["agent"]["id"] == "s1-anna"
    assert shown["site"]["site_id"] == "s1"
    assert shown["teams"] == [{"team": "sales", "name": "Sales"}]


async def test_an_agent_who_is_gone_must_log_in_again(uow: FakeUnitsOfWork) -> None:
    gone = AgentRef("s1", "s1-gone")
    for case in (
        agents.profile(uow=uow, agent=gone),
        agents.me(uow=uow, agent=gone),
        agents.set_status(uow=uow, agent=gone, status="away"),
        agents.set_preferences(uow=uow, agent=gone, locale="fi", settings=None),
    ):
        with pytest.raises(NotAuthenticated) as refused:
            await case
        assert (refused.value.code, refused.value.detail) == ("unknown_agent", "log in again")
    assert uow.committed == []
    assert len(uow.rolled_back) == 2


async def test_another_sites_agent_is_not_found(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(NotAuthenticated):
        await agents.profile(uow=uow, agent=AgentRef("s2", "s1-anna"))


# --- status -------------------------------------------------------------------------------------


async def test_coming_online_holds_the_lock_tells_presence_and_drains_the_queues(
    uow: FakeUnitsOfWork, store: FakeAgents, monkeypatch: pytest.MonkeyPatch
) -> None:
    drained: list[tuple[bool, list[str]]] = []

    async def drain_queues(tx: FakeUnitOfWork, teams: Iterable[str]) -> None:
        drained.append((tx.lock, sorted(teams)))

    monkeypatch.setattr(agents.assignment, "drain_queues", drain_queues)
    shown = await agents.set_status(uow=uow, agent=ANNA, status="online")
    assert shown["status"] == "online"
    assert store.rows[("s1", "s1-anna")]["status"] == "online"
    assert [(tx.lock, tx.agents) for tx in uow.committed] == [(True, {"s1-anna"})]
    assert drained == [(True, ["sales", "support"])]


async def test_going_away_tells_presence_and_drains_nothing(
    uow: FakeUnitsOfWork, store: FakeAgents, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.rows[("s1", "s1-anna")]["status"] = "online"

    async def drain_queues(tx: FakeUnitOfWork, teams: Iterable[str]) -> None:
        raise AssertionError("an agent going away takes no chats")

    monkeypatch.setattr(agents.assignment, "drain_queues", drain_queues)
    shown = await agents.set_status(uow=uow, agent=ANNA, status="away")
    assert shown["status"] == "away"
    assert [(tx.lock, tx.agents) for tx in uow.committed] == [(True, {"s1-anna"})]


# --- preferences --------------------------------------------------------------------------------


async def test_preferences_merge_into_the_agents_settings(
    uow: FakeUnitsOfWork, store: FakeAgents
) -> None:
    store.rows[("s1", "s1-anna")]["settings"] = {"sound": True}
    shown = await agents.set_preferences(
        uow=uow, agent=ANNA, locale="fi", settings={"notifications": False}
    )
    assert shown["locale"] == "fi"
    assert shown["settings"] == {"sound": True, "notifications": False}
    assert [(tx.lock, tx.agents, tx.records) for tx in uow.committed] == [(False, set(), [])]
    # the directory carries the agent's language (relisted as the unit commits)
    assert [tx.listed for tx in uow.committed] == [{"s1-anna"}]
    await agents.set_preferences(uow=uow, agent=ANNA, locale=None, settings={"sound": False})
    assert uow.committed[-1].listed == set()


async def test_at_most_fifty_settings_keys(uow: FakeUnitsOfWork, store: FakeAgents) -> None:
    await agents.set_preferences(
        uow=uow, agent=ANNA, locale=None, settings={f"k{i}": i for i in range(50)}
    )
    with pytest.raises(Invalid) as refused:
        await agents.set_preferences(
            uow=uow, agent=ANNA, locale="fi", settings={f"k{i}": i for i in range(51)}
        )
    assert (refused.value.code, refused.value.detail) == ("invalid", "settings: at most 50 keys")
    assert store.rows[("s1", "s1-anna")]["locale"] == "en"  # nothing of it was kept
    assert len(uow.committed) == 1


# --- presence -----------------------------------------------------------------------------------


async def test_a_heartbeat_touches_the_agent_and_publishes_nothing(
    uow: FakeUnitsOfWork, store: FakeAgents
) -> None:
    before = datetime.now(UTC)
    await agents.heartbeat(uow=uow, agent=ANNA)
    assert store.touched["s1-anna"] >= before
    [touch] = uow.committed
    assert touch.records == []
    assert touch.agents == set()


async def test_the_sweep_takes_silent_agents_offline_each_in_a_locked_unit(
    uow: FakeUnitsOfWork, store: FakeAgents
) -> None:
    now = datetime.now(UTC)
    store.rows[("s1", "s1-anna")].update(status="online", last_seen_at=now - timedelta(hours=1))
    store.add(AgentRef("s1", "s1-ben"), "ben@shop.test", status="away", last_seen_at=now)
    store.add(AgentRef("s2", "s2-cid"), "cid@other.test", status="online", last_seen_at=None)
    store.add(AgentRef("s2", "s2-dan"), "dan@other.test", status="offline", last_seen_at=None)

    assert await agents.sweep_absent_agents(uow=uow, older_than_s=60) == 2

    assert store.stale_before is not None
    cutoff = timedelta(seconds=60)
    assert now - cutoff <= store.stale_before <= datetime.now(UTC) - cutoff
    statuses = {agent_id: row["status"] for (_, agent_id), row in store.rows.items()}
    assert statuses == {
        "s1-anna": "offline",
        "s1-ben": "away",
        "s2-cid": "offline",
        "s2-dan": "offline",
    }
    assert [(tx.site_id, tx.lock, tx.agents) for tx in uow.committed] == [
        ("s1", True, {"s1-anna"}),
        ("s2", True, {"s2-cid"}),
    ]


# --- sessions -----------------------------------------------------------------------------------


async def test_a_session_ends_on_logout_and_a_deactivated_agent_is_refused(
    uow: FakeUnitsOfWork, store: FakeAgents
) -> None:
    sessions = Sessions(uow)
    await sessions.ensure(ANNA, 1)
    assert await sessions.end(ANNA, 1) is True
    assert await sessions.end(ANNA, 1) is False  # an older cookie ends nothing newer
    with pytest.raises(NotAuthenticated) as ended:
        await sessions.ensure(ANNA, 1)
    assert ended.value.code == "session_ended"
    store.rows[("s1", "s1-anna")]["active"] = False
    sessions.forget(ANNA)
    with pytest.raises(NotAuthenticated) as refused:
        await sessions.ensure(ANNA, 2)
    assert refused.value.code == "deactivated"
