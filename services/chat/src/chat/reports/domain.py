"""Report maths, pure: periods, response times, concurrent load, order attribution, assisted
share. No I/O; the store feeds rows in, the API turns the results into JSON or CSV.

The rules (docs/console-reports.md says the same for people):

- A period is whole UTC days `[from 00:00, to + 1 day 00:00)`; nothing is counted after `now`.
- A conversation is held by one agent at a time, in stints (`chat.assignments`: from the
  assignment to the transfer, requeue or close that ended it). Each stint counts for its
  agent: a chat Anna answered and then transferred to Ben is one conversation of Anna's and
  one of Ben's. For the teams' report, consecutive stints in one team are one conversation
  of that team. A stint counts for the period when it started inside it. (A conversation
  without recorded stints, from before they were kept, is one stint of its holder from
  `assigned_at`, else `created_at`.)
- First response: from the stint's start to its agent's first message inside the stint
  (for a team, any of its stints' agents). A stint without one is `unanswered`.
- Response time: a run of visitor messages is one wait, from its first message to the next
  agent message; the wait is the replying agent's (never earlier than the start of their
  stint: queue time is not the agent's), and their stint's team's. Waits are counted when
  the reply falls inside the period; a wait never answered counts nowhere.
- Concurrent load: each stint is an interval [start, end or now) of its agent and team,
  clipped to the period; `load_mean` is the time-average over the period, `load_busy_mean`
  the average over the time the agent had at least one chat open, `load_max` the peak.
- An order (`chat.activity`, type `order.completed`, placed inside the period) is influenced
  by a conversation of the same visitor with an agent when it was placed between the
  conversation's creation and `attribution_window_days` after its end (now, while open). It
  is credited to every agent who held that conversation and to their teams. One order
  counts once per agent, once per team and once for the site, however many conversations
  led to it; two agents who both chatted with the buyer are both credited.
- Money is never summed across currencies: revenue is a map currency -> amount, shares are
  per currency. Order counts add up across currencies. An order without a currency is "XXX".
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

MAX_SPAN_DAYS = 366
DEFAULT_SPAN_DAYS = 7
NO_CURRENCY = "XXX"  # ISO 4217's "no currency"


class PeriodError(ValueError):
    """A period the API refuses (a 422 naming the parameter)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def to_dict(self) -> dict[str, str]:
        return {"from": self.first_day.isoformat(), "to": self.last_day.isoformat()}


def parse_period(first: str | None, last: str | None, *, today: date) -> Period:
    """`from`/`to` as ISO dates (both optional): by default the last 7 days up to today."""
    last_day = _parse_day("to", last) if last else today
    first_day = (
        _parse_day("from", first) if first else last_day - timedelta(days=DEFAULT_SPAN_DAYS - 1)
    )
    if last_day < first_day:
        raise PeriodError("to", f"to ({last_day}) is before from ({first_day})")
    period = Period(first_day, last_day)
    if period.days > MAX_SPAN_DAYS:
        raise PeriodError("to", f"the period spans {period.days} days; at most {MAX_SPAN_DAYS}")
    return period


def _parse_day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(
            name, f"{name} must be a date as YYYY-MM-DD, not {value[:40]!r}"
        ) from None


# ---- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assignment:
    """One agent's stint on a conversation: [start, end); end None while they hold it."""

    agent_id: str
    team: str
    start: datetime
    end: datetime | None = None

    def holds(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at <= self.end)


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    visitor_id: str
    agent_id: str | None  # the current (or last) holder
    team: str
    created_at: datetime
    assigned_at: datetime | None
    closed_at: datetime | None
    assignments: tuple[Assignment, ...] = ()  # every stint, oldest first

    @property
    def start(self) -> datetime:
        """When the holder's clock starts: the assignment, else the creation."""
        if self.assigned_at is None:
            return self.created_at
        return max(self.assigned_at, self.created_at)

    @property
    def stints(self) -> tuple[Assignment, ...]:
        """Who held it when; a conversation from before stints were recorded is one stint of
        its holder, from its assignment to its close."""
        if self.assignments:
            return self.assignments
        if self.agent_id is None:
            return ()
        return (Assignment(self.agent_id, self.team, self.start, self.closed_at),)

    @property
    def agents(self) -> frozenset[str]:
        return frozenset(stint.agent_id for stint in self.stints)

    @property
    def teams(self) -> frozenset[str]:
        return frozenset(stint.team for stint in self.stints)


