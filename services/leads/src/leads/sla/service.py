"""SLA use cases: plan a lead's first contact and stop it (called by routing, assignment and
status changes), fire due timers (the scheduler), and a site's policies and hours (admin).

A lead's plan comes from its team's policy for the lead's validation level (or the default,
`domain/sla.default_policy`), counted in the site's business hours and timezone
(`leads.sites`; none: around the clock in UTC). Its timers are rows in `leads.timers`: warnings
at the policy's shares and the breach at the deadline, unique per (lead, deadline, %), so
planning twice stores them once.

`fire_due` is one scheduler batch, in ONE transaction: claim due timers (`FOR UPDATE SKIP
LOCKED`), lock their leads (`SKIP LOCKED`: a lead being changed waits for the next pass),
re-check each lead, mark every timer fired or cancelled, publish the events, and for a breach
escalate and, per policy, reassign. A crash anywhere rolls all of it back, so no timer is ever
claimed but not fired, and a fired timer is never fired again.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID

from beckon_contracts.leads import LeadEscalated, LeadSlaBreached, LeadSlaWarning, _LeadEvent
from beckon_contracts.rules import BusinessHours
from beckon_edge.refusals import Invalid

from leads.assignment import service as assignment_service
from leads.domain import sla
from leads.events import lead_event, publish
from leads.lead import Lead
from leads.sla.models import SiteHours, SitePolicy
from leads.sla.store import BreachContext, DueTimer, SlaStore, TimerQueue
from leads.uow import UnitOfWork, UnitsOfWork

# A new timer due sooner than this wakes the schedulers at once (NOTIFY on commit); later ones
# are found by their next look (they look at least every `LEADS_SLA_POLL_S`, which is capped
# at this).
NOTIFY_WITHIN = timedelta(seconds=60)
# Lead statuses whose first contact is still awaited
AWAITING_CONTACT = frozenset({"new", "assigned"})


@functools.lru_cache(maxsize=512)
def _calendar(timezone: str, hours_json: str | None) -> sla.BusinessCalendar:
    hours = None if hours_json is None else BusinessHours.model_validate_json(hours_json)
    return sla.BusinessCalendar(hours, timezone)


def calendar_of(site: SiteHours) -> sla.BusinessCalendar:
    """The site's calendar, built once per distinct schedule (it caches DST lookups)."""
    hours = None if site.hours is None else site.hours.model_dump_json()
    return _calendar(site.timezone, hours)


def plan_for(
    policy: sla.SlaPolicy, site: SiteHours, *, started_at: datetime
) -> sla.FirstContactPlan | None:
    """The first-contact plan under `policy` in the site's hours (or around the clock)."""
    around_the_clock = isinstance(policy, SitePolicy) and not policy.business_hours_only
    calendar = _calendar("UTC", None) if around_the_clock else calendar_of(site)
    return sla.plan_first_contact(policy, calendar, started_at=started_at)


async def start_first_contact(
    tx: UnitOfWork,
    *,
    lead: Lead,
    now: datetime,
    started_at: datetime | None = None,
    fresh: bool = False,
) -> datetime | None:
    """Plan a routed lead's first-contact deadline under its team's policy (or the default),
    in the site's business hours, and store its timers. Returns the deadline (None: no SLA).
    Called once the lead has a team; a lead whose timers run already keeps them.
    `started_at` (default `now`): when the clock starts. `fresh`: the lead was inserted in
    this unit of work (it has no timers yet)."""
    if lead.team is None or not lead.open or lead.status not in AWAITING_CONTACT:
        return None
    store = tx.store(SlaStore)
    context = await store.plan_context(lead, lead.team, fresh=fresh)
    if context.running_deadline is not None:
        return context.running_deadline
    policy = context.policy or sla.default_policy(lead.team, lead.validation)
    plan = plan_for(policy, context.site, started_at=started_at or now)
    if plan is None:
        return None
    if fresh:  # none to collide with: written with the unit's other new leads' timers
        store.hold_timers(lead, plan, notify_before=now + NOTIFY_WITHIN)
        return plan.due_at
    added, earliest = await store.add_timers(lead, plan)
    if added and earliest is not None and earliest < now + NOTIFY_WITHIN:
        await store.notify_due(earliest)
    return plan.due_at


async def stop(tx: UnitOfWork, *, lead: Lead, now: datetime, reason: str = "stopped") -> int:
    """Cancel the lead's pending timers (contacted or closed); returns how many."""
    return await tx.store(SlaStore).cancel_pending(
        lead.site_id, lead.lead_id, now=now, reason=reason
    )


async def first_contact_deadline(tx: UnitOfWork, *, lead: Lead) -> datetime | None:
    """The lead's current first-contact deadline, running or breached (e.g. for `within_sla`
    when it is contacted); None if it has none."""
    return await tx.store(SlaStore).latest_deadline(lead.site_id, lead.lead_id)


