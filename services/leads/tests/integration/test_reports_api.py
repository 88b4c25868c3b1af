"""The leads reports on a real Postgres: rows inserted directly (a realistic mix of teams,
agents, validation levels, sources, rules, outcomes, merged leads and another site's leads),
the figures recomputed in Python from the same rows and compared; SLA states hand-labelled;
window edges on the site's clock; then the HTTP edge (JSON, CSV, who sees what, bad input)."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from leads.api.deps import Caller, current_agent
from leads.config import Settings
from leads.main import create_app
from leads.reports import service
from leads.runtime import Runtime
from leads.uow import UnitOfWorkFactory
from leads_testing import unique

pytestmark = pytest.mark.integration

HELSINKI = ZoneInfo("Europe/Helsinki")
FROM, TO = date(2025, 3, 10), date(2025, 3, 17)  # [10 March, 17 March) in Helsinki
START = datetime(2025, 3, 10, tzinfo=HELSINKI)
END = datetime(2025, 3, 17, tzinfo=HELSINKI)
NOW = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)
AGENTS = {"sales": ["anna", "bert", "cecilia"], "service": ["dmitri", "eeva"]}


# ---- rows -----------------------------------------------------------------------------------


@dataclass
class Row:
    """One `leads.leads` row as the reports read it."""

    created_at: datetime
    team: str | None = "sales"
    assignee: str | None = None
    validation: str = "qualified"
    source: str = "chat"
    rule_id: str | None = None
    campaign: str | None = None
    status: str = "new"
    assigned_at: datetime | None = None
    first_contact_at: datetime | None = None
    closed_at: datetime | None = None
    order_value: Decimal | None = None
    currency: str | None = None
    merged_into: UUID | None = None
    lead_id: UUID = field(default_factory=uuid4)


@dataclass
class Timer:
    lead_id: UUID
    due_at: datetime
    kind: str = "breach"
    at_percent: int = 100
    fired_at: datetime | None = None
    cancelled_at: datetime | None = None


async def insert(conn: asyncpg.Connection, site: str, rows: Iterable[Row]) -> None:
    """The rows, survivors before the leads merged into them."""
    ordered = sorted(rows, key=lambda row: row.merged_into is not None)
    await conn.executemany(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, status, validation, team,
               assignee, source, rule_id, campaign, order_value, currency, lost_reason,
               merged_into, created_at, assigned_at, first_contact_at, closed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                   CASE WHEN $4 = 'lost' THEN 'no_answer' END, $13, $14, $15, $16, $17)""",
        [
            (
                row.lead_id,
                site,
                f"v-{row.lead_id}",
                row.status,
                row.validation,
                row.team,
                row.assignee,
                row.source,
                row.rule_id,
                row.campaign,
                row.order_value,
                row.currency,
                row.merged_into,
                row.created_at,
                row.assigned_at,
                row.first_contact_at,
                row.closed_at,
            )
            for row in ordered
        ],
    )


