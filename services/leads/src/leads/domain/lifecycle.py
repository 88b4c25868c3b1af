"""A lead's lifecycle, without I/O: its statuses, who holds it, the changes allowed, the event
each change produces and what it does to the speed-to-lead timers.

    new → assigned → contacted → qualified → won | lost (reason) | recycled

A lead is *open* while new, assigned, contacted or qualified, and *closed* once won, lost or
recycled. `new` means nobody holds it (it waits in its team's queue); `assigned` means an agent
holds it and has not reached the person yet; a contacted or qualified lead may lose its holder
(unassigned to the queue when its agent leaves) and keeps its status meanwhile. The
first-contact timers run while a lead is new or assigned (`SLA_RUNNING`): assigning and
unassigning leave them running, contacting or closing stops them, reopening starts them anew.

Changes (`TRANSITIONS`, from → to; anything else is refused):

| change   | from                           | to                | event               | holder   |
|----------|--------------------------------|-------------------|---------------------|----------|
| assign   | new, contacted, qualified (1)  | assigned, same    | lead.assigned       | sets     |
| reassign | assigned, contacted, qualified | same              | lead.reassigned     | changes  |
| unassign | assigned, contacted, qualified | new, same         | lead.reassigned     | clears   |
| contact  | new, assigned                  | contacted         | lead.contacted      | kept (2) |
| qualify  | contacted                      | qualified         | lead.status_changed | kept     |
| win      | any open, lost, recycled       | won               | lead.won            | kept     |
| lose     | any open                       | lost (a reason)   | lead.lost           | kept     |
| recycle  | contacted, qualified           | recycled          | lead.status_changed | kept     |
| reopen   | recycled, lost (admins only)   | new               | lead.status_changed | clears   |

(1) only when nobody holds it; reassign and unassign need a holder, reassign another agent.
(2) a new lead's contacter becomes its holder. Unassigning sends the lead to its team's queue.

Won is final. A closed lead takes only the documented exceptions: `reopen` (recycled: "come
back to it later" is the point of recycling; lost: an admin's correction), and `win` of a lost
or recycled lead (an order by its visitor proves the sale, whatever the agent had concluded).
Qualifying needs a contact first, and recycling too: "not now" is learnt by talking. Events
come from `leads.events` contracts; `lead.created`, `lead.merged`, `lead.routed` and the SLA
events are not status changes and come from capture, merge, routing and the SLA timers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from beckon_edge.refusals import Conflict, Forbidden, Invalid

Status = Literal["new", "assigned", "contacted", "qualified", "won", "lost", "recycled"]
STATUSES: tuple[Status, ...] = (
    "new",
    "assigned",
    "contacted",
    "qualified",
    "won",
    "lost",
    "recycled",
)
OPEN_STATUSES: frozenset[Status] = frozenset({"new", "assigned", "contacted", "qualified"})
CLOSED_STATUSES: frozenset[Status] = frozenset({"won", "lost", "recycled"})
SLA_RUNNING: frozenset[Status] = frozenset({"new", "assigned"})  # first contact still due

LostReason = Literal[
    "no_response",  # never reached after the attempts the team requires
    "not_interested",
    "bought_elsewhere",
    "price",
    "no_budget",
    "not_a_fit",  # wrong product, outside the service area, not a buyer
    "invalid_contact",  # the e-mail bounces, the number is not theirs
    "duplicate",  # the same person as another lead the merge did not catch
    "spam",
    "other",  # needs a note saying what
]
LOST_REASONS: tuple[LostReason, ...] = (
    "no_response",
    "not_interested",
    "bought_elsewhere",
    "price",
    "no_budget",
    "not_a_fit",
    "invalid_contact",
    "duplicate",
    "spam",
    "other",
)
MAX_NOTE_CHARS = 1000

ChangeKind = Literal[
    "assign", "reassign", "unassign", "contact", "qualify", "win", "lose", "recycle", "reopen"
]
EventKind = Literal[
    "lead.assigned",
    "lead.reassigned",
    "lead.contacted",
    "lead.status_changed",
    "lead.won",
    "lead.lost",
]

TRANSITIONS: dict[ChangeKind, dict[Status, Status]] = {
    "assign": {"new": "assigned", "contacted": "contacted", "qualified": "qualified"},
    "reassign": {"assigned": "assigned", "contacted": "contacted", "qualified": "qualified"},
    "unassign": {"assigned": "new", "contacted": "contacted", "qualified": "qualified"},
    "contact": {"new": "contacted", "assigned": "contacted"},
    "qualify": {"contacted": "qualified"},
    "win": {status: "won" for status in (*sorted(OPEN_STATUSES), "lost", "recycled")},
    "lose": {status: "lost" for status in sorted(OPEN_STATUSES)},
    "recycle": {"contacted": "recycled", "qualified": "recycled"},
    "reopen": {"recycled": "new", "lost": "new"},
}
EVENT_OF: dict[ChangeKind, EventKind] = {
    "assign": "lead.assigned",
    "reassign": "lead.reassigned",
    "unassign": "lead.reassigned",
    "contact": "lead.contacted",
    "qualify": "lead.status_changed",
    "win": "lead.won",
    "lose": "lead.lost",
    "recycle": "lead.status_changed",
    "reopen": "lead.status_changed",
}
ADMIN_ONLY: frozenset[tuple[ChangeKind, Status]] = frozenset({("reopen", "lost")})

_PROGRESS: dict[Status, int] = {"new": 0, "assigned": 1, "contacted": 2, "qualified": 3}


def progress(status: Status) -> int:
    """How far along an open lead is (new 0 ... qualified 3); closed leads count as -1."""
    return _PROGRESS.get(status, -1)


def is_open(status: Status) -> bool:
    return status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class LeadState:
    """What the lifecycle needs of a lead: its status, its holder and why it was lost."""

    status: Status
    agent_id: str | None = None
    lost_reason: LostReason | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A change asked for: `kind`, the agent for assign/reassign/contact, the reason (and for
    `other`, a note) for lose. Build with the helpers below (`assign("ann")`, `lose("price")`)."""

    kind: ChangeKind
    agent_id: str | None = None
    reason: str | None = None
    note: str | None = None