@dataclass(frozen=True, slots=True)
class Message:
    author: Literal["visitor", "agent", "system"]
    agent_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    """A completed order. Only the store's server's (`reported_by` "server") count as orders
    and revenue; the browser's are claims, reported apart, and those the tracker flagged over
    its caps (`over_cap`) only as a count. Orders recorded before the tracker said who reported
    them are the browser's."""

    order_id: str
    visitor_id: str
    at: datetime
    value: Decimal
    currency: str
    reported_by: str = "browser"
    over_cap: bool = False

    @property
    def is_revenue(self) -> bool:
        return self.reported_by == "server"

    @staticmethod
    def currency_of(raw: str | None) -> str:
        code = (raw or "").strip().upper()
        return code or NO_CURRENCY


# ---- per conversation ------------------------------------------------------------------------


def first_response_s(conversation: Conversation, messages: Sequence[Message]) -> float | None:
    """Seconds from the holder's stint's start to their first message in it; None if none."""
    holder = [s for s in conversation.stints if s.agent_id == conversation.agent_id]
    if not holder:
        return None
    return stint_first_response_s(holder[-1], messages)


def stint_first_response_s(
    stint: Assignment, messages: Sequence[Message], agents: frozenset[str] | None = None
) -> float | None:
    """Seconds from a stint's start to the first message its agent (or one of `agents`)
    wrote inside it; None if none."""
    writers = agents if agents is not None else frozenset((stint.agent_id,))
    for message in messages:
        if message.author == "agent" and message.agent_id in writers and stint.holds(message.at):
            return (message.at - stint.start).total_seconds()
    return None


@dataclass(frozen=True, slots=True)
class Stint:
    """What a report counts as one conversation of one agent or team: one assignment for an
    agent, consecutive assignments in one team for a team."""

    key: str
    span: Assignment  # from the first assignment's start to the last one's end
    agents: frozenset[str]


def stints_of(conversation: Conversation, grouping: Grouping) -> list[Stint]:
    if grouping == "agent":
        return [Stint(s.agent_id, s, frozenset((s.agent_id,))) for s in conversation.stints]
    merged: list[Stint] = []
    for stint in conversation.stints:
        if merged and merged[-1].key == stint.team:
            last = merged[-1]
            merged[-1] = Stint(
                last.key,
                Assignment(last.span.agent_id, last.key, last.span.start, stint.end),
                last.agents | {stint.agent_id},
            )
        else:
            merged.append(Stint(stint.team, stint, frozenset((stint.agent_id,))))
    return merged


@dataclass(frozen=True, slots=True)
class Wait:
    agent_id: str
    seconds: float
    replied_at: datetime
    team: str | None = None  # the replying agent's stint's team, when they held it


def response_waits(conversation: Conversation, messages: Sequence[Message]) -> list[Wait]:
    """Each run of visitor messages answered by an agent message (messages in seq order)."""
    waits: list[Wait] = []
    waiting_since: datetime | None = None
    stints = conversation.stints
    for message in messages:
        if message.author == "visitor":
            if waiting_since is None:
                waiting_since = message.at
        elif message.author == "agent" and message.agent_id:
            if waiting_since is not None:
                since = waiting_since
                held = [s for s in stints if s.agent_id == message.agent_id and s.holds(message.at)]
                if held:
                    since = max(since, held[-1].start)
                waits.append(
                    Wait(
                        message.agent_id,
                        max(0.0, (message.at - since).total_seconds()),
                        message.at,
                        held[-1].team if held else None,
                    )
                )
            waiting_since = None
    return waits


# ---- load ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    mean: float  # over the whole period (up to now)
    busy_mean: float  # over the time with at least one chat open
    max: int