async def insert_timers(conn: asyncpg.Connection, site: str, timers: Iterable[Timer]) -> None:
    await conn.executemany(
        """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, deadline_at, due_at,
               fired_at, cancelled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (t.lead_id, site, t.kind, t.at_percent, t.due_at, t.due_at, t.fired_at, t.cancelled_at)
            for t in timers
        ],
    )


async def new_site(conn: asyncpg.Connection, timezone: str | None = "Europe/Helsinki") -> str:
    site = unique("site")
    if timezone is not None:
        await conn.execute(
            "INSERT INTO leads.sites (site_id, timezone) VALUES ($1, $2)", site, timezone
        )
    return site


def mix(rng: random.Random, count: int) -> list[Row]:
    """Leads as a week of a store makes them: mostly contacted within minutes to hours, some
    never, some won (EUR, SEK, a few without currency), some lost or recycled, a few merged
    into an earlier lead, a few reassigned after the call; and some outside the window."""
    rows: list[Row] = []
    for _ in range(count):
        team = rng.choice(["sales", "sales", "service", None])
        created = START + timedelta(seconds=rng.randrange(-86_400, 8 * 86_400))
        row = Row(
            created_at=created,
            team=team,
            validation=rng.choice(["contact_only", "interested", "qualified", "ready_to_buy"]),
            source=rng.choice(["chat", "chat", "email_capture", "offline_message"]),
            rule_id=rng.choice([None, "cart-rescue", "b2b-pricing"]),
            campaign=rng.choice([None, "spring-sale"]),
        )
        if team is not None and rng.random() < 0.9:
            row.assignee = rng.choice(AGENTS[team])
            row.assigned_at = created + timedelta(seconds=rng.uniform(0, 300))
            row.status = "assigned"
            if rng.random() < 0.8:
                row.first_contact_at = created + timedelta(seconds=rng.expovariate(1 / 1800))
                if rng.random() < 0.1:  # handed on after the call
                    row.assigned_at = row.first_contact_at + timedelta(minutes=5)
                row.status = rng.choice(
                    ["contacted", "qualified", "won", "won", "lost", "recycled"]
                )
        elif rng.random() < 0.3:
            row.status = "lost"
        if row.status in ("won", "lost", "recycled"):
            row.closed_at = created + timedelta(days=2)
        if row.status == "won" and rng.random() < 0.9:
            row.order_value = Decimal(rng.randrange(1_000, 500_000)) / 100
            row.currency = rng.choice(["EUR", "EUR", "SEK", None])
        rows.append(row)
    for row in rng.sample(rows, count // 10):  # merged into the (earlier) first lead
        if row is not rows[0]:
            row.merged_into = rows[0].lead_id
    return rows


# ---- the same figures, in Python -------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (what `percentile_cont` means)."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def counted(rows: list[Row], teams: set[str] | None = None) -> list[Row]:
    return [
        row
        for row in rows
        if START <= row.created_at < END
        and row.merged_into is None
        and (teams is None or row.team in teams)
    ]


def grouped(rows: list[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def expected_speed(rows: list[Row]) -> dict[str, Any]:
    waits = [
        (r.first_contact_at - r.created_at).total_seconds() for r in rows if r.first_contact_at
    ]
    after = [
        (r.first_contact_at - r.assigned_at).total_seconds()
        for r in rows
        if r.first_contact_at and r.assigned_at and r.first_contact_at >= r.assigned_at
    ]
    return {
        "leads": len(rows),
        "contacted": len(waits),
        "median_s": percentile(waits, 0.5),
        "p90_s": percentile(waits, 0.9),
        "median_after_assignment_s": percentile(after, 0.5),
        "p90_after_assignment_s": percentile(after, 0.9),
    }


def assert_figures(actual: Any, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = getattr(actual, name)
        if value is None or isinstance(value, int):
            assert got == value, name
        else:
            assert got == pytest.approx(value, abs=1e-3), name


def admin(site: str) -> Caller:
    return Caller(site_id=site, agent_id="boss", role="admin")


def uow_of(pool: asyncpg.Pool) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(pool, on_commit=lambda: None)


@pytest.fixture
async def store_week(leads_pool):
    """A site in Helsinki with a week of mixed leads, and another site with the same teams
    and agents whose leads must never show."""
    rng = random.Random(15)
    rows = mix(rng, 240)
    async with leads_pool.acquire() as conn:
        site = await new_site(conn)
        await insert(conn, site, rows)
        other = await new_site(conn)
        await insert(conn, other, mix(random.Random(16), 80))
        await conn.execute(
            "INSERT INTO leads.teams (site_id, team, name) VALUES ($1, 'sales', 'Myynti')", site
        )
    return site, rows


# ---- speed to lead ---------------------------------------------------------------------------


@pytest.mark.parametrize(("by", "attribute"), [("team", "team"), ("agent", "assignee")])
async def test_speed_to_lead_medians_and_p90_match_the_rows(leads_pool, store_week, by, attribute):
    site, rows = store_week
    report = await service.speed_to_lead(
        uow=uow_of(leads_pool), caller=admin(site), by=by, from_day=FROM, to_day=TO, now=NOW
    )
    in_window = counted(rows)
    expected = grouped(in_window, lambda row: getattr(row, attribute))
    assert {row.key for row in report.rows} == set(expected)
    for row in report.rows:
        assert_figures(row, expected_speed(expected[row.key]))
        assert row.uncontacted == row.leads - row.contacted
    assert_figures(report.total, expected_speed(in_window))
    # the mix is big enough for the figures to mean something
    assert report.total.contacted > 50
    assert report.total.p90_s > report.total.median_s > 0
    if by == "team":
        assert {row.key: row.name for row in report.rows}["sales"] == "Myynti"


async def test_an_agent_sees_only_their_teams_leads(leads_pool, store_week):
    site, rows = store_week
    eeva = Caller(site_id=site, agent_id="eeva", role="agent", teams=("service",))
    report = await service.speed_to_lead(
        uow=uow_of(leads_pool), caller=eeva, by="agent", from_day=FROM, to_day=TO, now=NOW
    )
    mine = counted(rows, {"service"})
    assert {row.key for row in report.rows} == {row.assignee for row in mine}
    assert_figures(report.total, expected_speed(mine))


# ---- conversion and revenue ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "attribute"),
    [("validation", "validation"), ("source", "source"), ("rule", "rule_id"), ("team", "team")],
)
async def test_conversion_and_revenue_per_currency_match_the_rows(
    leads_pool, store_week, by, attribute
):
    site, rows = store_week
    report = await service.conversion(
        uow=uow_of(leads_pool), caller=admin(site), by=by, from_day=FROM, to_day=TO, now=NOW
    )
    in_window = counted(rows)
    expected = grouped(in_window, lambda row: getattr(row, attribute))
    assert {row.key for row in report.rows} == set(expected)

    def outcome(group: list[Row]) -> dict[str, Any]:
        won = sum(row.status == "won" for row in group)
        lost = sum(row.status == "lost" for row in group)
        revenue: dict[str, Decimal] = defaultdict(Decimal)
        for row in group:
            if row.status == "won" and row.order_value is not None:
                revenue[row.currency or "XXX"] += row.order_value
        return {
            "leads": len(group),
            "contacted": sum(row.first_contact_at is not None for row in group),
            "qualified": sum(row.status in ("qualified", "won") for row in group),
            "won": won,
            "lost": lost,
            "recycled": sum(row.status == "recycled" for row in group),
            "win_rate": round(won / (won + lost), 4) if won + lost else None,
            "revenue": dict(sorted(revenue.items())),
        }

    for row in [*report.rows, report.total]:
        group = in_window if row is report.total else expected[row.key]
        want = outcome(group)
        assert {m.currency: m.amount for m in row.revenue} == want.pop("revenue")
        assert {name: getattr(row, name) for name in want} == want
    # money never added across currencies, and each currency is there
    assert report.currencies == ["EUR", "SEK", "XXX"]


async def test_merged_leads_never_count(leads_pool):
    async with leads_pool.acquire() as conn:
        site = await new_site(conn)
        survivor = Row(created_at=START + timedelta(hours=1))
        merged = Row(
            created_at=START + timedelta(hours=2),
            assignee="anna",
            assigned_at=START + timedelta(hours=2),
            first_contact_at=START + timedelta(hours=2, seconds=30),
            status="won",
            closed_at=START + timedelta(hours=3),
            order_value=Decimal("500.00"),
            currency="EUR",
            merged_into=survivor.lead_id,
        )
        await insert(conn, site, [survivor, merged])
    uow, caller = uow_of(leads_pool), admin(site)
    speed = await service.speed_to_lead(uow=uow, caller=caller, from_day=FROM, to_day=TO)
    assert (speed.total.leads, speed.total.contacted, speed.total.median_s) == (1, 0, None)
    sold = await service.conversion(uow=uow, caller=caller, from_day=FROM, to_day=TO)
    assert (sold.total.won, sold.total.revenue, sold.currencies) == (0, [], [])


# ---- SLA compliance --------------------------------------------------------------------------


async def test_sla_met_breached_and_pending_per_lead(leads_pool):
    """Each lead's state written out by hand, judged at NOW."""
    at = START + timedelta(days=1)
    labelled: list[tuple[str, Row, list[Timer]]] = []

    def lead(label: str, team: str, timers: Callable[[UUID], list[Timer]], **row: Any) -> None:
        made = Row(created_at=at, team=team, **row)
        labelled.append((label, made, timers(made.lead_id)))

    due = at + timedelta(minutes=5)
    called = {"assignee": "anna", "assigned_at": at, "status": "contacted"}
    lead(
        "met",
        "sales",
        lambda i: [Timer(i, due, cancelled_at=due - timedelta(minutes=1))],
        first_contact_at=due - timedelta(minutes=1),
        **called,
    )
    lead(
        "breached",
        "sales",
        lambda i: [Timer(i, due, fired_at=due)],
        first_contact_at=due + timedelta(minutes=9),
        **called,
    )
    # the worker has not fired it yet, but it is due and nobody called: breached
    lead(
        "breached",
        "sales",
        lambda i: [Timer(i, due)],
        assignee="bert",
        assigned_at=at,
        status="assigned",
    )
    # due after NOW and nobody called yet: pending
    lead(
        "pending",
        "sales",
        lambda i: [Timer(i, NOW + timedelta(hours=1))],
        assignee="bert",
        assigned_at=at,
        status="assigned",
    )
    # contacted in time while the timer was still live (its stop not yet committed): met
    lead(
        "met",
        "service",
        lambda i: [Timer(i, due)],
        first_contact_at=due - timedelta(seconds=1),
        **called,
    )
    # contacted late, timer still live: breached
    lead(
        "breached",
        "service",
        lambda i: [Timer(i, due)],
        first_contact_at=due + timedelta(seconds=1),
        **called,
    )
    # closed (lost) before its deadline without a call: the SLA stopped in time
    lead(
        "met",
        "service",
        lambda i: [Timer(i, due)],
        status="lost",
        closed_at=due - timedelta(minutes=2),
    )
    # breached once, reassigned with a new deadline that was then met: still breached
    lead(
        "breached",
        "service",
        lambda i: [
            Timer(i, due, fired_at=due),
            Timer(i, due + timedelta(minutes=30), cancelled_at=due + timedelta(minutes=10)),
        ],
        first_contact_at=due + timedelta(minutes=10),
        **called,
    )
    # no deadline at all (no timer): counted as a lead, not in compliance
    lead("none", "service", lambda i: [], status="new")
    # a fired warning, then contacted in time
    lead(
        "met",
        "sales",
        lambda i: [
            Timer(i, due - timedelta(minutes=1), kind="warning", at_percent=80, fired_at=due),
            Timer(i, due, cancelled_at=due - timedelta(seconds=30)),
        ],
        first_contact_at=due - timedelta(seconds=30),
        **called,
    )
    async with leads_pool.acquire() as conn:
        site = await new_site(conn)
        await insert(conn, site, [row for _, row, _ in labelled])
        await insert_timers(conn, site, [t for _, _, timers in labelled for t in timers])
        # another site's breach for a lead of the same team never shows
        other = await new_site(conn)
        stranger = Row(created_at=at, team="sales")
        await insert(conn, other, [stranger])
        await insert_timers(conn, other, [Timer(stranger.lead_id, due, fired_at=due)])

    report = await service.sla_compliance(
        uow=uow_of(leads_pool), caller=admin(site), by="team", from_day=FROM, to_day=TO, now=NOW
    )
    for team in ("sales", "service", None):
        labels = [label for label, row, _ in labelled if team is None or row.team == team]
        figures = report.total if team is None else {r.key: r for r in report.rows}[team]
        want = {state: labels.count(state) for state in ("met", "breached", "pending")}
        assert {state: getattr(figures, state) for state in want} == want, team
        assert figures.leads == len(labels)
        assert figures.with_sla == len(labels) - labels.count("none")
        met, breached = want["met"], want["breached"]
        assert figures.compliance == pytest.approx(met / (met + breached), abs=1e-4)
    assert report.total.warned == 1
    assert (report.total.met, report.total.breached, report.total.pending) == (4, 4, 1)


# ---- the window on the site's clock ----------------------------------------------------------


async def test_the_window_edges_are_the_sites_midnights(leads_pool):
    edges = {
        "before": datetime(2025, 3, 9, 21, 59, 59, tzinfo=UTC),  # 23:59:59 on 9 March there
        "first": datetime(2025, 3, 9, 22, 0, tzinfo=UTC),  # 00:00 on 10 March in Helsinki
        "last": datetime(2025, 3, 16, 21, 30, tzinfo=UTC),  # 23:30 on 16 March there
        "next day": datetime(2025, 3, 16, 23, 30, tzinfo=UTC),  # 01:30 on 17 March there
    }
    # each lead's source names its edge, so a report by source says which ones counted
    async with leads_pool.acquire() as conn:
        helsinki = await new_site(conn, "Europe/Helsinki")
        utc = await new_site(conn, None)  # no settings: UTC
        for site in (helsinki, utc):
            await insert(
                conn, site, [Row(created_at=at, source=name) for name, at in edges.items()]
            )
    uow = uow_of(leads_pool)

    async def counted_edges(site: str, first: date, end: date) -> set[str | None]:
        report = await service.conversion(
            uow=uow, caller=admin(site), by="source", from_day=first, to_day=end
        )
        assert report.total.leads == len(report.rows)
        return {row.key for row in report.rows}

    assert await counted_edges(helsinki, FROM, TO) == {"first", "last"}
    # 23:30 UTC on the 16th is the 17th in Helsinki: the next day holds it
    assert await counted_edges(helsinki, TO, TO + timedelta(days=1)) == {"next day"}
    # on UTC the same instants fall on other days
    assert await counted_edges(utc, FROM, TO) == {"last", "next day"}
    assert await counted_edges(utc, FROM - timedelta(days=1), FROM) == {"before", "first"}
    report = await service.speed_to_lead(uow=uow, caller=admin(helsinki), from_day=FROM, to_day=TO)
    assert report.window.starts_at == edges["first"]
    assert report.window.timezone == "Europe/Helsinki"


# ---- the HTTP edge ---------------------------------------------------------------------------


@pytest.fixture
def http(leads_pool):
    """`http(caller)`: a client of the app (no lifespan) whose session is `caller`'s (None:
    the stub's answer, nobody)."""
    app = create_app(Settings(environment="test"))
    app.state.leads = Runtime(
        settings=Settings(environment="test"),
        pool=leads_pool,
        uow=uow_of(leads_pool),
        bus=None,  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
        ready=True,
    )

    def client(caller: Caller | None) -> httpx.AsyncClient:
        app.dependency_overrides.clear()
        if caller is not None:
            app.dependency_overrides[current_agent] = lambda: caller
        transport = httpx.ASGITransport(app=app)
        return httpx.AsyncClient(transport=transport, base_url="http://leads")

    return client


WEEK = {"from": FROM.isoformat(), "to": TO.isoformat()}


async def test_each_report_answers_its_documented_json(http, store_week):
    site, rows = store_week
    async with http(admin(site)) as client:
        speed = await client.get("/v1/leads/reports/speed", params={**WEEK, "by": "agent"})
        sla = await client.get("/v1/leads/reports/sla", params={**WEEK, "by": "validation"})
        sold = await client.get("/v1/leads/reports/conversion", params={**WEEK, "by": "source"})
    assert speed.status_code == sla.status_code == sold.status_code == 200, speed.text
    body = speed.json()
    assert body["window"] == {
        "from": "2025-03-10",
        "to": "2025-03-17",
        "timezone": "Europe/Helsinki",
        "starts_at": "2025-03-09T22:00:00Z",
        "ends_at": "2025-03-16T22:00:00Z",
    }
    assert body["report"] == "speed"
    assert body["by"] == "agent"
    assert body["total"]["leads"] == len(counted(rows))
    assert sla.json()["total"]["leads"] == len(counted(rows))
    assert {r["key"] for r in sla.json()["rows"]} <= {
        "contact_only",
        "interested",
        "qualified",
        "ready_to_buy",
    }
    money = sold.json()["total"]["revenue"]
    assert [m["currency"] for m in money] == ["EUR", "SEK", "XXX"]
    assert all(isinstance(m["amount"], str) for m in money)  # exact decimals


async def test_an_agent_gets_their_teams_rows_and_is_refused_another_team(http, store_week):
    site, rows = store_week
    anna = Caller(site_id=site, agent_id="anna", role="agent", teams=("sales",))
    async with http(anna) as client:
        mine = await client.get("/v1/leads/reports/conversion", params={**WEEK, "by": "team"})
        other = await client.get("/v1/leads/reports/speed", params={**WEEK, "team": "service"})
    assert [row["key"] for row in mine.json()["rows"]] == ["sales"]
    assert mine.json()["total"]["leads"] == len(counted(rows, {"sales"}))
    assert other.status_code == 403
    assert other.json()["error"] == "not_your_team"


async def test_another_sites_caller_sees_none_of_these_leads(http, store_week):
    async with http(admin(unique("site"))) as client:
        answer = await client.get("/v1/leads/reports/speed", params=WEEK)
    assert answer.status_code == 200
    assert answer.json()["rows"] == []
    assert answer.json()["total"]["leads"] == 0


async def test_every_report_needs_a_console_session(http):
    async with http(None) as client:
        for path in ("speed", "sla", "conversion"):
            answer = await client.get(f"/v1/leads/reports/{path}")
            assert answer.status_code == 401, path


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-10", "to": "2025-03-10"}, "to: "),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "to: "),
        ({"from": "2024-01-01", "to": "2025-01-02"}, "to: "),
        ({"from": "2025-13-01", "to": "2025-03-10"}, "query.from: "),
        ({"from": "2025-03-01", "to": "next week"}, "query.to: "),
        ({"by": "planet"}, "query.by: "),
        ({"format": "xlsx"}, "query.format: "),
    ],
)
async def test_a_bad_window_or_parameter_is_a_422_naming_the_field(http, params, field):
    async with http(admin(unique("site"))) as client:
        answer = await client.get("/v1/leads/reports/sla", params=params)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(field), answer.json()


