"""The reports' use cases, and each answer as a CSV file.

Who sees what: an admin sees every lead of their site (and may filter one `team`); an agent
sees the rows of their own teams' leads only (every agent of those teams, so a team can
compare itself), and asking for another team is refused. Leads without a team are admins'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from beckon_edge.refusals import Forbidden, Invalid
from beckon_edge.spreadsheet import to_csv

from leads.api.deps import Caller
from leads.reports.models import (
    ConversionBy,
    ConversionReport,
    ConversionRow,
    Money,
    ReportWindow,
    SlaBy,
    SlaReport,
    SlaRow,
    SpeedBy,
    SpeedReport,
    SpeedRow,
)
from leads.reports.store import ReportsStore, Scope
from leads.reports.window import Window, WindowError, today_in, window_of, zone_name
from leads.uow import UnitsOfWork

SPEED_COLUMNS = (
    "leads",
    "contacted",
    "uncontacted",
    "median_s",
    "p90_s",
    "median_after_assignment_s",
    "p90_after_assignment_s",
)
SLA_COLUMNS = ("leads", "with_sla", "met", "breached", "pending", "warned", "compliance")
CONVERSION_COLUMNS = (
    "leads",
    "contacted",
    "qualified",
    "won",
    "lost",
    "recycled",
    "win_rate",
    "conversion_rate",
)


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A report as a spreadsheet file: its name (with the window) and its text."""

    filename: str
    text: str


def teams_in_view(caller: Caller, team: str | None) -> tuple[str, ...] | None:
    """The teams whose leads `caller` may count (None: every lead of the site), narrowed to
    `team` if asked; an agent asking for another team is refused."""
    if team is not None:
        if not caller.admin and team not in caller.teams:
            raise Forbidden("not_your_team", f"team: you are not a member of team {team!r}")
        return (team,)
    return None if caller.admin else tuple(caller.teams)


def _window(
    store_zone: str | None, from_day: date | None, to_day: date | None, now: datetime
) -> Window:
    zone = zone_name(store_zone)
    try:
        return window_of(from_day, to_day, timezone=zone, today=today_in(zone, now))
    except WindowError as exc:
        message = f"{exc.field}: {exc}"
        raise Invalid(
            "invalid_window", message, errors=[{"loc": exc.field, "msg": str(exc)}]
        ) from None


