"""The reports' routes: JSON and the same as CSV (`.csv`).

Who sees what: an admin sees every report of their site. A plain agent sees only their own
row of the agents' report and the site-wide assisted share; the teams' and rules' reports
are admins' (403 otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from beckon_contracts.rules import SiteRules
from fastapi import Request
from starlette.responses import Response

from chat.api.console import admin_of, agent_of
from chat.api.deps import is_admin
from chat.errors import Invalid
from chat.features import console_router
from chat.refs import AgentRef
from chat.reports import store
from chat.reports.consumer import RuleStatsReader
from chat.reports.domain import (
    Grouping,
    Period,
    PeriodError,
    Report,
    assisted_share,
    currencies_of,
    parse_period,
)
from chat.reports.export import to_csv
from chat.reports.stats import CSV_HEADER as RULES_HEADER
from chat.reports.stats import RuleStatsBook, with_names
from chat.reports.stats import csv_rows as rules_csv_rows
from chat.runtime import Runtime

router = console_router()

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


def _period(request: Request) -> Period:
    query = request.query_params
    try:
        return parse_period(query.get("from"), query.get("to"), today=datetime.now(UTC).date())
    except PeriodError as exc:
        raise Invalid("invalid_period", f"{exc.field}: {exc}") from None


def _csv(name: str, period: Period | None, header: list[str], rows: list[list[Any]]) -> Response:
    span = f"-{period.first_day}-{period.last_day}" if period else ""
    return Response(
        to_csv(header, rows).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="beckon-{name}{span}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# ---- agents and teams ------------------------------------------------------------------------


async def _group_report(
    rt: Runtime, agent: AgentRef, grouping: Grouping, period: Period, only: str | None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    window = timedelta(days=rt.settings.attribution_window_days)
    report = Report(grouping, period, now=now)
    agent_names, team_names = await store.names(rt.service.pool, agent.site_id)
    for key in agent_names if grouping == "agent" else team_names:
        report.group(key)  # everyone has a row, even with nothing to show
    truncated = await store.group_report(
        rt.service.pool, agent.site_id, report, period, window=window, now=now
    )
    if grouping == "agent":
        rows = report.rows(lambda key: only is None or key == only)
        for row in rows:
            row["name"] = agent_names.get(row["agent"], row["agent"])
    else:
        members = await store.team_members(rt.service.pool, agent.site_id)
        rows = report.rows()
        for row in rows:
            row["name"] = team_names.get(row["team"], row["team"])
            row["members"] = members.get(row["team"], 0)
    return {
        "period": period.to_dict(),
        "attribution_window_days": rt.settings.attribution_window_days,
        "truncated": truncated,
        "currencies": currencies_of(rows),
        "agents" if grouping == "agent" else "teams": rows,
    }


def _group_csv(grouping: Grouping, answer: dict[str, Any], period: Period) -> Response:
    rows = answer["agents" if grouping == "agent" else "teams"]
    currencies = answer["currencies"]
    extra = [] if grouping == "agent" else ["members"]
    header = [grouping, "name", *extra, *FIGURE_COLUMNS, *(f"revenue_{c}" for c in currencies)]
    table = [
        [
            row[grouping],
            row["name"],
            *(row[name] for name in extra),
            *(row[name] for name in FIGURE_COLUMNS),
            *(row["revenue"].get(c, 0) for c in currencies),
        ]
        for row in rows
    ]
    return _csv("agents" if grouping == "agent" else "teams", period, header, table)


async def _agents(request: Request) -> tuple[dict[str, Any], Period]:
    rt, agent = await agent_of(request)
    period = _period(request)
    only = None if await is_admin(rt, agent) else agent.agent_id
    return await _group_report(rt, agent, "agent", period, only), period


@router.get("/reports/agents")
async def agents_report(request: Request) -> dict[str, Any]:
    """Per agent (admins: everyone; an agent: their own row)."""
    return (await _agents(request))[0]


@router.get("/reports/agents.csv")
async def agents_csv(request: Request) -> Response:
    answer, period = await _agents(request)
    return _group_csv("agent", answer, period)


async def _teams(request: Request) -> tuple[dict[str, Any], Period]:
    rt, agent = await admin_of(request)
    period = _period(request)
    return await _group_report(rt, agent, "team", period, None), period


@router.get("/reports/teams")
async def teams_report(request: Request) -> dict[str, Any]:
    return (await _teams(request))[0]


@router.get("/reports/teams.csv")
async def teams_csv(request: Request) -> Response:
    answer, period = await _teams(request)
    return _group_csv("team", answer, period)


# ---- assisted share --------------------------------------------------------------------------


async def _assisted(request: Request) -> tuple[dict[str, Any], Period]:
    rt, agent = await agent_of(request)
    period = _period(request)
    loaded = await store.assisted(
        rt.service.pool,
        agent.site_id,
        period,
        window=timedelta(days=rt.settings.attribution_window_days),
        now=datetime.now(UTC),
    )
    return {
        "period": period.to_dict(),
        "attribution_window_days": rt.settings.attribution_window_days,
        "truncated": loaded.truncated,
        **assisted_share(loaded.attributions).to_dict(),
    }, period


@router.get("/reports/assisted")
async def assisted_report(request: Request) -> dict[str, Any]:
    """The site's orders and revenue in the period, and how much of it chat assisted."""
    return (await _assisted(request))[0]


ASSISTED_HEADER = [
    "currency",
    "orders",
    "orders_assisted",
    "orders_share",
    "revenue",
    "revenue_assisted",
    "revenue_share",
]


@router.get("/reports/assisted.csv")
async def assisted_csv(request: Request) -> Response:
    answer, period = await _assisted(request)
    rows = [[row[name] for name in ASSISTED_HEADER] for row in answer["currencies"]]
    rows.append(
        [
            "ALL",
            answer["orders"],
            answer["orders_assisted"],
            answer["orders_share"],
            None,
            None,
            None,
        ]
    )
    return _csv("assisted", period, ASSISTED_HEADER, rows)


# ---- rules -----------------------------------------------------------------------------------


def current_rules(rt: Runtime, site_id: str) -> SiteRules | None:
    """The site's rules as the workers run them, when the admin feature follows them (else
    None: the report then names rules by id only)."""
    return rt.rules.current(site_id)


async def _rules(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    reader = rt.running(RuleStatsReader)
    book = reader.book if reader is not None else RuleStatsBook()
    site_rules = current_rules(rt, agent.site_id)
    return {
        "loading": reader is None or not reader.caught_up.is_set(),
        "named": site_rules is not None,
        "rules": with_names(
            book.rules(agent.site_id), site_rules.rules if site_rules is not None else None
        ),
    }


@router.get("/reports/rules")
async def rules_report(request: Request) -> dict[str, Any]:
    """Each rule's funnel and hold-out uplift, cumulative since its first counted step
    (`rules.stats` snapshots; the period does not apply)."""
    return await _rules(request)


@router.get("/reports/rules.csv")
async def rules_csv(request: Request) -> Response:
    answer = await _rules(request)
    return _csv("rules", None, list(RULES_HEADER), rules_csv_rows(answer["rules"]))
