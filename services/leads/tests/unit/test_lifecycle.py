"""A lead's lifecycle: the transition table, holders, lost reasons, events and SLA effects."""

from __future__ import annotations

import pytest
from beckon_edge.refusals import Conflict, Forbidden, Invalid, Refusal
from hypothesis import given, settings
from hypothesis import strategies as st
from leads.domain.lifecycle import (
    CLOSED_STATUSES,
    EVENT_OF,
    LOST_REASONS,
    OPEN_STATUSES,
    SLA_RUNNING,
    STATUSES,
    TRANSITIONS,
    Change,
    LeadState,
    allowed,
    apply,
    assign,
    contact,
    lose,
    qualify,
    reassign,
    recycle,
    reopen,
    unassign,
    win,
)

NEW = LeadState("new")
ASSIGNED = LeadState("assigned", agent_id="ann")
CONTACTED = LeadState("contacted", agent_id="ann")


def test_the_happy_path_and_its_events() -> None:
    steps = [assign("ann"), contact("ann"), qualify(), win()]
    state = NEW
    events = []
    for change in steps:
        transition = apply(state, change)
        events.append(transition.event)
        state = transition.after
    assert state == LeadState("won", agent_id="ann")
    assert events == ["lead.assigned", "lead.contacted", "lead.status_changed", "lead.won"]


def test_every_change_has_its_event_kind() -> None:
    assert EVENT_OF == {
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


def test_the_transition_table() -> None:
    as_rows = {kind: dict(sorted(table.items())) for kind, table in TRANSITIONS.items()}
    assert as_rows == {
        "assign": {"contacted": "contacted", "new": "assigned", "qualified": "qualified"},
        "reassign": {"assigned": "assigned", "contacted": "contacted", "qualified": "qualified"},
        "unassign": {"assigned": "new", "contacted": "contacted", "qualified": "qualified"},
        "contact": {"assigned": "contacted", "new": "contacted"},
        "qualify": {"contacted": "qualified"},
        "win": {
            "assigned": "won",
            "contacted": "won",
            "lost": "won",
            "new": "won",
            "qualified": "won",
            "recycled": "won",
        },
        "lose": {"assigned": "lost", "contacted": "lost", "new": "lost", "qualified": "lost"},
        "recycle": {"contacted": "recycled", "qualified": "recycled"},
        "reopen": {"lost": "new", "recycled": "new"},
    }


# --- holders -----------------------------------------------------------------------------------


def test_reassign_changes_the_holder_and_keeps_the_status() -> None:
    moved = apply(CONTACTED, reassign("bob"))
    assert moved.after == LeadState("contacted", agent_id="bob")
    assert not moved.status_changed
    assert not moved.stops_sla


def test_unassign_sends_an_assigned_lead_back_to_new_and_a_contacted_one_stays() -> None:
    assert apply(ASSIGNED, unassign()).after == NEW
    assert apply(CONTACTED, unassign()).after == LeadState("contacted")


def test_a_contacted_lead_in_the_queue_is_assigned_without_a_status_change() -> None:
    taken = apply(LeadState("contacted"), assign("bob"))
    assert taken.after == LeadState("contacted", agent_id="bob")
    assert taken.event == "lead.assigned"


@pytest.mark.parametrize(
    ("state", "change", "code"),
    [
        (ASSIGNED, assign("bob"), "already_assigned"),
        (NEW, reassign("bob"), "not_assigned"),
        (LeadState("contacted"), reassign("bob"), "not_assigned"),
        (ASSIGNED, reassign("ann"), "same_agent"),
        (NEW, unassign(), "not_assigned"),
        (NEW, assign("ann"), None),
    ],
)
def test_holder_refusals(state: LeadState, change: Change, code: str | None) -> None:
    if code is None:
        assert apply(state, change).after.agent_id == "ann"
        return
    with pytest.raises(Conflict) as refused:
        apply(state, change)
    assert refused.value.code == code


@pytest.mark.parametrize("agent", [None, "", "  "])
def test_assign_reassign_and_contact_need_an_agent(agent: str | None) -> None:
    for state, kind in ((NEW, "assign"), (ASSIGNED, "reassign"), (ASSIGNED, "contact")):
        with pytest.raises(Invalid) as refused:
            apply(state, Change(kind, agent_id=agent))  # type: ignore[arg-type]
        assert refused.value.code == "agent_required"


def test_contacting_a_new_lead_makes_the_contacter_its_holder() -> None:
    assert apply(NEW, contact("bob")).after == LeadState("contacted", agent_id="bob")
    # a teammate's call on Ann's lead leaves it Ann's
    assert apply(ASSIGNED, contact("bob")).after == LeadState("contacted", agent_id="ann")


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "change", "code"),
    [
        (NEW, qualify(), "not_contacted"),
        (ASSIGNED, qualify(), "not_contacted"),
        (ASSIGNED, recycle(), "not_contacted"),
        (CONTACTED, contact("ann"), "already_contacted"),
        (LeadState("qualified", "ann"), contact("ann"), "already_contacted"),
        (LeadState("qualified", "ann"), qualify(), "already_qualified"),
        # a row that breaks the holder rule still gets a coded refusal, not a crash
        (LeadState("assigned"), assign("ann"), "transition_not_allowed"),
        (CONTACTED, reopen(), "lead_open"),
        (LeadState("won", "ann"), lose("price"), "lead_won"),
        (LeadState("won", "ann"), reopen(), "lead_won"),
        (LeadState("won", "ann"), win(), "lead_won"),
        (LeadState("lost", "ann", "price"), assign("bob"), "lead_closed"),
        (LeadState("lost", "ann", "price"), lose("spam"), "lead_closed"),
        (LeadState("recycled", "ann"), contact("ann"), "lead_closed"),
        (LeadState("recycled", "ann"), recycle(), "lead_closed"),
    ],
)
def test_forbidden_changes_are_conflicts_with_codes(
    state: LeadState, change: Change, code: str
) -> None:
    with pytest.raises(Conflict) as refused:
        apply(state, change)
    assert refused.value.code == code


