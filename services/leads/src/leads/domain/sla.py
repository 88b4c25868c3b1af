"""Speed-to-lead SLAs: when a lead's first contact is due, and what happens on the way there.

A policy (per team and validation level, with defaults) gives the business time allowed before
the first contact. The time counts only while the site is open, in the site's own timezone and
with the business-hours model the triggers use (`beckon_contracts.rules.BusinessHours`: weekly
ranges of wall-clock time, closed dates), so a lead left on Friday evening is not breached on
Saturday morning. `BusinessCalendar` turns that schedule into instants: it walks the zone's UTC
offset segment by segment, so a DST switch neither adds nor loses an hour of business time and
an instant counts as open exactly when `triggers.domain.schedule.is_open` says so.

`plan_first_contact` returns the deadline and the timers to store (warnings at 50 % and 80 % of
the business time, the breach at 100 %): plain rows `(kind, due_at, elapsed)` that the service
keeps in Postgres and claims when due. `on_breach` says what a breach does under a policy. The
clock is always a parameter; nothing here reads the time or does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from beckon_contracts.chat_events import LeadValidation
from beckon_contracts.envelope import Identifier
from beckon_contracts.rules import (
    WEEKDAYS,
    BusinessHours,
    Duration,
    _check_timezone,
    parse_time_range,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The defaults: the hotter the lead, the sooner someone must call.
DEFAULT_FIRST_CONTACT: Mapping[LeadValidation, timedelta] = {
    "ready_to_buy": timedelta(minutes=5),
    "qualified": timedelta(minutes=30),
    "interested": timedelta(hours=4),
    "contact_only": timedelta(hours=24),
}
DEFAULT_WARN_AT: tuple[float, ...] = (0.5, 0.8)
MAX_FIRST_CONTACT = timedelta(days=30)
# Closed dates hold at most 1000 days and some weekday is always open, so open time always
# exists within this horizon; past it the schedule is treated as broken rather than looped on.
_HORIZON = timedelta(days=4 * 366)
_DAY_S = 86400


class SlaPolicy(BaseModel):
    """How long a team has for the first contact of a lead of one validation level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: Identifier
    validation: LeadValidation
    first_contact: Annotated[Duration, Field(gt=0)] | None = Field(
        description="Business time allowed (seconds, or '5m', '4h'); None: no SLA for these leads"
    )
    warn_at: tuple[float, ...] = Field(
        default=DEFAULT_WARN_AT,
        max_length=5,
        description="Shares of the allowed time at which the assignee is warned, e.g. 0.5, 0.8",
    )
    escalate: bool = Field(default=True, description="At the breach, tell the team's leads")
    reassign: bool = Field(
        default=False, description="At the breach, hand the lead to the next free agent"
    )
    max_reassignments: int = Field(
        default=1, ge=0, le=10, description="Breach reassignments of one lead, at most"
    )

    @field_validator("first_contact")
    @classmethod
    def _not_too_long(cls, seconds: float | None) -> float | None:
        if seconds is not None and seconds > MAX_FIRST_CONTACT.total_seconds():
            raise ValueError(
                f"a first-contact SLA of {seconds:g} s is longer than"
                f" {MAX_FIRST_CONTACT.days} days; use a shorter one or none (null)"
            )
        return seconds

    @field_validator("warn_at")
    @classmethod
    def _shares(cls, shares: tuple[float, ...]) -> tuple[float, ...]:
        for share in shares:
            if not (math.isfinite(share) and 0 < share < 1):
                raise ValueError(
                    f"warning point {share!r} must be a share of the allowed time"
                    " strictly between 0 and 1, e.g. 0.5 or 0.8"
                )
        if list(shares) != sorted(set(shares)):
            raise ValueError("warning points must be increasing and distinct, e.g. [0.5, 0.8]")
        return shares

    @model_validator(mode="after")
    def _reassign_needs_room(self) -> SlaPolicy:
        if self.reassign and self.max_reassignments == 0:
            raise ValueError("reassign is on but max_reassignments is 0; allow at least 1")
        return self

    @property
    def allowed(self) -> timedelta | None:
        """The business time allowed, as a timedelta (None: no SLA)."""
        return None if self.first_contact is None else timedelta(seconds=self.first_contact)


def default_policy(team: str, validation: LeadValidation) -> SlaPolicy:
    """The house default for a team that set nothing for this validation level."""
    return SlaPolicy(
        team=team,
        validation=validation,
        first_contact=DEFAULT_FIRST_CONTACT[validation].total_seconds(),
    )


def policy_for(
    policies: Iterable[SlaPolicy], *, team: str, validation: LeadValidation
) -> SlaPolicy:
    """The team's own policy for this level if it has one, else the default."""
    for policy in policies:
        if policy.team == team and policy.validation == validation:
            return policy
    return default_policy(team, validation)


