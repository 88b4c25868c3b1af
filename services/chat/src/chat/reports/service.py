"""The reports' use cases: per agent, per team, per rule, and the share of orders chat
assisted; each answer also as a CSV file (`agents_csv(answer)`, ...).

Who sees what: an admin sees every report of their site. A plain agent sees only their own
row of the agents' report and the site-wide assisted share; the teams' and rules' reports are
admins' (the routes ask for `CurrentAdmin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from beckon_edge.spreadsheet import to_csv

from chat.errors import Invalid, NotAuthenticated
from chat.features import RulesLookup
from chat.refs import AgentRef, now_utc
from chat.reports.consumer import RuleStatsReader
from chat.reports.domain import (
    Grouping,
    Period,
    PeriodError,
    Report,
    assisted_report_figures,
    currencies_of,
    parse_period,
)
from chat.reports.stats import CSV_HEADER as RULES_HEADER
from chat.reports.stats import RuleStatsBook, with_names
from chat.reports.stats import csv_rows as rules_csv_rows
from chat.reports.store import ReportsStore
from chat.uow import UnitsOfWork

FIGURE_COLUMNS = (
    "conversations",
    "unanswered",
    "first_response_median_s",
    "first_response_mean_s",
    "response_mean_s",
    "responses",
    "load_mean",
    "load_busy_mean",
    "load_max",
    "orders",
)
ASSISTED_HEADER = (
    "currency",
    "orders",
    "orders_assisted",
    "orders_share",
    "revenue",
    "revenue_assisted",
    "revenue_share",
)


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A report as a spreadsheet file: its name (with the period) and its text."""

    filename: str
    text: str


@dataclass(frozen=True, slots=True)
class Span:
    """The days a report is asked for, as given (`?from=&to=`, ISO dates, both optional);
    `now` is the time the report is made at (None: the clock's)."""

    first: str | None = None
    last: str | None = None
    now: datetime | None = None


def period_of(span: Span) -> tuple[Period, datetime]:
    """The days a report covers (by default the week up to today) and the time it is made
    at; or refused."""
    now = span.now or now_utc()
    try:
        return parse_period(span.first, span.last, today=now.date()), now
    except PeriodError as exc:
        raise Invalid("invalid_period", f"{exc.field}: {exc}") from None


def _csv_file(
    name: str, period: dict[str, str] | None, header: Any, rows: list[list[Any]]
) -> CsvFile:
    span = f"-{period['from']}-{period['to']}" if period else ""
    return CsvFile(f"beckon-{name}{span}.csv", to_csv(header, rows))


# ---- agents and teams ------------------------------------------------------------------------


async def _group_report(
    uow: UnitsOfWork, viewer: AgentRef, grouping: Grouping, span: Span, *, window_days: int
) -> dict[str, Any]:
    """Per agent or per team; the agents' report shows a plain agent only their own row
    (the teams' report is admins', `viewer` is one)."""
    period, now = period_of(span)
    report = Report(grouping, period, now=now)
    async with uow.read(viewer.site_id) as tx:
        store = tx.store(ReportsStore)
        only = None
        if grouping == "agent":
            role = await store.role(viewer.site_id, viewer.agent_id)
            if role is None:
                raise NotAuthenticated("unknown_agent", "log in again")
            only = None if role == "admin" else viewer.agent_id
        agent_names, team_names = await store.names(viewer.site_id)
        for key in agent_names if grouping == "agent" else team_names:
            report.group(key)  # everyone has a row, even with nothing to show
        truncated = await store.group_report(
            viewer.site_id, report, period, window=timedelta(days=window_days), now=now
        )
        if grouping == "agent":
            rows = report.rows(lambda key: only is None or key == only)
            for row in rows:
                row["name"] = agent_names.get(row["agent"], row["agent"])
        else:
            members = await store.team_members(viewer.site_id)
            rows = report.rows()
            for row in rows:
                row["name"] = team_names.get(row["team"], row["team"])
                row["members"] = members.get(row["team"], 0)
    return {
        "period": period.to_dict(),
        "attribution_window_days": window_days,
        "truncated": truncated,
        "currencies": currencies_of(rows),
        "agents" if grouping == "agent" else "teams": rows,
    }