def test_a_closed_lead_tells_how_to_go_on() -> None:
    with pytest.raises(Conflict, match="reopen it before it is assigned"):
        apply(LeadState("recycled"), assign("ann"))


def test_unknown_change_is_invalid() -> None:
    with pytest.raises(Invalid) as refused:
        apply(NEW, Change("promote"))  # type: ignore[arg-type]
    assert refused.value.code == "unknown_change"


# --- lost reasons ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [r for r in LOST_REASONS if r != "other"])
def test_lose_records_its_reason(reason: str) -> None:
    lost = apply(CONTACTED, lose(reason))
    assert lost.after == LeadState("lost", agent_id="ann", lost_reason=reason)  # type: ignore[arg-type]
    assert lost.event == "lead.lost"


@pytest.mark.parametrize(
    ("change", "code", "loc"),
    [
        (Change("lose"), "lost_reason_required", "reason"),
        (lose("too_expensive"), "lost_reason_unknown", "reason"),
        (lose("other"), "lost_note_required", "note"),
        (lose("other", "  "), "lost_note_required", "note"),
        (lose("price", "x" * 1001), "note_too_long", "note"),
    ],
)
def test_lose_refuses_bad_reasons_and_notes(change: Change, code: str, loc: str) -> None:
    with pytest.raises(Invalid) as refused:
        apply(CONTACTED, change)
    assert refused.value.code == code
    assert refused.value.errors == [{"loc": loc, "msg": refused.value.errors[0]["msg"]}]


def test_other_with_a_note_is_accepted() -> None:
    assert apply(NEW, lose("other", "moved abroad")).after.lost_reason == "other"


# --- reopen and the documented exceptions ------------------------------------------------------


def test_a_recycled_lead_reopens_as_new_for_anyone_and_waits_for_contact_again() -> None:
    back = apply(LeadState("recycled", "ann"), reopen())
    assert back.after == NEW
    assert back.reopens
    assert back.starts_sla
    assert back.event == "lead.status_changed"


def test_only_an_admin_reopens_a_lost_lead() -> None:
    lost = LeadState("lost", "ann", "price")
    with pytest.raises(Forbidden) as refused:
        apply(lost, reopen())
    assert refused.value.code == "reopen_needs_admin"
    assert apply(lost, reopen(), admin=True).after == NEW


def test_an_order_wins_a_lost_or_recycled_lead_and_clears_the_lost_reason() -> None:
    assert apply(LeadState("lost", "ann", "price"), win()).after == LeadState("won", "ann")
    assert apply(LeadState("recycled"), win()).after == LeadState("won")


