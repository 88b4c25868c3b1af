"""The SLA admin routes: a site's first-contact policies and its business hours.

    GET/PUT /v1/leads/sla-policies    per team and validation level (the rest: defaults)
    GET/PUT /v1/leads/business-hours  timezone, weekly hours, holidays

Admins only, always on the caller's own site. Changes apply to deadlines planned from then on;
running timers keep theirs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from beckon_contracts.rules import BusinessHours, _check_timezone
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.api.openapi import errors
from leads.domain.sla import DEFAULT_FIRST_CONTACT
from leads.sla import service
from leads.sla.models import SiteHours, SitePolicy

router = APIRouter(prefix="/v1/leads", tags=["sla"], responses=errors(401, 403, 422, 503))
MAX_POLICIES = 200


class SlaPolicies(BaseModel):
    """A site's policies, one per team and validation level."""

    model_config = ConfigDict(extra="forbid")

    policies: list[SitePolicy] = Field(max_length=MAX_POLICIES)


class SlaPoliciesView(SlaPolicies):
    defaults: dict[str, float] = Field(
        description="Seconds allowed per validation level where a team has no policy"
    )


class BusinessHoursSetting(BaseModel):
    """When the site is open: SLA time counts only then."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(default="UTC", description="IANA name, e.g. Europe/Helsinki")
    hours: BusinessHours | None = Field(
        default=None,
        description="Weekly ranges, e.g. {mon: ['09:00-17:00'], ...}; null: around the clock",
    )
    holidays: list[date] = Field(default_factory=list, max_length=1000)

    _timezone = field_validator("timezone")(_check_timezone)

    @field_validator("hours")
    @classmethod
    def _holidays_apart(cls, hours: BusinessHours | None) -> BusinessHours | None:
        if hours is not None and hours.closed_dates:
            raise ValueError("put closed dates in holidays, not in hours")
        return hours

    @field_validator("holidays")
    @classmethod
    def _holidays_need_hours(cls, holidays: list[date], info: ValidationInfo) -> list[date]:
        if holidays and "hours" in info.data and info.data["hours"] is None:
            raise ValueError(
                "holidays need business hours: without hours the site is open around the clock"
            )
        return sorted(set(holidays))

    def site_hours(self) -> SiteHours:
        hours = (
            None
            if self.hours is None
            else self.hours.model_copy(update={"closed_dates": list(self.holidays)})
        )
        return SiteHours(timezone=self.timezone, hours=hours)

    @classmethod
    def of(cls, site: SiteHours) -> BusinessHoursSetting:
        hours = None if site.hours is None else site.hours.model_copy(update={"closed_dates": []})
        return cls(timezone=site.timezone, hours=hours, holidays=site.holidays)


def _policies_view(policies: list[SitePolicy]) -> SlaPoliciesView:
    return SlaPoliciesView(
        policies=policies,
        defaults={
            level: allowed.total_seconds() for level, allowed in DEFAULT_FIRST_CONTACT.items()
        },
    )


@router.get("/sla-policies", response_model=SlaPoliciesView)
async def get_sla_policies(caller: CurrentAdmin, rt: Rt) -> SlaPoliciesView:
    """The site's first-contact policies, and the defaults for the rest."""
    return _policies_view(await service.site_policies(rt.uow, site_id=caller.site_id))


@router.put("/sla-policies", response_model=SlaPoliciesView)
async def put_sla_policies(
    caller: CurrentAdmin, rt: Rt, body: Valid[SlaPolicies]
) -> SlaPoliciesView:
    """Replace the site's policies (a team listed twice for a level, or unknown: 422)."""
    stored = await service.replace_site_policies(
        rt.uow, site_id=caller.site_id, policies=body.policies, now=datetime.now(UTC)
    )
    return _policies_view(stored)


@router.get("/business-hours", response_model=BusinessHoursSetting)
async def get_business_hours(caller: CurrentAdmin, rt: Rt) -> BusinessHoursSetting:
    """The site's timezone, weekly hours (null: around the clock) and holidays."""
    return BusinessHoursSetting.of(await service.site_hours(rt.uow, site_id=caller.site_id))


@router.put("/business-hours", response_model=BusinessHoursSetting)
async def put_business_hours(
    caller: CurrentAdmin, rt: Rt, body: Valid[BusinessHoursSetting]
) -> BusinessHoursSetting:
    """Set the site's hours; first-contact deadlines count only while it is open."""
    stored = await service.set_site_hours(
        rt.uow, site_id=caller.site_id, hours=body.site_hours(), now=datetime.now(UTC)
    )
    return BusinessHoursSetting.of(stored)