def _group_csv(grouping: Grouping, answer: dict[str, Any]) -> CsvFile:
    name = "agents" if grouping == "agent" else "teams"
    currencies = answer["currencies"]
    extra = [] if grouping == "agent" else ["members"]
    header = [grouping, "name", *extra, *FIGURE_COLUMNS, *(f"revenue_{c}" for c in currencies)]
    table = [
        [
            row[grouping],
            row["name"],
            *(row[column] for column in extra),
            *(row[column] for column in FIGURE_COLUMNS),
            *(row["revenue"].get(c, 0) for c in currencies),
        ]
        for row in answer[name]
    ]
    return _csv_file(name, answer["period"], header, table)


async def agents_report(
    *, uow: UnitsOfWork, agent: AgentRef, span: Span, window_days: int
) -> dict[str, Any]:
    """Per agent over the period: an admin gets everyone, an agent their own row."""
    return await _group_report(uow, agent, "agent", span, window_days=window_days)


def agents_csv(answer: dict[str, Any]) -> CsvFile:
    """The agents' report as CSV (revenue one column per currency)."""
    return _group_csv("agent", answer)


async def teams_report(
    *, uow: UnitsOfWork, admin: AgentRef, span: Span, window_days: int
) -> dict[str, Any]:
    """Per team over the period, with each team's size (for an admin)."""
    return await _group_report(uow, admin, "team", span, window_days=window_days)


def teams_csv(answer: dict[str, Any]) -> CsvFile:
    """The teams' report as CSV (revenue one column per currency)."""
    return _group_csv("team", answer)


# ---- assisted share --------------------------------------------------------------------------


async def assisted_report(
    *, uow: UnitsOfWork, agent: AgentRef, span: Span, window_days: int
) -> dict[str, Any]:
    """The site's orders and revenue in the period, and how much of it chat assisted."""
    period, now = period_of(span)
    async with uow.read(agent.site_id) as tx:
        loaded = await tx.store(ReportsStore).assisted(
            agent.site_id, period, window=timedelta(days=window_days), now=now
        )
    return {
        "period": period.to_dict(),
        "attribution_window_days": window_days,
        "truncated": loaded.truncated,
        **assisted_report_figures(loaded.attributions),
    }


def assisted_csv(answer: dict[str, Any]) -> CsvFile:
    """The assisted share as CSV: a row per currency, then the orders of all of them; first
    the server's orders, then apart the browser's (`reported_by` says which)."""
    rows: list[list[Any]] = []
    for reported_by, share in (("server", answer), ("browser", answer["browser"])):
        rows += [
            [*(row[column] for column in ASSISTED_HEADER), reported_by]
            for row in share["currencies"]
        ]
        totals = [share["orders"], share["orders_assisted"], share["orders_share"]]
        rows.append(["ALL", *totals, None, None, None, reported_by])
    return _csv_file("assisted", answer["period"], (*ASSISTED_HEADER, "reported_by"), rows)


# ---- rules -----------------------------------------------------------------------------------


def rules_report(
    *, reader: RuleStatsReader | None, rules: RulesLookup, admin: AgentRef
) -> dict[str, Any]:
    """Each rule's funnel and hold-out uplift, cumulative since its first counted step
    (`rules.stats` snapshots; no period), named after the site's current rules if known."""
    book = reader.book if reader is not None else RuleStatsBook()
    site_rules = rules.current(admin.site_id)
    return {
        "loading": reader is None or not reader.caught_up.is_set(),
        "named": site_rules is not None,
        "rules": with_names(
            book.rules(admin.site_id), site_rules.rules if site_rules is not None else None
        ),
    }


def rules_csv(answer: dict[str, Any]) -> CsvFile:
    """The rules' report as CSV."""
    return _csv_file("rules", None, RULES_HEADER, rules_csv_rows(answer["rules"]))