def assign(agent_id: str) -> Change:
    return Change("assign", agent_id=agent_id)


def reassign(agent_id: str) -> Change:
    return Change("reassign", agent_id=agent_id)


def unassign() -> Change:
    return Change("unassign")


def contact(agent_id: str) -> Change:
    return Change("contact", agent_id=agent_id)


def qualify() -> Change:
    return Change("qualify")


def win() -> Change:
    return Change("win")


def lose(reason: str, note: str | None = None) -> Change:
    return Change("lose", reason=reason, note=note)


def recycle() -> Change:
    return Change("recycle")


def reopen() -> Change:
    return Change("reopen")


@dataclass(frozen=True, slots=True)
class Transition:
    """An allowed change: the state before and after, the event to publish, its timers."""

    change: Change
    before: LeadState
    after: LeadState
    event: EventKind

    @property
    def status_changed(self) -> bool:
        return self.before.status != self.after.status

    @property
    def stops_sla(self) -> bool:
        """The first-contact timers stop: contacted or closed."""
        return self.before.status in SLA_RUNNING and self.after.status not in SLA_RUNNING

    @property
    def starts_sla(self) -> bool:
        """New first-contact timers start: a reopened lead waits for contact again."""
        return self.before.status not in SLA_RUNNING and self.after.status in SLA_RUNNING

    @property
    def closes(self) -> bool:
        return is_open(self.before.status) and not is_open(self.after.status)

    @property
    def reopens(self) -> bool:
        return not is_open(self.before.status) and is_open(self.after.status)