async def test_csv_downloads_defuse_formula_cells(http, leads_pool):
    async with leads_pool.acquire() as conn:
        site = await new_site(conn)
        await insert(
            conn,
            site,
            [
                Row(
                    created_at=START + timedelta(hours=1),
                    source='=HYPERLINK("http://x","y")',
                    status="won",
                    assignee="anna",
                    assigned_at=START + timedelta(hours=1),
                    first_contact_at=START + timedelta(hours=1, minutes=3),
                    closed_at=START + timedelta(days=1),
                    order_value=Decimal("19.90"),
                    currency="EUR",
                ),
                Row(created_at=START + timedelta(hours=2), source="@SUM(A1:A9)", team="+team"),
            ],
        )
    async with http(admin(site)) as client:
        answers = {
            path: await client.get(
                f"/v1/leads/reports/{path}", params={**WEEK, "by": by, "format": "csv"}
            )
            for path, by in [("conversion", "source"), ("speed", "team"), ("sla", "team")]
        }
    for path, answer in answers.items():
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="beckon-leads-{path}-2025-03-10-2025-03-17.csv"'
        )
    sold = list(csv.reader(io.StringIO(answers["conversion"].text)))
    assert sold[0][:3] == ["total", "source", "name"]
    assert sold[0][-2:] == [
        "orders_EUR",
        "revenue_EUR",
    ]
    keys = {line[1]: line for line in sold[1:-1]}
    assert set(keys) == {'\'=HYPERLINK("http://x","y")', "'@SUM(A1:A9)"}
    assert keys['\'=HYPERLINK("http://x","y")'][-2:] == ["1", "19.90"]
    assert sold[-1][0] == "true"
    speed = list(csv.reader(io.StringIO(answers["speed"].text)))
    assert speed[0][3:7] == ["leads", "contacted", "uncontacted", "median_s"]
    teams = {line[1]: line[3:7] for line in speed[1:-1]}
    assert teams == {"sales": ["1", "1", "0", "180.0"], "'+team": ["1", "0", "1", ""]}