# ---- firing ---------------------------------------------------------------------------------
Verdict = Literal["warn", "breach", "cancel"]


def judge(timer: DueTimer, lead: Lead, *, now: datetime) -> tuple[Verdict, str | None]:
    """What a claimed timer does, by the lead as it is now: fire (`warn`, `breach`) or
    cancel with a reason (the lead was contacted, closed or merged, or a stale warning)."""
    if lead.merged_into is not None:
        return "cancel", "lead_merged"
    if lead.status not in AWAITING_CONTACT:
        return "cancel", f"lead_{lead.status}"
    if lead.team is None:
        return "cancel", "lead_unrouted"
    as_timer = sla.SlaTimer(timer.kind, timer.due_at, timer.elapsed)
    if sla.is_stale_warning(as_timer, breach_due_at=timer.deadline_at, now=now):
        return "cancel", "stale"
    return ("breach" if timer.kind == "breach" else "warn"), None


class Reassign(Protocol):
    """`assignment.service.reassign`'s shape (the scheduler's tests pass a fake)."""

    def __call__(
        self, tx: UnitOfWork, *, lead: Lead, reason: Any, now: datetime
    ) -> Awaitable[Lead]: ...


@dataclass
class FireReport:
    """One batch: timers claimed, fired, cancelled, and left for a later pass (their lead or
    team was busy in another transaction)."""

    claimed: int = 0
    fired: int = 0
    cancelled: int = 0
    left: int = 0
    lateness_s: list[float] = field(default_factory=list)  # fired_at - due_at, per fired timer


async def fire_due(
    tx: UnitOfWork,
    *,
    now: datetime,
    limit: int,
    instance: str,
    reassign: Reassign | None = None,
    only: Sequence[int] | None = None,
) -> FireReport:
    """Claim up to `limit` due timers of every site and fire each once (in `tx`, a unit on
    `EVERY_SITE`): `lead.sla_warning`; `lead.sla_breached`, then `lead.escalated` to the team
    lead and reassignment per `domain/sla.on_breach`, with a new plan for the new assignee."""
    queue = tx.store(TimerQueue)
    timers = await queue.claim(now, limit, only=only)
    report = FireReport(claimed=len(timers))
    if not timers:
        return report
    leads = await queue.lock_leads(timer.lead_id for timer in timers)
    verdicts: list[tuple[DueTimer, Lead, Verdict, str | None]] = []
    breached: set[UUID] = set()
    for timer in timers:
        lead = leads.get(timer.lead_id)
        if lead is None:  # being changed elsewhere: next pass
            report.left += 1
            continue
        verdict, reason = judge(timer, lead, now=now)
        if verdict == "breach":
            if lead.lead_id in breached:  # two deadlines of one lead: the first one speaks
                verdict, reason = "cancel", "superseded"
            breached.add(lead.lead_id)
        verdicts.append((timer, lead, verdict, reason))

    contexts = await queue.breach_contexts(
        [leads[lead_id] for lead_id in sorted(breached, key=str)]
    )
    plans: dict[int, sla.BreachPlan] = {}
    kept: list[tuple[DueTimer, Lead, Verdict, str | None]] = []
    for timer, lead, verdict, reason in verdicts:
        if verdict == "breach":
            context = contexts[lead.lead_id]
            plan = sla.on_breach(
                context.policy,
                reassignments_so_far=context.reassignments,
                assigned=lead.assignee is not None,
            )
            assert lead.team is not None  # judged above
            if plan.reassign and not await queue.try_lock_team(lead.site_id, lead.team):
                report.left += 1  # the team is assigning right now: next pass
                continue
            plans[timer.timer_id] = plan
        kept.append((timer, lead, verdict, reason))

    await queue.settle(
        {timer.timer_id: reason for timer, _, _, reason in kept}, now=now, instance=instance
    )
    events: list[tuple[Lead, type[_LeadEvent], dict[str, Any]]] = []
    for timer, lead, verdict, _ in kept:
        if verdict == "cancel":
            report.cancelled += 1
            continue
        report.fired += 1
        report.lateness_s.append((now - timer.due_at).total_seconds())
        events.extend(_events_of(timer, lead, verdict, plans.get(timer.timer_id), contexts))
    first_seq = await queue.number_events(Counter(lead.lead_id for lead, _, _ in events))
    _publish(tx, events, first_seq, now=now)

    for timer, lead, verdict, _ in kept:
        breach = plans.get(timer.timer_id)
        if verdict == "breach" and breach is not None and breach.reassign:
            await _reassign_after_breach(tx, timer, lead, now=now, reassign=reassign)
    return report


