"""The reports' use cases on a fake unit of work: the period, who sees which rows, names and
team sizes, the CSV files, and the rules' report with or without its reader."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest
from beckon_contracts.rules import SiteRules
from chat.errors import Invalid, NotAuthenticated
from chat.features import NoRules
from chat.refs import AgentRef
from chat.reports import service
from chat.reports.consumer import RuleStatsReader
from chat.reports.domain import Attribution, Conversation, Order, Period, Report, attribute
from chat.reports.service import Span
from chat.reports.stats import RuleStatsBook
from chat.reports.store import Loaded, ReportsStore
from fake_uow import FakeUnitsOfWork

SITE = "s1"
ANN = AgentRef(SITE, "ann")  # an admin
BOB = AgentRef(SITE, "bob")  # an agent
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MARCH = Span("2026-03-01", "2026-03-10", NOW)


def _conversation(cid: str, agent: str, team: str, hours_ago: int) -> Conversation:
    created = NOW - timedelta(hours=hours_ago)
    return Conversation(
        conversation_id=cid,
        visitor_id=f"v-{cid}",
        agent_id=agent,
        team=team,
        created_at=created,
        assigned_at=created,
        closed_at=created + timedelta(minutes=10),
    )


class FakeReports:
    """ReportsStore's methods on fixed data; remembers what it was asked."""

    def __init__(self) -> None:
        self.roles = {"ann": "admin", "bob": "agent"}
        self.conversations = [
            _conversation("c1", "ann", "sales", 5),
            _conversation("c2", "bob", "sales", 4),
            _conversation("c3", "bob", "support", 3),
        ]
        self.orders = [
            Order("o1", "v-c2", NOW - timedelta(hours=1), Decimal("40.00"), "EUR", "server"),
            Order("o2", "v-x", NOW - timedelta(hours=1), Decimal("60.00"), "EUR", "server"),
            Order("o3", "v-x", NOW - timedelta(hours=1), Decimal("999999999"), "EUR", "browser"),
        ]
        self.truncated = False
        self.asked: list[tuple[str, Period, timedelta, datetime]] = []

    async def role(self, site_id: str, agent_id: str) -> str | None:
        return self.roles.get(agent_id)

    async def names(self, site_id: str) -> tuple[dict[str, str], dict[str, str]]:
        return (
            {"ann": "Ann", "bob": "=Bob", "cid": "Cid"},  # Bob's name would run as a formula
            {"sales": "Sales", "support": "Support", "empty": "Nobody"},
        )

    async def team_members(self, site_id: str) -> dict[str, int]:
        return {"sales": 2, "support": 1}

    def _attributions(self) -> list[Attribution]:
        return attribute(self.orders, self.conversations, window=timedelta(days=7), now=NOW)

    async def group_report(
        self, site_id: str, report: Report, period: Period, *, window: timedelta, now: datetime
    ) -> bool:
        self.asked.append((site_id, period, window, now))
        for conversation in self.conversations:
            report.add_conversation(conversation, [])
        report.add_orders(self._attributions())
        return self.truncated

    async def assisted(
        self, site_id: str, period: Period, *, window: timedelta, now: datetime
    ) -> Loaded:
        self.asked.append((site_id, period, window, now))
        return Loaded(self._attributions(), self.truncated)


@pytest.fixture
def reports() -> FakeReports:
    return FakeReports()


@pytest.fixture
def uow(reports: FakeReports) -> FakeUnitsOfWork:
    return FakeUnitsOfWork({ReportsStore: reports})


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("first", "last", "detail"),
    [
        ("2026-03-05", "2026-03-01", "to: to (2026-03-01) is before from (2026-03-05)"),
        ("2025-01-01", "2026-03-01", "to: the period spans 425 days; at most 366"),
        ("yesterday", None, "from: from must be a date as YYYY-MM-DD, not 'yesterday'"),
    ],
)
async def test_a_period_the_reports_cannot_cover_is_refused_before_any_query(
    uow: FakeUnitsOfWork, reports: FakeReports, first: str, last: str | None, detail: str
) -> None:
    for report in (service.agents_report, service.assisted_report):
        with pytest.raises(Invalid) as refused:
            await report(uow=uow, agent=ANN, span=Span(first, last, NOW), window_days=7)
        assert (refused.value.code, refused.value.detail) == ("invalid_period", detail)
    with pytest.raises(Invalid) as refused:
        await service.teams_report(uow=uow, admin=ANN, span=Span(first, last, NOW), window_days=7)
    assert (refused.value.code, refused.value.detail) == ("invalid_period", detail)
    assert uow.reads == 0
    assert reports.asked == []


async def test_the_default_period_is_the_last_week_to_today(
    uow: FakeUnitsOfWork, reports: FakeReports
) -> None:
    answer = await service.assisted_report(
        uow=uow, agent=BOB, span=Span(None, None, NOW), window_days=14
    )
    assert answer["period"] == {"from": "2026-03-04", "to": "2026-03-10"}
    assert answer["attribution_window_days"] == 14
    [(site, period, window, now)] = reports.asked
    assert (site, period, window, now) == (
        SITE,
        Period(date(2026, 3, 4), date(2026, 3, 10)),
        timedelta(days=14),
        NOW,
    )
    assert (answer["orders"], answer["orders_assisted"]) == (2, 1)
    assert uow.committed == []  # reading only


