"""What a site stores for its SLAs: a team's policy (`SitePolicy`) and the site's hours
(`SiteHours`), as the admin routes accept them and the tables keep them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from beckon_contracts.rules import WEEKDAYS, BusinessHours
from pydantic import Field, field_validator

from leads.domain.sla import SlaPolicy


class SitePolicy(SlaPolicy):
    """A team's first-contact policy as a site stores it (`leads.sla_policies`): the domain's
    policy in whole seconds and whole percents, and whether the time counts only in the site's
    business hours (the default) or around the clock."""

    business_hours_only: bool = Field(
        default=True, description="Count only the site's business hours (false: around the clock)"
    )

    @field_validator("first_contact")
    @classmethod
    def _whole_seconds(cls, seconds: float | None) -> float | None:
        if seconds is not None and (seconds < 1 or not float(seconds).is_integer()):
            raise ValueError(
                f"a first-contact SLA is whole seconds (at least 1), got {seconds:g};"
                " e.g. 300 or '5m'"
            )
        return seconds

    @field_validator("warn_at")
    @classmethod
    def _whole_percents(cls, shares: tuple[float, ...]) -> tuple[float, ...]:
        for share in shares:
            if math.isfinite(share) and not round(share * 100, 6).is_integer():
                raise ValueError(
                    f"warning point {share!r} is not a whole percent; use e.g. 0.5 or 0.33"
                )
        return shares

    @property
    def warn_at_percent(self) -> list[int]:
        return [round(share * 100) for share in self.warn_at]

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> SitePolicy:
        """A `leads.sla_policies` row (the columns of `POLICY_COLUMNS`)."""
        return cls(
            team=row["team"],
            validation=row["validation"],
            first_contact=row["first_contact_s"],
            warn_at=tuple(percent / 100 for percent in row["warn_at_percent"]),
            escalate=row["escalate"],
            reassign=row["reassign_on_breach"],
            max_reassignments=row["max_reassignments"],
            business_hours_only=row["business_hours_only"],
        )


POLICY_FIELDS = (
    "team",
    "validation",
    "first_contact_s",
    "warn_at_percent",
    "escalate",
    "reassign_on_breach",
    "max_reassignments",
    "business_hours_only",
)
POLICY_COLUMNS = ", ".join(POLICY_FIELDS)


@dataclass(frozen=True, slots=True)
class SiteHours:
    """When a site is open, in its timezone; `hours=None`: around the clock. The site's
    holidays are `hours.closed_dates`."""

    timezone: str = "UTC"
    hours: BusinessHours | None = None

    @property
    def holidays(self) -> list[date]:
        return list(self.hours.closed_dates) if self.hours is not None else []

    def weekly_json(self) -> str:
        """The weekly ranges as `leads.sites.business_hours` keeps them (`{}`: around the
        clock); holidays go to their own column."""
        if self.hours is None:
            return "{}"
        return orjson.dumps(self.hours.model_dump(mode="json", exclude={"closed_dates"})).decode()

    @classmethod
    def of_row(cls, timezone: str, weekly: object, holidays: Sequence[date]) -> SiteHours:
        """From `leads.sites` (weekly as jsonb text or already decoded)."""
        document = orjson.loads(weekly) if isinstance(weekly, str | bytes) else weekly
        if not document:
            return cls(timezone=timezone or "UTC")
        assert isinstance(document, dict), f"business_hours is not an object: {document!r}"
        days = {day: [_range_text(part) for part in document.get(day, [])] for day in WEEKDAYS}
        return cls(
            timezone=timezone or "UTC",
            hours=BusinessHours.model_validate({**days, "closed_dates": list(holidays)}),
        )


def _range_text(part: object) -> str:
    # 0001's comment shows pairs (["09:00", "17:00"]); the rules' model writes "09:00-17:00"
    if isinstance(part, list | tuple) and len(part) == 2:
        return f"{part[0]}-{part[1]}"
    return str(part)
