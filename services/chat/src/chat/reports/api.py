"""The reports' routes: JSON and the same as CSV (`.csv`); `?from=` and `?to=` name the
period (ISO dates). Each names the agent (or admin) first, then calls one use case
(`chat.reports.service`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.responses import Response

from chat.api.deps import CurrentAdmin, CurrentAgent, Rt
from chat.features import console_router
from chat.reports import service
from chat.reports.consumer import RuleStatsReader
from chat.reports.service import CsvFile, Span

router = console_router()


def span(
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> Span:
    """The period a report is asked for, as given (the use case checks it)."""
    return Span(first, last)


Asked = Annotated[Span, Depends(span)]


def _csv(file: CsvFile) -> Response:
    return Response(
        file.text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/reports/agents")
async def agents_report(rt: Rt, agent: CurrentAgent, asked: Asked) -> dict[str, Any]:
    """Per agent (admins: everyone; an agent: their own row)."""
    window = rt.settings.attribution_window_days
    return await service.agents_report(uow=rt.uow, agent=agent, span=asked, window_days=window)


@router.get("/reports/agents.csv")
async def agents_csv(rt: Rt, agent: CurrentAgent, asked: Asked) -> Response:
    return _csv(service.agents_csv(await agents_report(rt, agent, asked)))


@router.get("/reports/teams")
async def teams_report(rt: Rt, admin: CurrentAdmin, asked: Asked) -> dict[str, Any]:
    """Per team, with each team's size (admins only)."""
    window = rt.settings.attribution_window_days
    return await service.teams_report(uow=rt.uow, admin=admin, span=asked, window_days=window)


@router.get("/reports/teams.csv")
async def teams_csv(rt: Rt, admin: CurrentAdmin, asked: Asked) -> Response:
    return _csv(service.teams_csv(await teams_report(rt, admin, asked)))


@router.get("/reports/assisted")
async def assisted_report(rt: Rt, agent: CurrentAgent, asked: Asked) -> dict[str, Any]:
    """The site's orders and revenue in the period, and how much of it chat assisted."""
    window = rt.settings.attribution_window_days
    return await service.assisted_report(uow=rt.uow, agent=agent, span=asked, window_days=window)


@router.get("/reports/assisted.csv")
async def assisted_csv(rt: Rt, agent: CurrentAgent, asked: Asked) -> Response:
    return _csv(service.assisted_csv(await assisted_report(rt, agent, asked)))


@router.get("/reports/rules")
async def rules_report(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    """Each rule's funnel and hold-out uplift, cumulative since its first counted step
    (`rules.stats` snapshots; the period does not apply)."""
    return service.rules_report(reader=rt.running(RuleStatsReader), rules=rt.rules, admin=admin)


@router.get("/reports/rules.csv")
async def rules_csv(rt: Rt, admin: CurrentAdmin) -> Response:
    return _csv(service.rules_csv(await rules_report(rt, admin)))
