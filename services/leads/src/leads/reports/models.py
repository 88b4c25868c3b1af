"""The reports' JSON shapes (FastAPI documents them in OpenAPI).

Every report has its `window`, the dimension its rows are grouped `by`, the `team` filter
it was asked with, one row per value of the dimension (`key`: the team, agent id,
validation level, source, rule id or campaign; null for leads without one) and a `total`
over all of its rows. Times are seconds; rates are fractions (0..1) or null when nothing
was there to divide; money is per currency, as a decimal string, never summed across
currencies.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SpeedBy = Literal["team", "agent"]
SlaBy = Literal["team", "agent", "validation"]
ConversionBy = Literal["validation", "source", "rule", "campaign", "team", "agent"]


class ReportWindow(BaseModel):
    """Days `[from, to)` on the site's clock, and the instants they span."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="The first day counted (site's timezone)")
    to: date = Field(description="The day after the last one counted (exclusive)")
    timezone: str = Field(description="The site's timezone (UTC when it has none)")
    starts_at: datetime = Field(description="`from` at local midnight, as an instant")
    ends_at: datetime = Field(description="`to` at local midnight, as an instant (exclusive)")


class Row(BaseModel):
    key: str | None = Field(description="The group: team, agent id, validation level, ...")
    name: str | None = Field(default=None, description="The team's or agent's name, if known")


class SpeedRow(Row):
    leads: int = Field(description="Leads created in the window")
    contacted: int = Field(description="Of them, contacted (first_contact_at set)")
    uncontacted: int = Field(description="Of them, not contacted (yet)")
    median_s: float | None = Field(description="Median seconds from capture to first contact")
    p90_s: float | None = Field(description="90th percentile of the same")
    median_after_assignment_s: float | None = Field(
        description="Median seconds from the (latest) assignment to first contact"
    )
    p90_after_assignment_s: float | None = Field(description="90th percentile of the same")


class SpeedReport(BaseModel):
    """Speed to lead: how long captured leads waited for their first contact."""

    report: Literal["speed"] = "speed"
    window: ReportWindow
    by: SpeedBy
    team: str | None = Field(description="The team filter asked for, if any")
    rows: list[SpeedRow]
    total: SpeedRow


class SlaRow(Row):
    leads: int = Field(description="Leads created in the window")
    with_sla: int = Field(description="Of them, with a first-contact deadline (a breach timer)")
    met: int = Field(description="Contacted or closed before the deadline")
    breached: int = Field(description="Deadline passed first (fired, or due and uncontacted)")
    pending: int = Field(description="Not contacted yet, deadline still ahead")
    warned: int = Field(description="Leads whose assignee got at least one SLA warning")
    compliance: float | None = Field(description="met / (met + breached); pending not counted")


class SlaReport(BaseModel):
    """SLA compliance: first-contact deadlines met, breached and still pending."""

    report: Literal["sla"] = "sla"
    window: ReportWindow
    by: SlaBy
    team: str | None
    as_of: datetime = Field(description="The moment 'due' and 'pending' were judged at")
    rows: list[SlaRow]
    total: SlaRow


class Money(BaseModel):
    currency: str = Field(description="ISO 4217 code; XXX for orders without one")
    orders: int = Field(description="Won leads with an order value in this currency")
    amount: Decimal = Field(description="Their order values summed (a decimal string)")


class ConversionRow(Row):
    leads: int = Field(description="Leads created in the window")
    contacted: int = Field(description="Of them, contacted")
    qualified: int = Field(description="Of them, qualified now or won")
    won: int
    lost: int
    recycled: int
    win_rate: float | None = Field(description="won / (won + lost)")
    conversion_rate: float | None = Field(description="won / leads")
    revenue: list[Money] = Field(description="Won leads' order values, per currency")


class ConversionReport(BaseModel):
    """Conversion and revenue of the leads created in the window (their outcome so far)."""

    report: Literal["conversion"] = "conversion"
    window: ReportWindow
    by: ConversionBy
    team: str | None
    currencies: list[str] = Field(description="Every currency in the revenue, sorted")
    rows: list[ConversionRow]
    total: ConversionRow