def _events_of(
    timer: DueTimer,
    lead: Lead,
    verdict: Verdict,
    plan: sla.BreachPlan | None,
    contexts: dict[UUID, BreachContext],
) -> list[tuple[Lead, type[_LeadEvent], dict[str, Any]]]:
    common = {
        "timer_id": timer.timer_uuid,
        "team": lead.team,
        "agent_id": lead.assignee,
        "due_at": timer.deadline_at,
    }
    if verdict == "warn":
        return [(lead, LeadSlaWarning, {**common, "elapsed": timer.elapsed})]
    events: list[tuple[Lead, type[_LeadEvent], dict[str, Any]]] = [(lead, LeadSlaBreached, common)]
    if plan is not None and plan.escalate:
        team_lead = contexts[lead.lead_id].team_lead
        events.append(
            (
                lead,
                LeadEscalated,
                {
                    "team": lead.team,
                    "reason": "sla_breached",
                    "escalated_to": [team_lead] if team_lead else [],
                    "agent_id": lead.assignee,
                    "due_at": timer.deadline_at,
                },
            )
        )
    return events


def _publish(
    tx: UnitOfWork,
    events: list[tuple[Lead, type[_LeadEvent], dict[str, Any]]],
    first_seq: dict[UUID, int],
    *,
    now: datetime,
) -> None:
    next_seq = dict(first_seq)
    for lead, model, payload in events:
        seq = next_seq[lead.lead_id]
        next_seq[lead.lead_id] = seq + 1
        publish(tx, lead_event(model, lead, seq=seq, now=now, **payload))


async def _reassign_after_breach(
    tx: UnitOfWork, timer: DueTimer, lead: Lead, *, now: datetime, reassign: Reassign | None
) -> None:
    """Hand the breached lead on (in a unit of the lead's site on the same transaction, which
    already holds the team's lock) and start the new assignee's clock from now."""
    site_tx = UnitOfWork(tx.conn, lead.site_id)
    assert lead.team is not None
    site_tx.locked_teams.add(lead.team)  # taken by `try_lock_team` in this transaction
    hand_on = reassign or assignment_service.reassign
    after = await hand_on(site_tx, lead=lead, reason="sla_breached", now=now)
    if after.assignee != lead.assignee:
        await tx.store(TimerQueue).mark_reassigned(timer.timer_id)
        await site_tx.store(SlaStore).cancel_pending(
            lead.site_id, lead.lead_id, now=now, reason="superseded"
        )
        if after.assignee is not None:
            await start_first_contact(site_tx, lead=after, now=now)
    await site_tx.flush()  # its webhook deliveries and event numbers, on this transaction
    tx.publish(*site_tx.records)


# ---- a site's settings (admin) --------------------------------------------------------------
async def site_policies(uow: UnitsOfWork, *, site_id: str) -> list[SitePolicy]:
    """The site's own policies (teams and levels without one use the defaults)."""
    async with uow.read(site_id) as tx:
        policies: list[SitePolicy] = await tx.store(SlaStore).policies(site_id)
        return policies


async def replace_site_policies(
    uow: UnitsOfWork, *, site_id: str, policies: Sequence[SitePolicy], now: datetime
) -> list[SitePolicy]:
    """Replace the site's policies (applies to deadlines planned from now on)."""
    problems = [
        {"loc": f"policies.{problem['loc'].strip('[]')}", "msg": problem["msg"]}
        for problem in sla.check_policies(policies)
    ]
    async with uow(site_id) as tx:
        store = tx.store(SlaStore)
        teams = await store.team_names(site_id)
        for index, policy in enumerate(policies):
            if policy.team not in teams:
                known = ", ".join(teams) or "none yet"
                problems.append(
                    {
                        "loc": f"policies.{index}.team",
                        "msg": f"no team {policy.team!r} on this site (teams: {known})",
                    }
                )
        if problems:
            problems.sort(key=lambda problem: int(problem["loc"].split(".")[1]))
            first = problems[0]
            raise Invalid("invalid", f"{first['loc']}: {first['msg']}", errors=problems)
        await store.replace_policies(site_id, policies, now=now)
        stored: list[SitePolicy] = await store.policies(site_id)
        return stored


async def site_hours(uow: UnitsOfWork, *, site_id: str) -> SiteHours:
    """The site's timezone, weekly hours and holidays (none set: around the clock, UTC)."""
    async with uow.read(site_id) as tx:
        hours: SiteHours = await tx.store(SlaStore).site_hours(site_id)
        return hours


async def set_site_hours(
    uow: UnitsOfWork, *, site_id: str, hours: SiteHours, now: datetime
) -> SiteHours:
    """Set the site's hours (deadlines planned from now on count in them)."""
    async with uow(site_id) as tx:
        store = tx.store(SlaStore)
        await store.set_site_hours(site_id, hours, now=now)
        stored: SiteHours = await store.site_hours(site_id)
        return stored
