"""The reports' routes: `GET /v1/leads/reports/{speed,sla,conversion}` with `from` and `to`
(ISO dates, `to` exclusive, the site's timezone), `by` (the rows' dimension), `team` (a
filter) and `format` (`json`, the default, or `csv` as a download). Agents see their teams'
leads, admins the whole site (`leads.reports.service`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from leads.api.deps import CurrentAgent, Rt
from leads.api.openapi import errors
from leads.reports import service
from leads.reports.models import (
    ConversionBy,
    ConversionReport,
    SlaBy,
    SlaReport,
    SpeedBy,
    SpeedReport,
)
from leads.reports.service import CsvFile

router = APIRouter(
    prefix="/v1/leads/reports", tags=["reports"], responses=errors(401, 403, 422, 503)
)

From = Annotated[
    date | None,
    Query(alias="from", description="First day counted (YYYY-MM-DD, site's timezone)"),
]
To = Annotated[
    date | None,
    Query(alias="to", description="Day after the last one counted (exclusive); default: tomorrow"),
]
Team = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Only this team's leads"),
]
Format = Annotated[Literal["json", "csv"], Query(description="`csv`: a spreadsheet download")]
CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


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


@router.get("/speed", response_model=SpeedReport, responses=CSV_ANSWER)
async def speed_report(
    rt: Rt,
    caller: CurrentAgent,
    from_day: From = None,
    to_day: To = None,
    by: SpeedBy = "team",
    team: Team = None,
    format: Format = "json",
) -> Any:
    """Speed to lead: median and p90 seconds to first contact, per team or agent."""
    report = await service.speed_to_lead(
        uow=rt.uow, caller=caller, by=by, from_day=from_day, to_day=to_day, team=team
    )
    return _csv(service.speed_csv(report)) if format == "csv" else report


@router.get("/sla", response_model=SlaReport, responses=CSV_ANSWER)
async def sla_report(
    rt: Rt,
    caller: CurrentAgent,
    from_day: From = None,
    to_day: To = None,
    by: SlaBy = "team",
    team: Team = None,
    format: Format = "json",
) -> Any:
    """SLA compliance: first-contact deadlines met, breached and pending."""
    report = await service.sla_compliance(
        uow=rt.uow, caller=caller, by=by, from_day=from_day, to_day=to_day, team=team
    )
    return _csv(service.sla_csv(report)) if format == "csv" else report


@router.get("/conversion", response_model=ConversionReport, responses=CSV_ANSWER)
async def conversion_report(
    rt: Rt,
    caller: CurrentAgent,
    from_day: From = None,
    to_day: To = None,
    by: ConversionBy = "validation",
    team: Team = None,
    format: Format = "json",
) -> Any:
    """Conversion and revenue per currency, per validation level, source, rule, campaign,
    team or agent."""
    report = await service.conversion(
        uow=rt.uow, caller=caller, by=by, from_day=from_day, to_day=to_day, team=team
    )
    return _csv(service.conversion_csv(report)) if format == "csv" else report
