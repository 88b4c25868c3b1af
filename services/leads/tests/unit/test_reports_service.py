"""The reports' use cases without Postgres: who sees which leads, windows refused with the
field named, totals and CSV files built from what the store answers (a fake here; the SQL
itself is tested on Postgres in integration/test_reports_api.py)."""

from __future__ import annotations

import csv
import io
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from beckon_edge.refusals import Forbidden, Invalid
from leads.api.deps import Caller
from leads.reports import service
from leads.reports.store import Scope

ADMIN = Caller(site_id="s1", agent_id="boss", role="admin", teams=())
ANNA = Caller(site_id="s1", agent_id="anna", role="agent", teams=("sales", "b2b"))
NOW = datetime(2025, 3, 16, 23, 30, tzinfo=UTC)  # 17 March in Helsinki


def _record(key, is_total=False, **figures):
    return {"key": key, "is_total": is_total, **figures}


class FakeStore:
    def __init__(self, timezone=None, *, speed=(), sla=(), conversion=(), revenue=()):
        self.zone = timezone
        self.answers = {"speed": speed, "sla": sla, "conversion": conversion, "revenue": revenue}
        self.scopes: list[Scope] = []

    async def timezone(self, site_id):
        return self.zone

    async def names(self, site_id, by):
        return {"sales": "Sales", "anna": "Anna A."}

    async def speed(self, scope, by):
        self.scopes.append(scope)
        return list(self.answers["speed"])

    async def sla(self, scope, by, *, now):
        self.scopes.append(scope)
        return list(self.answers["sla"])

    async def conversion(self, scope, by):
        self.scopes.append(scope)
        return list(self.answers["conversion"])

    async def revenue(self, scope, by):
        return list(self.answers["revenue"])


class FakeUow:
    def __init__(self, store: FakeStore) -> None:
        self.the_store = store
        self.sites: list[str] = []

    @asynccontextmanager
    async def read(self, site_id):
        self.sites.append(site_id)
        yield self

    def store(self, kind):
        return self.the_store

    def __call__(self, site_id, *, teams=()):
        raise AssertionError("reports only read")


def _speed_answer():
    figures = dict(leads=3, contacted=2, median_s=60.0, p90_s=108.0)
    figures |= dict(median_after_assignment_s=50.0, p90_after_assignment_s=90.0)
    return [_record("sales", **figures), _record(None, True, **figures)]


def test_an_admin_sees_every_lead_or_the_team_asked_for():
    assert service.teams_in_view(ADMIN, None) is None
    assert service.teams_in_view(ADMIN, "service") == ("service",)


def test_an_agent_sees_their_teams_and_may_narrow_to_one_of_them():
    assert service.teams_in_view(ANNA, None) == ("sales", "b2b")
    assert service.teams_in_view(ANNA, "b2b") == ("b2b",)
    with pytest.raises(Forbidden) as refused:
        service.teams_in_view(ANNA, "service")
    assert refused.value.detail.startswith("team:")


async def test_the_window_is_counted_on_the_sites_clock_and_scoped_to_the_callers_site():
    store = FakeStore("Europe/Helsinki", speed=_speed_answer())
    uow = FakeUow(store)
    report = await service.speed_to_lead(uow=uow, caller=ANNA, now=NOW)  # type: ignore[arg-type]
    assert uow.sites == ["s1"]
    (scope,) = store.scopes
    assert scope.site_id == "s1"
    assert scope.teams == ("sales", "b2b")
    # today is 17 March in Helsinki: the 30 days up to and including it
    assert (report.window.from_, report.window.to) == (date(2025, 2, 16), date(2025, 3, 18))
    assert scope.end == datetime(2025, 3, 17, 22, 0, tzinfo=UTC)
    assert report.window.timezone == "Europe/Helsinki"


async def test_a_bad_window_is_refused_naming_the_field():
    uow = FakeUow(FakeStore())
    with pytest.raises(Invalid) as refused:
        await service.conversion(
            uow=uow,  # type: ignore[arg-type]
            caller=ADMIN,
            from_day=date(2025, 3, 10),
            to_day=date(2025, 3, 10),
            now=NOW,
        )
    assert refused.value.code == "invalid_window"
    assert refused.value.detail.startswith("to: ")
    assert refused.value.errors == [{"loc": "to", "msg": refused.value.detail[4:]}]


async def test_rows_and_total_come_apart_with_names_and_derived_counts():
    uow = FakeUow(FakeStore(speed=_speed_answer()))
    report = await service.speed_to_lead(uow=uow, caller=ADMIN, now=NOW)  # type: ignore[arg-type]
    (row,) = report.rows
    assert (row.key, row.name, row.uncontacted) == ("sales", "Sales", 1)
    assert report.total.key is None
    assert report.total.leads == 3


async def test_nothing_counted_still_answers_a_zero_total():
    report = await service.sla_compliance(uow=FakeUow(FakeStore()), caller=ADMIN, now=NOW)  # type: ignore[arg-type]
    assert report.rows == []
    assert report.total.leads == 0
    assert report.total.compliance is None
    assert report.as_of == NOW