def check_policies(policies: Sequence[SlaPolicy]) -> list[dict[str, str]]:
    """Problems of a site's policy list, each at its place (`[3]`): a duplicate team and level."""
    problems: list[dict[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, policy in enumerate(policies):
        key = (policy.team, policy.validation)
        if key in seen:
            problems.append(
                {
                    "loc": f"[{index}]",
                    "msg": f"team {policy.team!r} already has a {policy.validation} policy"
                    f" at [{seen[key]}]; keep one",
                }
            )
        else:
            seen[key] = index
    return problems


# ---- business time --------------------------------------------------------------------------
class ScheduleError(ValueError):
    """The schedule leaves no open time within the horizon (every open day is closed)."""


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment!r}")
    return moment


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class BusinessCalendar:
    """A site's open time as instants: open intervals, business time added and elapsed.

    `business_hours=None` means always open (real time). Build one per site and reuse it.
    """

    def __init__(self, business_hours: BusinessHours | None, timezone: str = "UTC") -> None:
        self.business_hours = business_hours
        self.timezone = _check_timezone(timezone)
        self._zone = ZoneInfo(timezone)
        self._week: tuple[tuple[tuple[int, int], ...], ...] = (
            tuple(
                tuple(parse_time_range(text) for text in business_hours.day(name))
                for name in WEEKDAYS
            )
            if business_hours is not None
            else ()
        )
        self._closed: frozenset[date] = (
            frozenset(business_hours.closed_dates) if business_hours is not None else frozenset()
        )
        self._changes: dict[int, tuple[int, ...]] = {}

    @property
    def always_open(self) -> bool:
        return self.business_hours is None

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` falls in the opening hours (the triggers' `is_open`, as instants)."""
        if self.business_hours is None:
            return True
        # via the epoch: `astimezone` keeps a same-zone datetime as written, even a wall time
        # that never happened (in a DST gap)
        local = datetime.fromtimestamp(_aware(moment, "moment").timestamp(), self._zone)
        if local.date() in self._closed:
            return False
        minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        return any(start <= minute < end for start, end in self._week[local.weekday()])

    def _offset(self, epoch_s: float) -> int:
        offset = datetime.fromtimestamp(epoch_s, self._zone).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return int(offset.total_seconds())

    def _changes_on(self, day_number: int) -> tuple[int, ...]:
        """The instants of UTC day `day_number` at which the zone's UTC offset changes."""
        cached = self._changes.get(day_number)
        if cached is not None:
            return cached
        # Zones change offset at most a few times a year; hourly probes find a change and a
        # bisection to the second pins it (offsets change on whole seconds). Cached per day,
        # since a site's leads all fall in the same few days.
        changes: list[int] = []
        probe = day_number * _DAY_S
        offset = self._offset(probe)
        for step in range(probe + 3600, probe + _DAY_S + 1, 3600):
            if self._offset(step) != offset:
                low, high = step - 3600, step
                while high - low > 1:
                    mid = (low + high) // 2
                    if self._offset(mid) == offset:
                        low = mid
                    else:
                        high = mid
                changes.append(high)
                offset = self._offset(step)
        if len(self._changes) >= 4096:
            self._changes.clear()
        self._changes[day_number] = result = tuple(changes)
        return result

    def _next_change(self, start: float, limit: float) -> float:
        """The first instant after `start` (before `limit`) at which the UTC offset changes."""
        day_number = math.floor(start / _DAY_S)
        while day_number * _DAY_S < limit:
            for change in self._changes_on(day_number):
                if change > start:
                    return min(float(change), limit)
            day_number += 1
        return limit

    def _open_in_segment(
        self, start: float, end: float, offset: int
    ) -> Iterator[tuple[float, float]]:
        """Open intervals within [start, end), where the UTC offset is constant."""
        # With a fixed offset, wall time = epoch + offset: each range of each local date is one
        # interval of instants, exactly the instants `is_open` calls open.
        first = math.floor((start + offset) / _DAY_S)
        last = math.floor((end + offset) / _DAY_S)
        for day_number in range(first, last + 1):
            day = date.fromordinal(day_number + date(1970, 1, 1).toordinal())
            if day in self._closed:
                continue
            midnight = day_number * _DAY_S - offset
            for open_min, close_min in self._week[day.weekday()]:
                low = max(start, midnight + open_min * 60)
                high = min(end, midnight + close_min * 60)
                if low < high:
                    yield low, high

    def open_intervals(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals from `since` on, in order, adjacent ones merged (endless if always open).

        Raises `ScheduleError` if no open time is left within about four years.
        """
        begin = _aware(since, "since").timestamp()
        if self.business_hours is None:
            yield _at(begin), datetime.max.replace(tzinfo=UTC)
            return
        horizon = begin + _HORIZON.total_seconds()
        pending: tuple[float, float] | None = None
        cursor = begin
        while cursor < horizon:
            offset = self._offset(cursor)
            segment_end = self._next_change(cursor, min(cursor + 7 * _DAY_S, horizon))
            for low, high in self._open_in_segment(cursor, segment_end, offset):
                if pending is not None and pending[1] >= low:
                    pending = (pending[0], max(pending[1], high))
                    continue
                if pending is not None:
                    yield _at(pending[0]), _at(pending[1])
                pending = (low, high)
            cursor = segment_end
        if pending is not None:
            yield _at(pending[0]), _at(pending[1])
            return
        raise ScheduleError(
            f"the business hours leave no open time within {_HORIZON.days} days of {since}"
        )

    def add(self, start: datetime, business_time: timedelta) -> datetime:
        """The instant at which `business_time` of open time has passed since `start`.

        Counting starts at the next opening if `start` is closed; a deadline that uses up an
        opening exactly falls on its closing time, not on the next opening.
        """
        _aware(start, "start")
        if business_time <= timedelta(0):
            raise ValueError(f"business time must be positive, got {business_time}")
        if self.business_hours is None:
            return start.astimezone(UTC) + business_time
        remaining = business_time
        for low, high in self.open_intervals(start):
            if high - low >= remaining:
                return low + remaining
            remaining -= high - low
        raise ScheduleError(
            f"the business hours leave less than {business_time} of open time"
            f" within {_HORIZON.days} days of {start}"
        )

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Open time between `start` and `end` (zero when `end` is not after `start`)."""
        _aware(start, "start")
        _aware(end, "end")
        if end <= start:
            return timedelta(0)
        if self.business_hours is None:
            return end - start
        total = timedelta(0)
        for low, high in self.open_intervals(start):
            if low >= end:
                break
            total += min(high, end) - low
        return total


# ---- timers ---------------------------------------------------------------------------------
TimerKind = Literal["warning", "breach"]


@dataclass(frozen=True, slots=True)
class SlaTimer:
    """One durable timer row: fire `kind` at `due_at`; `elapsed` is the share of time used."""

    kind: TimerKind
    due_at: datetime
    elapsed: float  # 0.5, 0.8 for warnings; 1.0 for the breach


@dataclass(frozen=True, slots=True)
class FirstContactPlan:
    """A lead's first-contact deadline and the timers leading to it."""

    started_at: datetime
    due_at: datetime
    timers: tuple[SlaTimer, ...]  # by due_at; the breach is last


def plan_first_contact(
    policy: SlaPolicy, calendar: BusinessCalendar, *, started_at: datetime
) -> FirstContactPlan | None:
    """The deadline and timers of a first contact counted from `started_at` (None: no SLA).

    The clock starts when the lead is captured (the customer is waiting whether or not an agent
    is free) and again for the new assignee after a breach reassignment.
    """
    allowed = policy.allowed
    if allowed is None:
        return None
    _aware(started_at, "started_at")
    timers = [
        SlaTimer("warning", calendar.add(started_at, allowed * share), share)
        for share in policy.warn_at
    ]
    due_at = calendar.add(started_at, allowed)
    timers.append(SlaTimer("breach", due_at, 1.0))
    return FirstContactPlan(
        started_at=started_at.astimezone(UTC), due_at=due_at, timers=tuple(timers)
    )


def due_timers(timers: Iterable[SlaTimer], *, now: datetime) -> list[SlaTimer]:
    """The timers due at `now` worth firing: a warning whose breach is also due is dropped.

    After downtime several timers of a lead may be due at once; the breach says everything the
    late warnings would have, so only it fires.
    """
    _aware(now, "now")
    due = sorted((t for t in timers if t.due_at <= now), key=lambda t: t.due_at)
    if any(t.kind == "breach" for t in due):
        return [t for t in due if t.kind == "breach"]
    return due


def is_stale_warning(timer: SlaTimer, *, breach_due_at: datetime, now: datetime) -> bool:
    """Whether a claimed warning should be skipped because its breach is already due."""
    return timer.kind == "warning" and breach_due_at <= _aware(now, "now")


@dataclass(frozen=True, slots=True)
class BreachPlan:
    """What a breach does: tell the team's leads, hand the lead on, restart the clock."""

    escalate: bool
    reassign: bool


def on_breach(policy: SlaPolicy, *, reassignments_so_far: int, assigned: bool) -> BreachPlan:
    """A breach's consequences under `policy`.

    Reassignment needs an assignee to take the lead from and stops after `max_reassignments`
    (so a team with nobody answering does not pass a lead round forever); the service then
    picks the next free agent and plans a new first contact from the breach for them.
    """
    reassign = policy.reassign and assigned and reassignments_so_far < policy.max_reassignments
    return BreachPlan(escalate=policy.escalate, reassign=reassign)
