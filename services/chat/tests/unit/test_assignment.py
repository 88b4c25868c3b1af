from datetime import UTC, datetime, timedelta

import pytest
from chat.conversations.model import AgentLoad, pick_agent

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _agent(agent_id, open_chats=0, *, status="online", max_chats=5, last=None):
    return AgentLoad(agent_id, status, open_chats, max_chats, last)


def _picked(*agents):
    chosen = pick_agent(agents)
    return chosen.agent_id if chosen is not None else None


def test_goes_to_the_agent_with_the_fewest_open_chats():
    assert _picked(_agent("anna", 3), _agent("ben", 1), _agent("cecilia", 2)) == "ben"


def test_fewest_open_chats_beats_having_waited_longer():
    busy_but_waiting = _agent("anna", 2, last=T0 - timedelta(hours=5))
    idle_but_recent = _agent("ben", 1, last=T0)
    assert _picked(busy_but_waiting, idle_but_recent) == "ben"


def test_never_above_the_agents_limit():
    assert _picked(_agent("anna", 5, max_chats=5), _agent("ben", 2, max_chats=2)) is None
    assert _picked(_agent("anna", 0, max_chats=1), _agent("ben", 1, max_chats=1)) == "anna"


def test_an_agent_over_the_limit_after_a_transfer_is_skipped():
    assert _picked(_agent("anna", 7, max_chats=5), _agent("ben", 4, max_chats=5)) == "ben"


@pytest.mark.parametrize("status", ["away", "offline"])
def test_agents_who_are_not_online_are_skipped(status):
    assert _picked(_agent("anna", 0, status=status), _agent("ben", 4)) == "ben"
    assert _picked(_agent("anna", 0, status=status)) is None


def test_tie_goes_to_whoever_waited_longest_since_their_last_assignment():
    agents = [
        _agent("anna", 1, last=T0 - timedelta(minutes=1)),
        _agent("ben", 1, last=T0 - timedelta(minutes=30)),
        _agent("cecilia", 1, last=T0 - timedelta(minutes=10)),
    ]
    assert _picked(*agents) == "ben"
    assert _picked(*reversed(agents)) == "ben"


def test_never_assigned_counts_as_waiting_longest():
    assert _picked(_agent("anna", 0, last=T0 - timedelta(days=365)), _agent("ben", 0)) == "ben"
    assert _picked(_agent("ben", 0), _agent("anna", 0, last=T0 - timedelta(days=365))) == "ben"


def test_a_full_tie_is_broken_deterministically():
    assert _picked(_agent("ben"), _agent("anna")) == "anna"
    assert _picked(_agent("anna"), _agent("ben")) == "anna"


def test_none_available_gives_none():
    assert pick_agent([]) is None
    assert _picked(_agent("anna", 5), _agent("ben", status="away")) is None


def test_accepts_any_iterable():
    assert pick_agent(iter([_agent("anna")])) == _agent("anna")


def test_free_slots_count_only_online_agents():
    assert _agent("anna", 2, max_chats=5).free_slots == 3
    assert _agent("anna", 9, max_chats=5).free_slots == 0
    assert _agent("anna", 0, status="away").free_slots == 0