# --- SLA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "change", "stops"),
    [
        (ASSIGNED, contact("ann"), True),
        (NEW, contact("ann"), True),
        (ASSIGNED, win(), True),
        (NEW, lose("spam"), True),
        (NEW, assign("ann"), False),
        (ASSIGNED, reassign("bob"), False),
        (ASSIGNED, unassign(), False),
        (CONTACTED, qualify(), False),
        (CONTACTED, win(), False),  # stopped already at contact
    ],
)
def test_which_changes_stop_the_first_contact_timers(
    state: LeadState, change: Change, stops: bool
) -> None:
    assert apply(state, change).stops_sla is stops


# --- what the console may offer ----------------------------------------------------------------


def test_allowed_changes_per_state() -> None:
    assert allowed(NEW) == ("assign", "contact", "win", "lose")
    assert allowed(ASSIGNED) == ("reassign", "unassign", "contact", "win", "lose")
    assert allowed(LeadState("contacted")) == ("assign", "qualify", "win", "lose", "recycle")
    assert allowed(LeadState("won", "ann")) == ()
    assert allowed(LeadState("lost", "ann", "price")) == ("win",)
    assert allowed(LeadState("lost", "ann", "price"), admin=True) == ("win", "reopen")


# --- properties over every path ----------------------------------------------------------------

_changes = st.one_of(
    st.sampled_from(["ann", "bob", "cy"]).flatmap(
        lambda agent: st.sampled_from([assign(agent), reassign(agent), contact(agent)])
    ),
    st.sampled_from(LOST_REASONS).map(lambda reason: lose(reason, "note")),
    st.sampled_from([unassign(), qualify(), win(), recycle(), reopen(), lose("nope")]),
)


def _valid(state: LeadState) -> bool:
    if state.status not in STATUSES:
        return False
    if state.status == "new" and state.agent_id is not None:
        return False
    if state.status == "assigned" and state.agent_id is None:
        return False
    return (state.status == "lost") == (state.lost_reason is not None)


@settings(max_examples=400)
@given(st.lists(_changes, max_size=30), st.booleans())
def test_no_path_reaches_a_forbidden_state(changes: list[Change], admin: bool) -> None:
    state = NEW
    contacted_since_open = False
    for change in changes:
        try:
            transition = apply(state, change, admin=admin)
        except Refusal:
            # a refused change is offered by nobody: `allowed` and `apply` agree
            assert change.kind not in allowed(state, admin=admin) or change.kind in (
                "reassign",
                "lose",
            )
            continue
        assert change.kind in allowed(state, admin=admin)
        assert transition.before == state
        after = transition.after
        assert _valid(after), (state, change, after)
        assert transition.event == EVENT_OF[change.kind]
        # qualified and recycled are reached only through a contact since the lead (re)opened
        if after.status in ("qualified", "recycled"):
            assert contacted_since_open
        if after.status == "contacted":
            contacted_since_open = True
        if transition.reopens:
            contacted_since_open = False
        # timers: stop exactly when leaving new/assigned, start exactly when coming back
        assert transition.stops_sla == (
            state.status in SLA_RUNNING and after.status not in SLA_RUNNING
        )
        if transition.stops_sla:
            assert change.kind in ("contact", "win", "lose")
        if transition.starts_sla:
            assert change.kind == "reopen"
        state = after


@given(
    st.sampled_from(sorted(CLOSED_STATUSES)),
    st.sampled_from(["ann", None]),
    _changes,
    st.booleans(),
)
def test_a_closed_lead_takes_only_the_documented_reopen_or_an_order(
    status: str, agent: str | None, change: Change, admin: bool
) -> None:
    state = LeadState(status, agent, "price" if status == "lost" else None)  # type: ignore[arg-type]
    try:
        transition = apply(state, change, admin=admin)
    except Refusal:
        return
    assert (status, change.kind) in {
        ("lost", "reopen"),
        ("recycled", "reopen"),
        ("lost", "win"),
        ("recycled", "win"),
    }
    if change.kind == "reopen":
        assert transition.after == NEW
        assert admin or status == "recycled"


@given(st.sampled_from(sorted(OPEN_STATUSES)), _changes)
def test_an_open_lead_leaves_the_open_set_only_by_win_lose_or_recycle(
    status: str, change: Change
) -> None:
    agent = None if status == "new" else "ann"
    try:
        transition = apply(LeadState(status, agent), change)  # type: ignore[arg-type]
    except Refusal:
        return
    assert transition.closes == (change.kind in ("win", "lose", "recycle"))
    assert not transition.reopens