async def test_an_admin_sees_every_agent_and_an_agent_only_their_own_row(
    uow: FakeUnitsOfWork,
) -> None:
    everyone = await service.agents_report(
        uow=uow, agent=ANN, span=Span(None, None, NOW), window_days=7
    )
    by_agent = {row["agent"]: row for row in everyone["agents"]}
    assert set(by_agent) == {"ann", "bob", "cid"}  # Cid has nothing to show, still a row
    assert (by_agent["bob"]["name"], by_agent["bob"]["conversations"]) == ("=Bob", 2)
    assert by_agent["cid"]["conversations"] == 0
    assert everyone["currencies"] == ["EUR"]
    own = await service.agents_report(uow=uow, agent=BOB, span=Span(None, None, NOW), window_days=7)
    assert [row["agent"] for row in own["agents"]] == ["bob"]


async def test_an_agent_who_is_gone_is_told_to_log_in_again(uow: FakeUnitsOfWork) -> None:
    with pytest.raises(NotAuthenticated) as gone:
        await service.agents_report(
            uow=uow, agent=AgentRef(SITE, "zed"), span=Span(None, None, NOW), window_days=7
        )
    assert (gone.value.code, gone.value.detail) == ("unknown_agent", "log in again")


async def test_teams_have_their_names_and_sizes_and_a_truncated_read_says_so(
    uow: FakeUnitsOfWork, reports: FakeReports
) -> None:
    reports.truncated = True
    answer = await service.teams_report(
        uow=uow, admin=ANN, span=Span("2026-03-01", "2026-03-10", NOW), window_days=7
    )
    rows = {row["team"]: row for row in answer["teams"]}
    assert {team: (row["name"], row["members"]) for team, row in rows.items()} == {
        "sales": ("Sales", 2),
        "support": ("Support", 1),
        "empty": ("Nobody", 0),
    }
    assert rows["sales"]["conversations"] == 2
    assert answer["truncated"]


async def test_the_csv_files_are_named_after_the_period_and_defuse_formulas(
    uow: FakeUnitsOfWork,
) -> None:
    agents = service.agents_csv(
        await service.agents_report(uow=uow, agent=ANN, span=MARCH, window_days=7)
    )
    assert agents.filename == "beckon-agents-2026-03-01-2026-03-10.csv"
    rows = {row["agent"]: row for row in _rows(agents.text)}
    assert rows["bob"]["name"] == "'=Bob"
    assert rows["bob"]["conversations"] == "2"
    assert "revenue_EUR" in rows["bob"]
    teams = service.teams_csv(
        await service.teams_report(uow=uow, admin=ANN, span=MARCH, window_days=7)
    )
    assert teams.filename == "beckon-teams-2026-03-01-2026-03-10.csv"
    assert {row["team"]: row["members"] for row in _rows(teams.text)}["sales"] == "2"
    assisted = service.assisted_csv(
        await service.assisted_report(uow=uow, agent=BOB, span=MARCH, window_days=7)
    )
    assert assisted.filename == "beckon-assisted-2026-03-01-2026-03-10.csv"
    eur, total, browser_eur, browser_total = _rows(assisted.text)
    assert (eur["currency"], eur["orders"], eur["orders_assisted"]) == ("EUR", "2", "1")
    assert (eur["revenue"], eur["reported_by"]) == ("100.0", "server")
    assert (total["currency"], total["orders"], total["revenue"]) == ("ALL", "2", "")
    assert (browser_eur["revenue"], browser_eur["reported_by"]) == ("999999999.0", "browser")
    assert (browser_total["orders"], browser_total["reported_by"]) == ("1", "browser")


class _Reader:
    def __init__(self, caught_up: bool) -> None:
        self.book = RuleStatsBook()
        self.caught_up = asyncio.Event()
        if caught_up:
            self.caught_up.set()


class _Rules:
    def __init__(self, rules: SiteRules) -> None:
        self.rules = rules

    def current(self, site_id: str) -> SiteRules | None:
        return self.rules if site_id == self.rules.site_id else None


def test_the_rules_report_says_when_it_is_still_loading_and_whether_it_has_names() -> None:
    rules = SiteRules.model_validate(
        {
            "site_id": SITE,
            "rules": [
                {"id": "r1", "name": "Big carts", "message": "Hi", "when": {"page_type": "cart"}}
            ],
        }
    )
    loading = service.rules_report(reader=None, rules=NoRules(), admin=ANN)
    assert (loading["loading"], loading["named"], loading["rules"]) == (True, False, [])
    reader = cast(RuleStatsReader, _Reader(caught_up=True))
    named = service.rules_report(reader=reader, rules=_Rules(rules), admin=ANN)
    assert (named["loading"], named["named"]) == (False, True)
    behind = service.rules_report(
        reader=cast(RuleStatsReader, _Reader(caught_up=False)), rules=_Rules(rules), admin=ANN
    )
    assert behind["loading"]
    file = service.rules_csv(named)
    assert file.filename == "beckon-rules.csv"
    assert file.text.startswith("rule_id,name,enabled,")