async def test_compliance_leaves_pending_leads_out():
    counts = dict(leads=5, with_sla=4, met=2, breached=1, pending=1, warned=1)
    uow = FakeUow(FakeStore(sla=[_record("sales", **counts), _record(None, True, **counts)]))
    report = await service.sla_compliance(uow=uow, caller=ADMIN, now=NOW)  # type: ignore[arg-type]
    assert report.rows[0].compliance == pytest.approx(2 / 3, abs=1e-4)


def _conversion_store():
    counts = dict(leads=4, contacted=3, qualified=2, won=2, lost=1, recycled=0)
    return FakeStore(
        conversion=[
            _record('=HYPERLINK("http://x")', **counts),
            _record(None, **{**counts, "won": 0, "lost": 0}),
            _record(None, True, **{**counts, "leads": 8}),
        ],
        revenue=[
            _record('=HYPERLINK("http://x")', currency="EUR", orders=1, amount=Decimal("10.50")),
            _record('=HYPERLINK("http://x")', currency="SEK", orders=1, amount=Decimal("99")),
            _record(None, True, currency="EUR", orders=1, amount=Decimal("10.50")),
            _record(None, True, currency="SEK", orders=1, amount=Decimal("99")),
        ],
    )


async def test_conversion_keeps_revenue_per_currency_and_rates_undefined_without_outcomes():
    uow = FakeUow(_conversion_store())
    report = await service.conversion(uow=uow, caller=ADMIN, by="source", now=NOW)  # type: ignore[arg-type]
    assert report.currencies == ["EUR", "SEK"]
    first, no_source = report.rows
    assert [(m.currency, m.amount) for m in first.revenue] == [
        ("EUR", Decimal("10.50")),
        ("SEK", Decimal("99")),
    ]
    assert first.win_rate == pytest.approx(2 / 3, abs=1e-4)
    assert first.conversion_rate == 0.5
    assert no_source.key is None
    assert no_source.revenue == []
    assert no_source.win_rate is None
    assert report.total.leads == 8
    # money stays exact on the wire
    assert report.model_dump(mode="json", by_alias=True)["total"]["revenue"][0]["amount"] == (
        "10.50"
    )


async def test_the_conversion_csv_has_a_column_pair_per_currency_and_defused_cells():
    report = await service.conversion(
        uow=FakeUow(_conversion_store()),  # type: ignore[arg-type]
        caller=ADMIN,
        by="source",
        from_day=date(2025, 3, 1),
        to_day=date(2025, 3, 8),
        now=NOW,
    )
    file = service.conversion_csv(report)
    assert file.filename == "beckon-leads-conversion-2025-03-01-2025-03-08.csv"
    header, first, no_source, total = csv.reader(io.StringIO(file.text))
    assert header[:3] == ["total", "source", "name"]
    assert header[-4:] == ["orders_EUR", "revenue_EUR", "orders_SEK", "revenue_SEK"]
    assert first[:3] == ["false", '\'=HYPERLINK("http://x")', ""]
    assert first[-4:] == ["1", "10.50", "1", "99"]
    assert no_source[-4:] == ["0", "0", "0", "0"]
    assert total[0] == "true"
    assert total[3] == "8"


async def test_speed_and_sla_csv_end_with_the_total():
    uow = FakeUow(FakeStore(speed=_speed_answer()))
    report = await service.speed_to_lead(uow=uow, caller=ADMIN, by="team", now=NOW)  # type: ignore[arg-type]
    rows = list(csv.reader(io.StringIO(service.speed_csv(report).text)))
    assert rows[0] == ["total", "team", "name", *service.SPEED_COLUMNS]
    assert rows[1][:4] == ["false", "sales", "Sales", "3"]
    assert rows[-1][:4] == ["true", "", "", "3"]
    sla = await service.sla_compliance(uow=FakeUow(FakeStore()), caller=ADMIN, now=NOW)  # type: ignore[arg-type]
    assert list(csv.reader(io.StringIO(service.sla_csv(sla).text)))[-1][0] == "true"


def test_openapi_documents_each_reports_json_model_and_its_csv():
    from leads.config import Settings
    from leads.main import create_app

    schema = create_app(Settings(environment="test")).openapi()
    for path, model in [
        ("speed", "SpeedReport"),
        ("sla", "SlaReport"),
        ("conversion", "ConversionReport"),
    ]:
        route = schema["paths"][f"/v1/leads/reports/{path}"]["get"]
        answer = route["responses"]["200"]["content"]
        assert answer["application/json"]["schema"]["$ref"].endswith(f"/{model}")
        assert "text/csv" in answer
        assert {p["name"] for p in route["parameters"]} == {"from", "to", "by", "team", "format"}
    window = schema["components"]["schemas"]["ReportWindow"]["properties"]
    assert set(window) == {"from", "to", "timezone", "starts_at", "ends_at"}
