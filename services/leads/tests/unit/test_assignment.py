"""Assignment within a team: who is free, fewest open leads first, the cap, the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from beckon_contracts.presence import AgentPresence
from hypothesis import given
from hypothesis import strategies as st
from leads.domain.assignment import (
    DEFAULT_OPEN_LEAD_CAP,
    AgentLoad,
    Assignment,
    QueuedLead,
    capacity,
    choose_agent,
    drain,
    queue_order,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _agent(agent_id: str, open_leads: int = 0, **values: object) -> AgentLoad:
    return AgentLoad(agent_id, values.pop("status", "online"), open_leads, **values)  # type: ignore[arg-type]


def _queue(count: int, start: int = 0) -> list[QueuedLead]:
    return [QueuedLead(f"lead-{i:03d}", T0 + timedelta(seconds=i)) for i in range(start, count)]


# ---- choosing -------------------------------------------------------------------------------
def test_only_online_active_agents_below_their_cap_are_chosen() -> None:
    agents = [
        _agent("away", status="away"),
        _agent("offline", status="offline"),
        _agent("gone", active=False),
        _agent("full", 5, cap=5),
        _agent("over", 7, cap=5),  # e.g. after an admin lowered the cap
        _agent("no-leads", cap=0),
        _agent("free", 4, cap=5),
    ]
    assert [a.availability for a in agents] == [
        "away",
        "offline",
        "deactivated",
        "at_cap",
        "at_cap",
        "at_cap",
        "available",
    ]
    chosen = choose_agent(agents)
    assert chosen is not None
    assert chosen.agent_id == "free"
    assert choose_agent(agents[:-1]) is None
    assert capacity(agents) == 1


def test_a_deactivated_agent_is_skipped_even_when_online_and_idle() -> None:
    assert _agent("x", active=False, status="away").availability == "deactivated"
    assert choose_agent([_agent("x", active=False)]) is None


def test_the_agent_with_the_fewest_open_leads_wins() -> None:
    agents = [_agent("a", 3), _agent("b", 1), _agent("c", 2)]
    assert choose_agent(agents) == agents[1]


def test_a_tie_goes_to_the_longest_since_their_last_lead_never_first() -> None:
    recent = _agent("a", 1, last_assigned_at=T0 + timedelta(minutes=5))
    earlier = _agent("b", 1, last_assigned_at=T0)
    never = _agent("c", 1)
    assert choose_agent([recent, earlier, never]) == never
    assert choose_agent([recent, earlier]) == earlier
    # the same facts always give the same agent: the id breaks an exact tie
    assert choose_agent([_agent("z", 1, last_assigned_at=T0), earlier]) == earlier


def test_excluded_agents_are_passed_over() -> None:
    agents = [_agent("a", 0), _agent("b", 3)]
    chosen = choose_agent(agents, exclude={"a"})
    assert chosen is not None
    assert chosen.agent_id == "b"
    assert choose_agent(agents, exclude={"a", "b"}) is None


def test_an_agent_from_presence() -> None:
    presence = AgentPresence(agent_id="ben", name="Ben", status="away", open_chats=2)
    agent = AgentLoad.of(presence, open_leads=4, last_assigned_at=T0)
    assert agent == AgentLoad("ben", "away", 4, DEFAULT_OPEN_LEAD_CAP, T0, True)
    assert AgentLoad.of(presence, open_leads=0, cap=2, active=False).cap == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"open_leads": -1}, "open_leads is negative"),
        ({"cap": -1}, "cap is negative"),
        ({"last_assigned_at": datetime(2025, 1, 1)}, "last_assigned_at has no timezone"),
    ],
)
def test_impossible_loads_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AgentLoad(**{"agent_id": "a", "status": "online", "open_leads": 0, **values})  # type: ignore[arg-type]


# ---- the queue ------------------------------------------------------------------------------
def test_100_leads_over_3_agents_with_a_cap_of_5_leave_85_waiting_in_order() -> None:
    agents = [_agent(name, cap=5) for name in ("anna", "ben", "cecilia")]
    queue = _queue(100)
    drained = drain(reversed(queue), agents, now=T0)
    assert [a.lead_id for a in drained.assignments] == [lead.lead_id for lead in queue[:15]]
    assert list(drained.waiting) == queue[15:]
    assert {a.agent_id: a.open_leads for a in drained.agents} == {
        "anna": 5,
        "ben": 5,
        "cecilia": 5,
    }
    # spread in turn, not five to the first agent
    assert [a.agent_id for a in drained.assignments[:3]] == ["anna", "ben", "cecilia"]


def test_the_queue_drains_in_arrival_order_as_agents_come_online() -> None:
    team = [_agent("anna", status="offline", cap=2), _agent("ben", status="away", cap=2)]
    waiting = drain(_queue(5), team, now=T0)
    assert waiting.assignments == ()
    assert list(waiting.waiting) == _queue(5)

    anna_online = [AgentLoad("anna", "online", 0, 2), team[1]]
    first = drain(waiting.waiting, anna_online, now=T0 + timedelta(minutes=1))
    assert first.assignments == (
        Assignment("lead-000", "anna"),
        Assignment("lead-001", "anna"),
    )
    assert list(first.waiting) == _queue(5, start=2)

    both_online = [first.agents[0], AgentLoad("ben", "online", 0, 2)]
    second = drain(first.waiting, both_online, now=T0 + timedelta(minutes=2))
    assert second.assignments == (
        Assignment("lead-002", "ben"),
        Assignment("lead-003", "ben"),
    )
    assert list(second.waiting) == _queue(5, start=4)


def test_a_new_lead_does_not_jump_the_queue() -> None:
    waiting = _queue(2)
    new = QueuedLead("lead-new", T0 + timedelta(hours=1))
    drained = drain([*waiting, new], [_agent("anna", 4, cap=5)], now=T0 + timedelta(hours=1))
    assert drained.assignments == (Assignment("lead-000", "anna"),)
    assert [lead.lead_id for lead in drained.waiting] == ["lead-001", "lead-new"]


def test_arrival_order_is_by_time_then_lead_id() -> None:
    same = T0 + timedelta(seconds=1)
    leads = [QueuedLead("b", same), QueuedLead("c", T0), QueuedLead("a", same)]
    assert [lead.lead_id for lead in queue_order(leads)] == ["c", "a", "b"]
    with pytest.raises(ValueError, match="queued_at has no timezone"):
        QueuedLead("x", datetime(2025, 1, 1))


# ---- properties -----------------------------------------------------------------------------
STATUS = st.sampled_from(["online", "online", "online", "away", "offline"])
MOMENT = st.none() | st.integers(0, 50).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def teams(draw: st.DrawFn) -> list[AgentLoad]:
    count = draw(st.integers(0, 6))
    return [
        AgentLoad(
            agent_id=f"agent-{i}",
            status=draw(STATUS),
            open_leads=draw(st.integers(0, 8)),
            cap=draw(st.integers(0, 6)),
            last_assigned_at=draw(MOMENT),
            active=draw(st.booleans() | st.just(True)),
        )
        for i in range(count)
    ]


def _eligible(agents: list[AgentLoad]) -> list[AgentLoad]:
    return [a for a in agents if a.status == "online" and a.active and a.open_leads < a.cap]


@given(agents=teams())
def test_the_chosen_agent_is_free_and_has_the_fewest_open_leads(agents: list[AgentLoad]) -> None:
    chosen = choose_agent(agents)
    eligible = _eligible(agents)
    if not eligible:
        assert chosen is None
        return
    assert chosen in eligible
    assert chosen.open_leads + 1 <= chosen.cap  # never above the cap
    assert chosen.open_leads == min(a.open_leads for a in eligible)


@given(agents=teams(), leads=st.integers(0, 40))
def test_a_drain_never_exceeds_a_cap_and_hands_out_the_oldest_leads(
    agents: list[AgentLoad], leads: int
) -> None:
    queue = _queue(leads)
    drained = drain(queue, agents, now=T0 + timedelta(minutes=1))
    given_to: dict[str, int] = {}
    for assignment in drained.assignments:
        given_to[assignment.agent_id] = given_to.get(assignment.agent_id, 0) + 1
    for agent in agents:
        received = given_to.get(agent.agent_id, 0)
        if agent not in _eligible(agents):
            assert received == 0
        else:
            assert agent.open_leads + received <= agent.cap
    # the oldest leads are handed out, the rest wait in order
    handed = len(drained.assignments)
    assert [a.lead_id for a in drained.assignments] == [lead.lead_id for lead in queue[:handed]]
    assert list(drained.waiting) == queue[handed:]
    assert handed == min(leads, capacity(agents))
    if drained.waiting:
        assert capacity(drained.agents) == 0


@given(agents=teams(), leads=st.integers(1, 30))
def test_each_lead_of_a_drain_goes_to_a_least_loaded_free_agent(
    agents: list[AgentLoad], leads: int
) -> None:
    loads = {agent.agent_id: agent.open_leads for agent in agents}
    free = {a.agent_id for a in _eligible(agents)}
    caps = {agent.agent_id: agent.cap for agent in agents}
    for assignment in drain(_queue(leads), agents, now=T0).assignments:
        candidates = [agent_id for agent_id in free if loads[agent_id] < caps[agent_id]]
        assert loads[assignment.agent_id] == min(loads[c] for c in candidates)
        loads[assignment.agent_id] += 1
