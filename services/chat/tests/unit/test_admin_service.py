"""The admin use cases on a fake unit of work: what they refuse (kind, code, sentence), what
they publish, and that staff and capacity changes run under the site's assignment lock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import parse_rules_record
from beckon_contracts.sites import parse_site_record
from beckon_contracts.topics import RULES_CONFIG, SITES_CONFIG
from chat.admin import domain, service
from chat.admin.store import PeopleStore, RulesStore, SiteStore
from chat.conversations import assignment
from chat.errors import Conflict, Gone, Invalid, NotFound, Unavailable
from chat.refs import AgentRef
from fake_uow import FakeUnitOfWork, FakeUnitsOfWork

SITE = "shop"
ADA = AgentRef(SITE, "shop-ada")  # the admin making the change
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
RULE: dict[str, Any] = {
    "id": "big-cart",
    "name": "Big cart",
    "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte": 150}}]},
    "message": "Questions about your {cart_value} order?",
}


class FakePeople:
    """PeopleStore in memory: agents by id, teams with their members, invitations."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.team_names: dict[str, str] = {"sales": "Sales"}
        self.members: set[tuple[str, str]] = set()  # (team, agent_id)
        self.open: dict[str, int] = {}  # open chats per agent
        self.invites: dict[bytes, dict[str, Any]] = {}
        self.other_sites: dict[str, str] = {}  # email -> site, for agents elsewhere
        self.races_on_insert = False

    def agent(self, agent_id: str, *, role: str = "agent", active: bool = True) -> None:
        self.rows[agent_id] = {
            "agent_id": agent_id,
            "site_id": SITE,
            "email": f"{agent_id}@example.com",
            "name": agent_id.removeprefix("shop-").title(),
            "avatar_url": None,
            "role": role,
            "status": "online",
            "max_chats": 5,
            "deactivated_at": None if active else NOW,
            "password_hash": "argon2...",
            "last_seen_at": None,
            "created_at": NOW,
        }

    async def team_exists(self, site_id: str, team: str) -> bool:
        return team in self.team_names

    async def teams(self, site_id: str) -> list[dict[str, Any]]:
        return [
            {
                "team": team,
                "name": name,
                "members": orjson.dumps(
                    [{"id": a} for t, a in sorted(self.members) if t == team]
                ).decode(),
            }
            for team, name in sorted(self.team_names.items())
        ]

    async def create_team(self, site_id: str, team: str, name: str) -> bool:
        if team in self.team_names:
            return False
        self.team_names[team] = name
        return True

    async def rename_team(self, site_id: str, team: str, name: str) -> bool:
        if team not in self.team_names:
            return False
        self.team_names[team] = name
        return True

    async def add_member(self, site_id: str, team: str, agent_id: str) -> None:
        self.members.add((team, agent_id))

    async def remove_member(self, site_id: str, team: str, agent_id: str) -> None:
        self.members.discard((team, agent_id))

    async def teams_of(self, site_id: str, agent_id: str) -> set[str]:
        return {t for t, a in self.members if a == agent_id}

    async def agents(self, site_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        return [
            {
                **row,
                "open_chats": self.open.get(row["agent_id"], 0),
                "teams": sorted(await self.teams_of(site_id, row["agent_id"])),
                "invite_pending": row["password_hash"] == "!",
            }
            for row in self.rows.values()
            if agent_id is None or row["agent_id"] == agent_id
        ]

    async def agent_for_update(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        return self.rows.get(agent_id)

    async def agent_name(self, site_id: str, agent_id: str) -> str | None:
        row = self.rows.get(agent_id)
        return row["name"] if row else None

    async def email_site(self, email: str) -> str | None:
        if any(row["email"] == email for row in self.rows.values()):
            return SITE
        return self.other_sites.get(email)

    async def agent_id_taken(self, agent_id: str) -> bool:
        return agent_id in self.rows

    async def insert_agent(self, *, site_id: str, agent_id: str, email: str, **row: Any) -> bool:
        if self.races_on_insert:
            return False
        self.agent(agent_id, role=row["role"])
        self.rows[agent_id].update(email=email, name=row["name"], password_hash="!")
        self.rows[agent_id]["max_chats"] = row["max_chats"]
        return True

    async def update_agent(self, site_id: str, agent_id: str, **change: Any) -> None:
        self.rows[agent_id].update({k: v for k, v in change.items() if v is not None})

    async def active_admins(self, site_id: str) -> set[str]:
        return {
            a
            for a, row in self.rows.items()
            if row["role"] == "admin" and row["deactivated_at"] is None
        }

    async def open_chats(self, site_id: str, agent_id: str) -> int:
        return self.open.get(agent_id, 0)

    async def deactivate(self, site_id: str, agent_id: str, now: datetime) -> None:
        self.rows[agent_id].update(deactivated_at=now, status="offline", password_hash="!")
        self.members = {(t, a) for t, a in self.members if a != agent_id}

    async def insert_invite(self, *, token_hash: bytes, agent_id: str, **row: Any) -> None:
        for invite in self.invites.values():
            if invite["agent_id"] == agent_id:
                invite["used"] = True
        self.invites[token_hash] = {"site_id": SITE, "agent_id": agent_id, "used": False}

    async def open_invite_site(self, token_hash: bytes, now: datetime) -> str | None:
        invite = self.invites.get(token_hash)
        return invite["site_id"] if invite and not invite["used"] else None

    async def take_invite(self, token_hash: bytes, now: datetime) -> dict[str, Any] | None:
        invite = self.invites.get(token_hash)
        if invite is None or invite["used"]:
            return None
        invite["used"] = True
        return invite

    async def set_password(
        self, site_id: str, agent_id: str, password_hash: str
    ) -> dict[str, Any] | None:
        row = self.rows.get(agent_id)
        if row is None:
            return None
        row.update(password_hash=password_hash, deactivated_at=None)
        return row


class FakeRules:
    def __init__(self) -> None:
        self.kept: list[SiteRules] = []
        self.locked: list[str] = []

    async def lock(self, site_id: str) -> None:
        self.locked.append(site_id)

    async def latest(self, site_id: str) -> dict[str, Any] | None:
        if not self.kept:
            return None
        rules = self.kept[-1]
        return {"version": rules.version, "rules": rules.model_dump_json(by_alias=True)}

    async def keep(self, rules: SiteRules, agent_id: str, agent_name: str, now: datetime) -> None:
        self.kept.append(rules)


class FakeSites:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, site_id: str, version: int = 1) -> None:
        self.rows[site_id] = {
            "site_id": site_id,
            "name": site_id.title(),
            "site_key": f"pk_live_{site_id}",
            "write_key": None,
            "allowed_origins": ["https://shop.example"],
            "settings": "{}",
            "config_version": version,
        }

    async def team_exists(self, site_id: str, team: str) -> bool:
        return team == "sales"

    async def site(self, site_id: str) -> dict[str, Any] | None:
        return self.rows.get(site_id)

    async def update(
        self, site_id: str, *, allowed_origins: list[str] | None, settings_patch: dict[str, Any]
    ) -> None:
        row = self.rows[site_id]
        settings = {**orjson.loads(row["settings"]), **settings_patch}
        row["settings"] = orjson.dumps({k: v for k, v in settings.items() if v is not None})
        if allowed_origins is not None:
            row["allowed_origins"] = allowed_origins
        row["config_version"] += 1

    async def versions(self) -> dict[str, int]:
        return {site_id: row["config_version"] for site_id, row in self.rows.items()}


class FakeFeed:
    """The rules feed: caught up or not, and the rules the workers run."""

    def __init__(self, live: SiteRules | None = None, *, caught_up: bool = True) -> None:
        self.live = live
        self.caught_up = caught_up

    async def wait_caught_up(self, timeout_s: float) -> bool:
        return self.caught_up

    def current(self, site_id: str) -> SiteRules | None:
        return self.live


class Forgets:
    def __init__(self) -> None:
        self.forgotten: list[Any] = []

    def forget(self, key: Any) -> None:
        self.forgotten.append(key)


@pytest.fixture
def people() -> FakePeople:
    people = FakePeople()
    people.agent(ADA.agent_id, role="admin")
    people.agent("shop-ben")
    people.members.add(("sales", "shop-ben"))
    return people


@pytest.fixture
def uow(people: FakePeople) -> FakeUnitsOfWork:
    sites = FakeSites()
    sites.add(SITE)
    return FakeUnitsOfWork({PeopleStore: people, RulesStore: FakeRules(), SiteStore: sites})


@pytest.fixture
def rebalanced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, list[str], set[str]]]:
    """What `assignment.rebalance` was asked: (lock held, agents, teams)."""
    asked: list[tuple[bool, list[str], set[str]]] = []

    async def rebalance(tx: FakeUnitOfWork, *, agent_ids: Any, teams: Any) -> None:
        asked.append((tx.lock, list(agent_ids), set(teams)))

    monkeypatch.setattr(assignment, "rebalance", rebalance)
    return asked