def concurrent_load(
    intervals: Iterable[tuple[datetime, datetime | None]], start: datetime, end: datetime
) -> Load:
    """Simultaneously open chats over [start, end) from [open, close or None=still open)."""
    points: list[tuple[datetime, int]] = []
    for opened, closed in intervals:
        lo, hi = max(opened, start), min(closed or end, end)
        if hi > lo:
            points.append((lo, 1))
            points.append((hi, -1))
    span = (end - start).total_seconds()
    if not points or span <= 0:
        return Load(0.0, 0.0, 0)
    points.sort(key=lambda point: (point[0], point[1]))  # a close before an open at one instant
    level = peak = 0
    area = busy = 0.0
    previous = points[0][0]
    for at, step in points:
        elapsed = (at - previous).total_seconds()
        area += level * elapsed
        if level > 0:
            busy += elapsed
        level += step
        peak = max(peak, level)
        previous = at
    return Load(area / span, area / busy if busy > 0 else 0.0, peak)


# ---- orders ----------------------------------------------------------------------------------


def influenced(
    order: Order, conversation: Conversation, *, window: timedelta, now: datetime
) -> bool:
    """Whether a conversation (with an agent) of the buyer counts for this order."""
    if not conversation.stints or conversation.visitor_id != order.visitor_id:
        return False
    until = (conversation.closed_at or now) + window
    return conversation.created_at <= order.at <= until


@dataclass(frozen=True, slots=True)
class Attribution:
    order: Order
    agents: frozenset[str]
    teams: frozenset[str]

    @property
    def assisted(self) -> bool:
        return bool(self.agents)


def attribute(
    orders: Iterable[Order],
    conversations: Iterable[Conversation],
    *,
    window: timedelta,
    now: datetime,
) -> list[Attribution]:
    """Every order (each once, by id: the server's report of it if there is one, else the
    first) with the agents and teams it is credited to."""
    by_visitor: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in conversations:
        if conversation.stints:
            by_visitor[conversation.visitor_id].append(conversation)
    chosen: dict[str, Order] = {}
    for order in orders:
        kept = chosen.get(order.order_id)
        # a store that also sends the snippet's order: its browser copy never hides the real one
        if kept is None or (order.is_revenue and not kept.is_revenue):
            chosen[order.order_id] = order
    result: list[Attribution] = []
    for order in chosen.values():
        credited = [
            c
            for c in by_visitor.get(order.visitor_id, ())
            if influenced(order, c, window=window, now=now)
        ]
        result.append(
            Attribution(
                order,
                frozenset(agent for c in credited for agent in c.agents),
                frozenset(team for c in credited for team in c.teams),
            )
        )
    return result


def _money(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.01")))


def _revenue_dict(revenue: dict[str, Decimal]) -> dict[str, float]:
    return {currency: _money(revenue[currency]) for currency in sorted(revenue)}


@dataclass(frozen=True, slots=True)
class CurrencyShare:
    currency: str
    orders: int
    orders_assisted: int
    revenue: Decimal
    revenue_assisted: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "orders": self.orders,
            "orders_assisted": self.orders_assisted,
            "orders_share": ratio(self.orders_assisted, self.orders),
            "revenue": _money(self.revenue),
            "revenue_assisted": _money(self.revenue_assisted),
            "revenue_share": ratio(self.revenue_assisted, self.revenue),
        }


@dataclass(frozen=True, slots=True)
class AssistedShare:
    orders: int
    orders_assisted: int
    currencies: tuple[CurrencyShare, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "orders_assisted": self.orders_assisted,
            "orders_share": ratio(self.orders_assisted, self.orders),
            "currencies": [share.to_dict() for share in self.currencies],
        }


def ratio(part: float | Decimal, whole: float | Decimal) -> float | None:
    """part / whole, or None (not 0) when there is nothing to divide by."""
    if not whole:
        return None
    return float(part) / float(whole)


def assisted_report_figures(attributions: Iterable[Attribution]) -> dict[str, Any]:
    """The assisted share of the store's server's orders; beside it, apart, the same for the
    orders the browser reported (unverified) and how many of those were over the caps."""
    server: list[Attribution] = []
    browser: list[Attribution] = []
    over_cap = 0
    for item in attributions:
        if item.order.is_revenue:
            server.append(item)
        elif item.order.over_cap:
            over_cap += 1
        else:
            browser.append(item)
    return {
        **assisted_share(server).to_dict(),
        "browser": {**assisted_share(browser).to_dict(), "over_cap": over_cap},
    }