def _window_model(window: Window) -> ReportWindow:
    return ReportWindow(
        from_=window.first_day,
        to=window.end_day,
        timezone=window.timezone,
        starts_at=window.start,
        ends_at=window.end,
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


async def _prepare(
    tx: Any,
    caller: Caller,
    *,
    from_day: date | None,
    to_day: date | None,
    team: str | None,
    now: datetime,
) -> tuple[ReportsStore, Window, Scope]:
    teams = teams_in_view(caller, team)
    store: ReportsStore = tx.store(ReportsStore)
    window = _window(await store.timezone(caller.site_id), from_day, to_day, now)
    return store, window, Scope(caller.site_id, window.start, window.end, teams)


def _split(records: Iterable[asyncpg.Record]) -> tuple[list[Any], Any]:
    rows, total = [], None
    for record in records:
        if record["is_total"]:
            total = record
        else:
            rows.append(record)
    return rows, total


async def speed_to_lead(
    *,
    uow: UnitsOfWork,
    caller: Caller,
    by: SpeedBy = "team",
    from_day: date | None = None,
    to_day: date | None = None,
    team: str | None = None,
    now: datetime | None = None,
) -> SpeedReport:
    """Median and p90 time to first contact of the window's leads, per team or agent."""
    now = now or datetime.now(UTC)
    async with uow.read(caller.site_id) as tx:
        store, window, scope = await _prepare(
            tx, caller, from_day=from_day, to_day=to_day, team=team, now=now
        )
        rows, total = _split(await store.speed(scope, by))
        names = await store.names(caller.site_id, by)

    def row(record: Any, key: str | None) -> SpeedRow:
        leads, contacted = (record["leads"], record["contacted"]) if record else (0, 0)
        return SpeedRow(
            key=key,
            name=names.get(key) if key is not None else None,
            leads=leads,
            contacted=contacted,
            uncontacted=leads - contacted,
            median_s=_seconds(record["median_s"]) if record else None,
            p90_s=_seconds(record["p90_s"]) if record else None,
            median_after_assignment_s=(
                _seconds(record["median_after_assignment_s"]) if record else None
            ),
            p90_after_assignment_s=_seconds(record["p90_after_assignment_s"]) if record else None,
        )

    return SpeedReport(
        window=_window_model(window),
        by=by,
        team=team,
        rows=[row(record, record["key"]) for record in rows],
        total=row(total, None),
    )


async def sla_compliance(
    *,
    uow: UnitsOfWork,
    caller: Caller,
    by: SlaBy = "team",
    from_day: date | None = None,
    to_day: date | None = None,
    team: str | None = None,
    now: datetime | None = None,
) -> SlaReport:
    """First-contact deadlines met, breached and pending (at `now`), per team, agent or
    validation level."""
    now = now or datetime.now(UTC)
    async with uow.read(caller.site_id) as tx:
        store, window, scope = await _prepare(
            tx, caller, from_day=from_day, to_day=to_day, team=team, now=now
        )
        rows, total = _split(await store.sla(scope, by, now=now))
        names = await store.names(caller.site_id, by)

    def row(record: Any, key: str | None) -> SlaRow:
        counts = {
            name: record[name] if record else 0
            for name in ("leads", "with_sla", "met", "breached", "pending", "warned")
        }
        return SlaRow(
            key=key,
            name=names.get(key) if key is not None else None,
            **counts,
            compliance=_ratio(counts["met"], counts["met"] + counts["breached"]),
        )

    return SlaReport(
        window=_window_model(window),
        by=by,
        team=team,
        as_of=now,
        rows=[row(record, record["key"]) for record in rows],
        total=row(total, None),
    )


async def conversion(
    *,
    uow: UnitsOfWork,
    caller: Caller,
    by: ConversionBy = "validation",
    from_day: date | None = None,
    to_day: date | None = None,
    team: str | None = None,
    now: datetime | None = None,
) -> ConversionReport:
    """Contacted, qualified, won and lost leads of the window, with win rates and revenue
    per currency, per validation level, source, rule, campaign, team or agent."""
    now = now or datetime.now(UTC)
    async with uow.read(caller.site_id) as tx:
        store, window, scope = await _prepare(
            tx, caller, from_day=from_day, to_day=to_day, team=team, now=now
        )
        rows, total = _split(await store.conversion(scope, by))
        revenue: dict[tuple[bool, str | None], list[Money]] = defaultdict(list)
        for money in await store.revenue(scope, by):
            key = (money["is_total"], None if money["is_total"] else money["key"])
            revenue[key].append(
                Money(currency=money["currency"], orders=money["orders"], amount=money["amount"])
            )
        names = await store.names(caller.site_id, by)

    def row(record: Any, key: str | None, is_total: bool) -> ConversionRow:
        counts = {
            name: record[name] if record else 0
            for name in ("leads", "contacted", "qualified", "won", "lost", "recycled")
        }
        return ConversionRow(
            key=key,
            name=names.get(key) if key is not None else None,
            **counts,
            win_rate=_ratio(counts["won"], counts["won"] + counts["lost"]),
            conversion_rate=_ratio(counts["won"], counts["leads"]),
            revenue=revenue.get((is_total, key), []),
        )

    total_row = row(total, None, True)
    return ConversionReport(
        window=_window_model(window),
        by=by,
        team=team,
        currencies=[money.currency for money in total_row.revenue],
        rows=[row(record, record["key"], False) for record in rows],
        total=total_row,
    )


# ---- CSV -------------------------------------------------------------------------------------


def _csv_file(
    name: str, window: ReportWindow, header: Sequence[str], rows: list[list[Any]]
) -> CsvFile:
    span = f"{window.from_.isoformat()}-{window.to.isoformat()}"
    return CsvFile(f"beckon-leads-{name}-{span}.csv", to_csv(header, rows))


def _table(rows: Sequence[Any], total: Any, columns: Sequence[str]) -> list[list[Any]]:
    """A row per group, then the total (`total` true); the group's key and name first."""
    return [
        [is_total, row.key, row.name, *(getattr(row, column) for column in columns)]
        for is_total, row in [*((False, row) for row in rows), (True, total)]
    ]


def speed_csv(report: SpeedReport) -> CsvFile:
    """The speed-to-lead report as CSV (the total as the last row)."""
    header = ["total", report.by, "name", *SPEED_COLUMNS]
    return _csv_file(
        "speed", report.window, header, _table(report.rows, report.total, SPEED_COLUMNS)
    )


def sla_csv(report: SlaReport) -> CsvFile:
    """The SLA compliance report as CSV (the total as the last row)."""
    header = ["total", report.by, "name", *SLA_COLUMNS]
    return _csv_file("sla", report.window, header, _table(report.rows, report.total, SLA_COLUMNS))


def conversion_csv(report: ConversionReport) -> CsvFile:
    """The conversion report as CSV: revenue one column per currency, orders next to it."""
    currencies = report.currencies
    header = [
        "total",
        report.by,
        "name",
        *CONVERSION_COLUMNS,
        *(f"{kind}_{currency}" for currency in currencies for kind in ("orders", "revenue")),
    ]
    table = _table(report.rows, report.total, CONVERSION_COLUMNS)
    for line, row in zip(table, [*report.rows, report.total], strict=True):
        money = {entry.currency: entry for entry in row.revenue}
        for currency in currencies:
            entry = money.get(currency)
            line += [entry.orders if entry else 0, entry.amount if entry else 0]
    return _csv_file("conversion", report.window, header, table)