def apply(state: LeadState, change: Change, *, admin: bool = False) -> Transition:
    """The transition `change` makes from `state`, or a refusal with a code: `Conflict` when the
    lead's status or holder does not allow it, `Invalid` for a bad reason or note, `Forbidden`
    for an admin's change asked by an agent."""
    kind = change.kind
    table = TRANSITIONS.get(kind)
    if table is None:
        raise Invalid("unknown_change", f"{kind!r} is not a change of a lead's status")
    if state.status not in table:
        raise _refusal(state, kind)
    if (kind, state.status) in ADMIN_ONLY and not admin:
        raise Forbidden("reopen_needs_admin", "only an admin can reopen a lost lead")
    holder = state.agent_id
    agent = _agent(change) if kind in ("assign", "reassign", "contact") else None
    if kind == "assign":
        if holder is not None:
            raise Conflict(
                "already_assigned", f"the lead is {holder}'s; reassign it to change its agent"
            )
        holder = agent
    elif kind == "reassign":
        if holder is None:
            raise Conflict("not_assigned", "nobody holds this lead; assign it instead")
        if agent == holder:
            raise Conflict("same_agent", f"the lead is already {holder}'s")
        holder = agent
    elif kind == "unassign":
        if holder is None:
            raise Conflict("not_assigned", "nobody holds this lead")
        holder = None
    elif kind == "contact":
        holder = holder or agent
    elif kind == "reopen":
        holder = None
    # only `lose` reaches lost, and every way out of it clears the reason
    reason = _lost_reason(change) if kind == "lose" else None
    after = LeadState(status=table[state.status], agent_id=holder, lost_reason=reason)
    return Transition(change=change, before=state, after=after, event=EVENT_OF[kind])


def allowed(state: LeadState, *, admin: bool = False) -> tuple[ChangeKind, ...]:
    """The changes the console may offer for this lead (assign vs reassign by its holder)."""
    kinds: list[ChangeKind] = []
    for kind, table in TRANSITIONS.items():
        if state.status not in table:
            continue
        if (kind, state.status) in ADMIN_ONLY and not admin:
            continue
        if kind == "assign" and state.agent_id is not None:
            continue
        if kind in ("reassign", "unassign") and state.agent_id is None:
            continue
        kinds.append(kind)
    return tuple(kinds)


def _agent(change: Change) -> str:
    agent = (change.agent_id or "").strip()
    if not agent:
        raise Invalid(
            "agent_required",
            f"{change.kind} needs the agent's id",
            errors=[{"loc": "agent_id", "msg": "required"}],
        )
    return agent


def _lost_reason(change: Change) -> LostReason:
    reason = change.reason
    if reason not in LOST_REASONS:
        known = ", ".join(LOST_REASONS)
        raise Invalid(
            "lost_reason_unknown" if reason else "lost_reason_required",
            f"a lost lead needs one of these reasons: {known}",
            errors=[{"loc": "reason", "msg": f"must be one of {known}"}],
        )
    note = (change.note or "").strip()
    if reason == "other" and not note:
        raise Invalid(
            "lost_note_required",
            "say in a note why the lead was lost when the reason is 'other'",
            errors=[{"loc": "note", "msg": "required when the reason is 'other'"}],
        )
    if len(note) > MAX_NOTE_CHARS:
        raise Invalid(
            "note_too_long",
            f"the note is longer than {MAX_NOTE_CHARS} characters",
            errors=[{"loc": "note", "msg": f"at most {MAX_NOTE_CHARS} characters"}],
        )
    return reason  # type: ignore[return-value]


_VERB: dict[ChangeKind, str] = {
    "assign": "assigned",
    "reassign": "reassigned",
    "unassign": "unassigned",
    "contact": "marked contacted",
    "qualify": "qualified",
    "win": "won",
    "lose": "lost",
    "recycle": "recycled",
    "reopen": "reopened",
}


def _refusal(state: LeadState, kind: ChangeKind) -> Conflict:
    status = state.status
    verb = _VERB[kind]
    if status == "won":
        return Conflict("lead_won", f"the lead is won; it cannot be {verb}")
    if status in CLOSED_STATUSES:
        return Conflict("lead_closed", f"the lead is {status}; reopen it before it is {verb}")
    if kind == "reopen":
        return Conflict("lead_open", "the lead is open already")
    if kind == "assign" and state.agent_id is not None:
        return Conflict(
            "already_assigned", f"the lead is {state.agent_id}'s; reassign it to change its agent"
        )
    if kind in ("reassign", "unassign") and state.agent_id is None:
        return Conflict("not_assigned", "nobody holds this lead; assign it instead")
    if kind == "qualify" and status == "qualified":
        return Conflict("already_qualified", "the lead is qualified already")
    if kind in ("qualify", "recycle"):
        return Conflict("not_contacted", f"contact the person before the lead is {verb}")
    if kind == "contact":
        return Conflict("already_contacted", f"the lead is {status} already")
    return Conflict("transition_not_allowed", f"a {status} lead cannot be {verb}")