def assisted_share(attributions: Iterable[Attribution]) -> AssistedShare:
    """Orders and revenue assisted by chat out of the given orders, revenue per currency."""
    totals: dict[str, list[Any]] = {}
    for item in attributions:
        row = totals.setdefault(item.order.currency, [0, 0, Decimal(0), Decimal(0)])
        row[0] += 1
        row[2] += item.order.value
        if item.assisted:
            row[1] += 1
            row[3] += item.order.value
    shares = tuple(CurrencyShare(currency, *totals[currency]) for currency in sorted(totals))
    return AssistedShare(
        orders=sum(share.orders for share in shares),
        orders_assisted=sum(share.orders_assisted for share in shares),
        currencies=shares,
    )


# ---- per agent / per team ----------------------------------------------------------------------


@dataclass
class Figures:
    """One row of the agents' or the teams' report."""

    key: str
    conversations: int = 0
    unanswered: int = 0
    first_responses: list[float] = field(default_factory=list)
    response_times: list[float] = field(default_factory=list)
    intervals: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    orders: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)

    def to_dict(self, period_start: datetime, period_end: datetime) -> dict[str, Any]:
        load = concurrent_load(self.intervals, period_start, period_end)
        return {
            "conversations": self.conversations,
            "unanswered": self.unanswered,
            "first_response_median_s": _median(self.first_responses),
            "first_response_mean_s": _mean(self.first_responses),
            "response_mean_s": _mean(self.response_times),
            "responses": len(self.response_times),
            "load_mean": round(load.mean, 4),
            "load_busy_mean": round(load.busy_mean, 4),
            "load_max": load.max,
            "orders": self.orders,
            "revenue": _revenue_dict(self.revenue),
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


Grouping = Literal["agent", "team"]


class Report:
    """Per-agent or per-team figures over one period: feed conversations (with their messages)
    and order attributions, then read `rows()`. Memory: one small record per group, plus the
    lists of response times."""

    def __init__(self, grouping: Grouping, period: Period, *, now: datetime) -> None:
        self.grouping = grouping
        self.start = period.start
        self.end = min(period.end, max(now, period.start))
        self.groups: dict[str, Figures] = {}

    def group(self, key: str) -> Figures:
        figures = self.groups.get(key)
        if figures is None:
            figures = self.groups[key] = Figures(key)
        return figures

    def add_conversation(self, conversation: Conversation, messages: Sequence[Message]) -> None:
        """A conversation that overlaps the period, with its visitor and agent messages."""
        for stint in conversation.stints:  # load: every stint, clipped to the period
            key = stint.agent_id if self.grouping == "agent" else stint.team
            end = stint.end if stint.end is not None else conversation.closed_at
            self.group(key).intervals.append((stint.start, end))
        for counted in stints_of(conversation, self.grouping):
            if not self.start <= counted.span.start < self.end:
                continue
            figures = self.group(counted.key)
            figures.conversations += 1
            first = stint_first_response_s(counted.span, messages, counted.agents)
            if first is None:
                figures.unanswered += 1
            else:
                figures.first_responses.append(first)
        for wait in response_waits(conversation, messages):
            if not self.start <= wait.replied_at < self.end:
                continue
            team = wait.team or conversation.team
            wait_key = wait.agent_id if self.grouping == "agent" else team
            self.group(wait_key).response_times.append(wait.seconds)

    def add_orders(self, attributions: Iterable[Attribution]) -> None:
        """Credit the store's server's orders (the browser's are claims, not revenue)."""
        for item in attributions:
            if not item.order.is_revenue:
                continue
            keys = item.agents if self.grouping == "agent" else item.teams
            for key in keys:
                figures = self.group(key)
                figures.orders += 1
                currency = item.order.currency
                figures.revenue[currency] = figures.revenue.get(currency, Decimal(0)) + (
                    item.order.value
                )

    def rows(self, keep: Callable[[str], bool] = lambda key: True) -> list[dict[str, Any]]:
        return [
            {self.grouping: key, **self.groups[key].to_dict(self.start, self.end)}
            for key in sorted(self.groups)
            if keep(key)
        ]


def currencies_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every currency any row has revenue in, sorted (the CSV's revenue columns)."""
    return sorted({currency for row in rows for currency in row.get("revenue", {})})