# --- agents --------------------------------------------------------------------------------


async def test_the_last_admin_cannot_be_demoted(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    with pytest.raises(Conflict) as refused:
        await service.change_agent(uow=uow, admin=ADA, agent_id=ADA.agent_id, role="agent")
    assert (refused.value.code, refused.value.detail) == (
        "last_admin",
        "the site needs at least one admin",
    )
    assert people.rows[ADA.agent_id]["role"] == "admin"
    assert [tx.lock for tx in uow.rolled_back] == [True]
    assert rebalanced == []


async def test_one_of_two_admins_can_be_demoted_and_capacity_is_rebalanced_under_the_lock(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    people.agent("shop-cy", role="admin")
    people.members.add(("sales", "shop-cy"))
    answer = await service.change_agent(
        uow=uow, admin=ADA, agent_id="shop-cy", role="agent", max_chats=3
    )
    assert (answer["agent"]["role"], answer["agent"]["max_chats"]) == ("agent", 3)
    assert rebalanced == [(True, ["shop-cy"], {"sales"})]


async def test_the_last_active_admin_cannot_be_deactivated(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    # another admin's request got through while ada was being deactivated (sessions are
    # trusted for a few seconds): under the lock, the rule still holds
    people.agent("shop-cy", role="admin")
    people.rows[ADA.agent_id]["deactivated_at"] = NOW
    with pytest.raises(Conflict) as refused:
        await service.deactivate_agent(uow=uow, sessions=Forgets(), admin=ADA, agent_id="shop-cy")
    assert refused.value.code == "last_admin"
    assert people.rows["shop-cy"]["deactivated_at"] is None
    assert rebalanced == []


async def test_nobody_deactivates_themselves(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(Conflict) as refused:
        await service.deactivate_agent(
            uow=uow, sessions=Forgets(), admin=ADA, agent_id=ADA.agent_id
        )
    assert (refused.value.code, refused.value.detail) == (
        "deactivate_self",
        "another admin must deactivate you",
    )
    assert uow.committed == uow.rolled_back == []


async def test_an_agent_with_open_chats_is_not_deactivated(
    uow: FakeUnitsOfWork, people: FakePeople
) -> None:
    people.open["shop-ben"] = 2
    with pytest.raises(Conflict) as refused:
        await service.deactivate_agent(uow=uow, sessions=Forgets(), admin=ADA, agent_id="shop-ben")
    assert (refused.value.code, refused.value.detail) == (
        "agent_has_chats",
        "Ben has 2 open chat(s): transfer or close them first",
    )
    assert people.rows["shop-ben"]["deactivated_at"] is None


async def test_deactivating_leaves_the_teams_under_the_lock_and_ends_the_sessions(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    sessions = Forgets()
    answer = await service.deactivate_agent(
        uow=uow,
        sessions=sessions,
        admin=ADA,
        agent_id="shop-ben",
    )
    assert (answer["agent"]["active"], answer["agent"]["teams"]) == (False, [])
    assert rebalanced == [(True, ["shop-ben"], {"sales"})]
    assert sessions.forgotten == [AgentRef(SITE, "shop-ben")]


async def test_an_unknown_agent_is_not_found(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(NotFound) as refused:
        await service.reinvite_agent(uow=uow, admin=ADA, agent_id="shop-nobody")
    assert (refused.value.code, refused.value.detail) == ("unknown_agent", "no such agent")


async def test_an_address_of_this_site_is_taken_and_another_sites_unavailable(
    uow: FakeUnitsOfWork, people: FakePeople
) -> None:
    invite = {"name": "Ben", "role": "agent", "teams": [], "max_chats": 5}
    with pytest.raises(Conflict) as taken:
        await service.invite_agent(uow=uow, admin=ADA, email=" Shop-Ben@Example.com", **invite)
    assert (taken.value.code, taken.value.detail) == (
        "email_taken",
        "shop-ben@example.com is already an agent of this site",
    )
    people.other_sites["dee@example.com"] = "elsewhere"
    with pytest.raises(Conflict) as elsewhere:
        await service.invite_agent(uow=uow, admin=ADA, email="dee@example.com", **invite)
    assert elsewhere.value.code == "email_unavailable"
    assert "elsewhere" not in elsewhere.value.detail  # never whose address it is
    people.races_on_insert = True  # invited on another site at the same moment
    with pytest.raises(Conflict) as raced:
        await service.invite_agent(uow=uow, admin=ADA, email="eve@example.com", **invite)
    assert raced.value.code == "email_unavailable"


async def test_an_invitation_names_existing_teams_only(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(Invalid) as refused:
        await service.invite_agent(
            uow=uow,
            admin=ADA,
            name="Dee",
            email="dee@example.com",
            role="agent",
            teams=["vip"],
            max_chats=5,
        )
    assert (refused.value.code, refused.value.detail) == (
        "unknown_team",
        "team 'vip' does not exist",
    )


async def test_an_invited_agent_joins_teams_under_the_lock_and_gets_a_link(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    answer = await service.invite_agent(
        uow=uow,
        admin=ADA,
        name="Dee",
        email="Dee@Example.com",
        role="agent",
        teams=["sales", "sales"],
        max_chats=4,
    )
    agent = answer["agent"]
    assert (agent["id"], agent["email"], agent["teams"]) == (
        "shop-dee",
        "dee@example.com",
        ["sales"],
    )
    assert agent["invite_pending"] is True
    assert answer["invite"]["path"] == f"/console/#set-password={answer['invite']['token']}"
    assert domain.token_hash(answer["invite"]["token"]) in people.invites  # only the hash kept
    assert rebalanced == [(True, [], {"sales"})]


async def test_a_link_sets_the_password_once_and_ends_the_sessions(
    uow: FakeUnitsOfWork, people: FakePeople, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    monkeypatch.setattr(service, "hash_password", lambda p: hashed.append(p) or "argon2-new")
    invite = await service.reinvite_agent(uow=uow, admin=ADA, agent_id="shop-ben")
    token = invite["invite"]["token"]
    sessions = Forgets()

    with pytest.raises(Invalid) as weak:
        await service.set_password(
            uow=uow,
            sessions=sessions,
            token=token,
            password="short",
        )
    assert weak.value.code == "weak_password"

    answer = await service.set_password(
        uow=uow,
        sessions=sessions,
        token=token,
        password="a good long password",
    )
    assert answer == {"ok": True, "email": "shop-ben@example.com", "name": "Ben"}
    assert people.rows["shop-ben"]["password_hash"] == "argon2-new"
    assert sessions.forgotten == [AgentRef(SITE, "shop-ben")]

    with pytest.raises(Gone) as used:
        await service.set_password(
            uow=uow,
            sessions=sessions,
            token=token,
            password="another long password",
        )
    assert (used.value.code, used.value.detail) == (
        "invite_invalid",
        "this link was used already or has expired",
    )
    assert hashed == ["a good long password"]  # argon2 is never spent on a dead link


# --- teams ---------------------------------------------------------------------------------


async def test_a_team_exists_once_and_an_unknown_one_is_not_renamed(
    uow: FakeUnitsOfWork,
) -> None:
    teams = await service.create_team(uow=uow, site_id=SITE, team="vip", name="VIP")
    assert [t["team"] for t in teams] == ["sales", "vip"]
    with pytest.raises(Conflict) as exists:
        await service.create_team(uow=uow, site_id=SITE, team="vip", name="Again")
    assert (exists.value.code, exists.value.detail) == ("team_exists", "team 'vip' already exists")
    with pytest.raises(NotFound) as unknown:
        await service.rename_team(uow=uow, site_id=SITE, team="nope", name="X")
    assert (unknown.value.code, unknown.value.detail) == (
        "unknown_team",
        "team 'nope' does not exist",
    )


async def test_membership_changes_rebalance_under_the_lock(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    people.team_names["vip"] = "VIP"
    teams = await service.add_member(uow=uow, site_id=SITE, team="vip", agent_id="shop-ben")
    assert next(t for t in teams if t["team"] == "vip")["members"] == [{"id": "shop-ben"}]
    await service.remove_member(uow=uow, site_id=SITE, team="sales", agent_id="shop-ben")
    assert rebalanced == [(True, ["shop-ben"], {"vip"}), (True, ["shop-ben"], {"sales"})]


async def test_a_deactivated_agent_joins_no_team(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    people.agent("shop-cy", active=False)
    with pytest.raises(Conflict) as refused:
        await service.add_member(uow=uow, site_id=SITE, team="sales", agent_id="shop-cy")
    assert (refused.value.code, refused.value.detail) == ("agent_deactivated", "Cy is deactivated")
    assert ("sales", "shop-cy") not in people.members
    assert rebalanced == []


# --- rules ---------------------------------------------------------------------------------


async def test_publishing_keeps_the_next_version_and_emits_the_rules_config_record(
    uow: FakeUnitsOfWork,
) -> None:
    live = SiteRules(site_id=SITE, version=4)
    answer = await service.publish_rules(
        uow=uow,
        feed=FakeFeed(live),
        admin=ADA,
        body={"rules": {"rules": [RULE]}, "base_version": 4},
    )
    assert (answer["version"], answer["published"]["by"]) == (
        5,
        {"id": ADA.agent_id, "name": "Ada"},
    )
    (record,) = uow.records
    assert (record.topic, record.key) == (RULES_CONFIG.name, SITE.encode())
    published = parse_rules_record(record.value)
    assert (published.site_id, published.version, published.rules[0].id) == (SITE, 5, "big-cart")
    rules_store = uow.stores[RulesStore]
    assert rules_store.locked == [SITE]
    assert [r.version for r in rules_store.kept] == [5]


async def test_a_stale_edit_is_refused_and_nothing_is_published(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(Conflict) as refused:
        await service.publish_rules(
            uow=uow,
            feed=FakeFeed(SiteRules(site_id=SITE, version=4)),
            admin=ADA,
            body={"rules": {"rules": [RULE]}, "base_version": 3},
        )
    assert (refused.value.code, refused.value.detail) == (
        "stale_rules",
        "version 4 was published since you started editing v3; reload",
    )
    assert uow.records == []
    assert uow.stores[RulesStore].kept == []


async def test_an_invalid_document_is_refused_with_every_problem_located(
    uow: FakeUnitsOfWork,
) -> None:
    bad = {**RULE, "when": {"all": [{"cart_value": {"gte": "lots"}}]}}
    with pytest.raises(domain.InvalidDocument) as refused:
        await service.publish_rules(
            uow=uow,
            feed=FakeFeed(),
            admin=ADA,
            body={"rules": {"rules": [RULE, bad]}},
        )
    assert refused.value.code == "invalid_rules"
    assert [p.loc for p in refused.value.problems] == ["rules[1].when.all[0].cart_value.gte"]
    assert refused.value.detail.startswith("rules[1].when.all[0].cart_value.gte: ")
    assert uow.committed == []


async def test_rules_are_not_published_before_the_current_ones_are_known(
    uow: FakeUnitsOfWork,
) -> None:
    with pytest.raises(Unavailable) as refused:
        await service.publish_rules(
            uow=uow,
            feed=FakeFeed(caught_up=False),
            admin=ADA,
            body={"rules": {"rules": [RULE]}},
        )
    assert refused.value.code == "rules_unknown"
    assert uow.committed == []


def test_validating_answers_problems_without_refusing() -> None:
    assert service.check_rules(site_id=SITE, body={"rule": RULE}) == {"ok": True, "errors": []}
    answer = service.check_rules(site_id=SITE, body={"rules": {"rules": [RULE, RULE]}})
    assert answer["ok"] is False
    assert answer["errors"] == [
        {"loc": "rules[1].id", "msg": "id 'big-cart' is already used by rules[0]"}
    ]
    with pytest.raises(Invalid) as refused:
        service.check_rules(site_id=SITE, body={})
    assert (refused.value.code, refused.value.detail) == (
        "invalid",
        "give the rules document as `rules`",
    )


# --- site settings -------------------------------------------------------------------------


async def test_a_site_change_is_published_whole_on_sites_config(uow: FakeUnitsOfWork) -> None:
    cache = Forgets()
    site = await service.change_site(
        uow=uow,
        feed=FakeFeed(),
        sites=cache,
        site_id=SITE,
        data={"greeting": "Hei!", "timezone": "Europe/Helsinki"},
    )
    assert (site["greeting"], site["timezone"], site["timezone_source"]) == (
        "Hei!",
        "Europe/Helsinki",
        "site",
    )
    (record,) = uow.records
    assert record.topic == SITES_CONFIG.name
    config = parse_site_record(record.value)
    assert (config.version, config.timezone, config.settings) == (
        2,
        "Europe/Helsinki",
        {"greeting": "Hei!"},
    )
    assert cache.forgotten == [SITE]


async def test_a_site_change_is_refused_whole(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(domain.InvalidDocument) as invalid:
        await service.change_site(
            uow=uow,
            feed=FakeFeed(),
            sites=Forgets(),
            site_id=SITE,
            data={"color": "blue", "timezone": "Mars/Olympus"},
        )
    assert invalid.value.code == "invalid"
    assert [p.loc for p in invalid.value.problems] == ["color", "timezone"]
    with pytest.raises(Invalid) as unknown:
        await service.change_site(
            uow=uow,
            feed=FakeFeed(),
            sites=Forgets(),
            site_id=SITE,
            data={"default_team": "vip"},
        )
    assert (unknown.value.code, unknown.value.detail) == (
        "unknown_team",
        "team 'vip' does not exist",
    )
    assert uow.records == []


async def test_the_start_up_fill_publishes_the_sites_the_topic_lacks_or_holds_older(
    uow: FakeUnitsOfWork,
) -> None:
    sites = uow.stores[SiteStore]
    sites.add("fresh", version=3)
    sites.add("known", version=2)
    sent = await service.publish_missing_sites(uow=uow, on_topic={SITE: 1, "known": 2})
    assert sent == 1
    assert [parse_site_record(r.value).site_id for r in uow.records] == ["fresh"]


async def test_every_change_to_an_agent_names_them_for_the_directory(
    uow: FakeUnitsOfWork, people: FakePeople, rebalanced: list[Any]
) -> None:
    """Their unit relists them on `agents.directory` (chat.agents.directory) as it commits."""
    people.team_names["vip"] = "VIP"
    await service.invite_agent(
        uow=uow, admin=ADA, name="Dee", email="dee@example.com", role="agent", teams=[], max_chats=4
    )
    await service.change_agent(uow=uow, admin=ADA, agent_id="shop-dee", name="Deirdre")
    await service.add_member(uow=uow, site_id=SITE, team="vip", agent_id="shop-dee")
    await service.remove_member(uow=uow, site_id=SITE, team="vip", agent_id="shop-dee")
    await service.deactivate_agent(uow=uow, sessions=Forgets(), admin=ADA, agent_id="shop-dee")
    token = (await service.reinvite_agent(uow=uow, admin=ADA, agent_id="shop-dee"))["invite"]
    await service.set_password(
        uow=uow, sessions=Forgets(), token=token["token"], password="a good long password"
    )
    assert [tx.listed for tx in uow.committed] == [
        {"shop-dee"},  # invited
        {"shop-dee"},  # renamed
        {"shop-dee"},  # joined a team
        {"shop-dee"},  # left it
        {"shop-dee"},  # deactivated
        set(),  # a new link changes nothing the directory says
        {"shop-dee"},  # active again
    ]
