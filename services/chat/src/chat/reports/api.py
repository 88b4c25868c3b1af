"""The reports' routes: JSON and the same as CSV (`.csv`); `?from=` and `?to=` name the
period (ISO dates). Each names the agent (or admin) first, then calls one use case
(`chat.reports.service`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from chat.api.deps import CurrentAdmin, CurrentAgent, Rt
from chat.features import console_router
from chat.reports import service
from chat.reports.consumer import RuleStatsReader
from chat.reports.service import CsvFile

router = console_router()
From = Annotated[str | None, Query(alias="from")]
To = Annotated[str | None, Query(alias="to")]


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
async def agents_report(
    rt: Rt, agent: CurrentAgent, first: From = None, last: To = None
) -> dict[str, Any]:
    """Per agent (admins: everyone; an agent: their own row)."""
    return await service.agents_report(
        uow=rt.uow,
        agent=agent,
        first=first,
        last=last,
        window_days=rt.settings.attribution_window_days,
    )


@router.get("/reports/agents.csv")
async def agents_csv(rt: Rt, agent: CurrentAgent, first: From = None, last: To = None) -> Response:
    return _csv(
        await service.agents_csv(
            uow=rt.uow,
            agent=agent,
            first=first,
            last=last,
            window_days=rt.settings.attribution_window_days,
        )
    )


@router.get("/reports/teams")
async def teams_report(
    rt: Rt, admin: CurrentAdmin, first: From = None, last: To = None
) -> dict[str, Any]:
    return await service.teams_report(
        uow=rt.uow,
        admin=admin,
        first=first,
        last=last,
        window_days=rt.settings.attribution_window_days,
    )


@router.get("/reports/teams.csv")
async def teams_csv(rt: Rt, admin: CurrentAdmin, first: From = None, last: To = None) -> Response:
    return _csv(
        await service.teams_csv(
            uow=rt.uow,
            admin=admin,
            first=first,
            last=last,
            window_days=rt.settings.attribution_window_days,
        )
    )


@router.get("/reports/assisted")
async def assisted_report(
    rt: Rt, agent: CurrentAgent, first: From = None, last: To = None
) -> dict[str, Any]:
    """The site's orders and revenue in the period, and how much of it chat assisted."""
    return await service.assisted_report(
        uow=rt.uow,
        agent=agent,
        first=first,
        last=last,
        window_days=rt.settings.attribution_window_days,
    )


@router.get("/reports/assisted.csv")
async def assisted_csv(
    rt: Rt, agent: CurrentAgent, first: From = None, last: To = None
) -> Response:
    return _csv(
        await service.assisted_csv(
            uow=rt.uow,
            agent=agent,
            first=first,
            last=last,
            window_days=rt.settings.attribution_window_days,
        )
    )


@router.get("/reports/rules")
async def rules_report(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    """Each rule's funnel and hold-out uplift, cumulative since its first counted step
    (`rules.stats` snapshots; the period does not apply)."""
    return service.rules_report(reader=rt.running(RuleStatsReader), rules=rt.rules, admin=admin)


@router.get("/reports/rules.csv")
async def rules_csv(rt: Rt, admin: CurrentAdmin) -> Response:
    return _csv(service.rules_csv(reader=rt.running(RuleStatsReader), rules=rt.rules, admin=admin))
