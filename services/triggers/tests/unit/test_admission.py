import json
import math

import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import TeamPresence
from triggers.domain.admission import (
    Admitted,
    Candidate,
    HourlyCounter,
    Refused,
    SiteAdmission,
    TeamCapacity,
)

NOW = 1_800_000_000.0


def _presence(*agents, team="sales"):
    """agents: (agent_id, status, open_chats, max_chats)."""
    return TeamPresence.model_validate(
        {
            "event_id": str(uuid7()),
            "occurred_at": "2026-11-23T10:00:00Z",
            "site_id": "demo",
            "team": team,
            "agents": [
                {
                    "agent_id": agent_id,
                    "name": agent_id.upper(),
                    "avatar_url": f"https://cdn.example/{agent_id}.png",
                    "status": status,
                    "open_chats": open_chats,
                    "max_chats": max_chats,
                }
                for agent_id, status, open_chats, max_chats in agents
            ],
        }
    )


_counter = iter(range(1_000_000))


def _candidate(visitor="v1", rule="r1", score=50.0, priority=0, **overrides):
    n = next(_counter)
    fields = {
        "invitation_id": f"i{n}",
        "site_id": "demo",
        "visitor_id": visitor,
        "session_id": "s1",
        "rule_id": rule,
        "team": "sales",
        "priority": priority,
        "is_default": False,
        "score": score,
        "at": NOW - 1,
        "expires_after": 60.0,
        "max_per_hour": None,
    } | overrides
    return Candidate(**fields)


def _site(free_slots=1, rate=1.0, busy_above=0.8, max_per_hour=None, team="sales"):
    """A site whose team has one online agent with `free_slots` free of 50."""
    site = SiteAdmission(acceptance_rate=rate, busy_above=busy_above, max_per_hour=max_per_hour)
    site.update_presence(_presence(("a1", "online", 50 - free_slots, 50), team=team))
    return site


def _admitted(decisions):
    return [d.candidate.visitor_id for d in decisions if isinstance(d, Admitted)]


def _reasons(decisions):
    return {d.candidate.visitor_id: d.reason for d in decisions if isinstance(d, Refused)}


def _visitors(n, **overrides):
    return [_candidate(visitor=f"v{i}", score=100.0 - i, **overrides) for i in range(n)]


# ---- capacity -----------------------------------------------------------------------------


def test_team_capacity_counts_online_agents_only():
    capacity = TeamCapacity.of(
        _presence(("a1", "online", 1, 5), ("a2", "online", 3, 5), ("a3", "away", 0, 5))
    )
    assert capacity.online_agents == 2
    assert capacity.free_slots == 6
    assert capacity.load_ratio == pytest.approx(0.4)
    assert capacity.best_agent is not None
    assert capacity.best_agent.agent_id == "a1"  # most free slots


def test_an_agent_over_their_limit_has_no_negative_slots():
    capacity = TeamCapacity.of(_presence(("a1", "online", 7, 5), ("a2", "online", 0, 2)))
    assert capacity.free_slots == 2
    assert capacity.best_agent.agent_id == "a2"


def test_nobody_online_means_full_load():
    capacity = TeamCapacity.of(_presence(("a1", "away", 0, 5), ("a2", "offline", 0, 5)))
    assert (capacity.online_agents, capacity.free_slots, capacity.load_ratio) == (0, 0, 1.0)
    assert capacity.best_agent is None


# ---- budget -------------------------------------------------------------------------------


@pytest.mark.parametrize(("free", "rate"), [(3, 0.3), (2, 0.5), (4, 0.25), (1, 1.0), (7, 0.7)])
def test_budget_is_free_slots_divided_by_the_acceptance_rate(free, rate):
    site = _site(free_slots=free, rate=rate)
    expected = round(free / rate)  # exact for these cases; floor must not lose one to 9.999…
    assert site.budget("sales", NOW) == expected
    decisions = site.admit(_visitors(expected + 2), NOW)
    assert len(_admitted(decisions)) == expected
    assert list(_reasons(decisions).values()) == ["no_capacity", "no_capacity"]
    assert site.budget("sales", NOW) == 0


def test_budget_floors_fractions():
    site = _site(free_slots=2, rate=0.3)  # 6.67 → 6
    assert site.budget("sales", NOW) == math.floor(2 / 0.3)


def test_outstanding_invitations_use_up_the_budget_across_calls():
    site = _site(free_slots=2, rate=0.5)  # budget 4
    assert len(_admitted(site.admit(_visitors(3), NOW))) == 3
    assert site.outstanding("sales", NOW) == 3
    later = [_candidate(visitor=f"w{i}") for i in range(3)]
    assert len(_admitted(site.admit(later, NOW + 1))) == 1


def test_highest_score_gets_the_budget_first():
    site = _site(free_slots=2, rate=1.0)
    decisions = site.admit(
        [
            _candidate(visitor="low", score=10),
            _candidate(visitor="high", score=80),
            _candidate(visitor="mid", score=40),
        ],
        NOW,
    )
    assert _admitted(decisions) == ["high", "mid"]
    assert _reasons(decisions) == {"low": "no_capacity"}


def test_ties_go_to_higher_priority_then_earlier():
    site = _site(free_slots=2, rate=1.0)
    decisions = site.admit(
        [
            _candidate(visitor="late", at=NOW - 1),
            _candidate(visitor="early", at=NOW - 5),
            _candidate(visitor="urgent", priority=9, at=NOW),
        ],
        NOW,
    )
    assert _admitted(decisions) == ["urgent", "early"]


# ---- no agents / no slot ------------------------------------------------------------------


def test_unknown_team_or_nobody_online_invites_nobody():
    site = SiteAdmission(acceptance_rate=0.5, busy_above=0.8)
    assert _reasons(site.admit([_candidate()], NOW)) == {"v1": "no_agents"}
    site.update_presence(_presence(("a1", "away", 0, 5)))
    assert _reasons(site.admit([_candidate()], NOW)) == {"v1": "no_agents"}
    assert site.budget("sales", NOW) == 0


def test_full_team_invites_nobody():
    site = SiteAdmission(acceptance_rate=0.1, busy_above=1.0)
    site.update_presence(_presence(("a1", "online", 5, 5), ("a2", "online", 6, 5)))
    assert _reasons(site.admit([_candidate()], NOW)) == {"v1": "no_capacity"}


def test_presence_changes_take_effect_immediately():
    site = _site(free_slots=5)
    site.update_presence(_presence(("a1", "offline", 0, 5)))
    assert _reasons(site.admit([_candidate()], NOW)) == {"v1": "no_agents"}


def test_teams_have_separate_budgets():
    site = _site(free_slots=1, rate=1.0)
    site.update_presence(_presence(("b1", "online", 0, 1), team="support"))
    decisions = site.admit(
        [
            _candidate(visitor="s1"),
            _candidate(visitor="s2"),
            _candidate(visitor="h1", team="support"),
        ],
        NOW,
    )
    assert sorted(_admitted(decisions)) == ["h1", "s1"]


# ---- shedding the default rule ------------------------------------------------------------


def test_default_rule_is_shed_when_busy_while_other_rules_pass():
    site = SiteAdmission(acceptance_rate=0.25, busy_above=0.8)
    site.update_presence(_presence(("a1", "online", 4, 5), ("a2", "online", 4, 5)))  # load 0.8
    decisions = site.admit(
        [
            _candidate(visitor="d", rule="default", is_default=True, score=90),
            _candidate(visitor="t", rule="cart", score=10),
        ],
        NOW,
    )
    assert _admitted(decisions) == ["t"]
    assert _reasons(decisions) == {"d": "default_rule_shed"}


def test_default_rule_passes_when_not_busy():
    site = SiteAdmission(acceptance_rate=0.25, busy_above=0.8)
    site.update_presence(_presence(("a1", "online", 3, 5), ("a2", "online", 4, 5)))  # load 0.7
    decisions = site.admit([_candidate(rule="default", is_default=True)], NOW)
    assert _admitted(decisions) == ["v1"]


def test_default_rule_leaves_the_last_invitation_to_targeted_rules():
    site = _site(free_slots=1, rate=1.0)  # budget 1, load 49/50 < busy_above=1.0
    site.configure(acceptance_rate=1.0, busy_above=1.0)
    decisions = site.admit(
        [
            _candidate(visitor="d", is_default=True, score=99),
            _candidate(visitor="t", score=1),
        ],
        NOW,
    )
    assert _admitted(decisions) == ["t"]
    assert _reasons(decisions) == {"d": "default_rule_shed"}
    roomy = _site(free_slots=2, rate=1.0, busy_above=1.0)
    assert _admitted(roomy.admit([_candidate(visitor="d", is_default=True)], NOW)) == ["d"]


# ---- outstanding, expiry and resolve -----------------------------------------------------


def test_expired_invitations_free_the_budget():
    site = _site(free_slots=1, rate=1.0)
    assert _admitted(site.admit([_candidate(visitor="a", expires_after=60)], NOW)) == ["a"]
    assert _reasons(site.admit([_candidate(visitor="b")], NOW + 30)) == {"b": "no_capacity"}
    assert _admitted(site.admit([_candidate(visitor="b")], NOW + 60)) == ["b"]


def test_resolving_an_invitation_frees_the_budget():
    site = _site(free_slots=1, rate=1.0)
    first = site.admit([_candidate(visitor="a")], NOW)[0]
    assert site.resolve(first.candidate.invitation_id) is True
    assert site.resolve(first.candidate.invitation_id) is False
    assert site.resolve("unknown") is False
    assert _admitted(site.admit([_candidate(visitor="b")], NOW + 1)) == ["b"]


# ---- hourly caps --------------------------------------------------------------------------


def test_site_hourly_cap():
    site = _site(free_slots=10, rate=0.1, max_per_hour=2)
    decisions = site.admit(_visitors(3), NOW)
    assert len(_admitted(decisions)) == 2
    assert list(_reasons(decisions).values()) == ["site_hourly_cap"]
    assert _reasons(site.admit([_candidate(visitor="x")], NOW + 3599)) == {"x": "site_hourly_cap"}
    assert _admitted(site.admit([_candidate(visitor="x")], NOW + 3600 + 60)) == ["x"]


def test_rule_hourly_cap_leaves_other_rules_alone():
    site = _site(free_slots=10, rate=0.1)
    decisions = site.admit(
        [
            _candidate(visitor="a", rule="r1", max_per_hour=1, score=90),
            _candidate(visitor="b", rule="r1", max_per_hour=1, score=80),
            _candidate(visitor="c", rule="r2", max_per_hour=1, score=70),
        ],
        NOW,
    )
    assert _admitted(decisions) == ["a", "c"]
    assert _reasons(decisions) == {"b": "rule_hourly_cap"}


def test_hourly_counter_window_is_sixty_minutes():
    counter = HourlyCounter()
    start = 60.0 * 1000  # the start of a minute
    counter.add(start)
    counter.add(start + 59)
    assert counter.total(start + 59 * 60 + 59) == 2
    assert counter.total(start + 60 * 60) == 0
    assert HourlyCounter.from_list(counter.to_list()).total(start + 1) == 2


# ---- one per visitor ----------------------------------------------------------------------


def test_one_invitation_per_visitor_per_call_the_highest_ranked():
    site = _site(free_slots=10, rate=0.1)
    decisions = site.admit(
        [
            _candidate(visitor="v1", rule="low", priority=1),
            _candidate(visitor="v1", rule="high", priority=5),
        ],
        NOW,
    )
    admitted = [d for d in decisions if isinstance(d, Admitted)]
    assert [d.candidate.rule_id for d in admitted] == ["high"]
    assert _reasons(decisions) == {"v1": "duplicate"}


def test_a_visitor_refused_by_one_rule_can_be_invited_by_the_next():
    site = SiteAdmission(acceptance_rate=0.25, busy_above=0.8)
    site.update_presence(_presence(("a1", "online", 4, 5)))  # busy: default shed
    decisions = site.admit(
        [
            _candidate(rule="default", is_default=True, priority=9),
            _candidate(rule="cart", priority=1),
        ],
        NOW,
    )
    assert [d.candidate.rule_id for d in decisions if isinstance(d, Admitted)] == ["cart"]


def test_no_second_invitation_while_one_is_outstanding():
    site = _site(free_slots=10, rate=0.1)
    first = _candidate()
    assert _admitted(site.admit([first], NOW)) == ["v1"]
    assert _reasons(site.admit([_candidate()], NOW + 1)) == {"v1": "duplicate"}
    assert _reasons(site.admit([first], NOW + 2)) == {"v1": "duplicate"}  # a replayed candidate
    assert _admitted(site.admit([_candidate()], NOW + 61)) == ["v1"]


# ---- the invitation -----------------------------------------------------------------------


def test_admitted_names_the_agent_with_most_free_slots_and_expires():
    site = SiteAdmission(acceptance_rate=0.5, busy_above=0.9)
    site.update_presence(
        _presence(("a1", "online", 4, 5), ("a2", "online", 1, 5), ("a3", "away", 0, 5))
    )
    (decision,) = site.admit([_candidate(expires_after=45)], NOW)
    assert isinstance(decision, Admitted)
    assert (decision.agent.agent_id, decision.agent.name) == ("a2", "A2")
    assert decision.agent.avatar_url == "https://cdn.example/a2.png"
    assert decision.expires_at == NOW + 45


# ---- restart ------------------------------------------------------------------------------


def test_state_survives_a_restart_as_plain_json():
    site = _site(free_slots=2, rate=1.0, max_per_hour=3)
    site.admit(
        [_candidate(visitor="a", rule="r1", max_per_hour=1), _candidate(visitor="b", rule="r2")],
        NOW,
    )
    data = json.loads(json.dumps(site.to_dict()))
    restored = SiteAdmission.from_dict(data, acceptance_rate=1.0, busy_above=0.8, max_per_hour=3)
    assert restored.to_dict() == data
    restored.update_presence(_presence(("a1", "online", 46, 50)))  # capacity is re-read
    assert restored.outstanding("sales", NOW) == 2
    decisions = restored.admit(
        [
            _candidate(visitor="a"),
            _candidate(visitor="c", rule="r1", max_per_hour=1),
            _candidate(visitor="d", rule="r3"),
            _candidate(visitor="e", rule="r3"),
        ],
        NOW + 1,
    )
    assert _reasons(decisions) == {
        "a": "duplicate",
        "c": "rule_hourly_cap",
        "e": "site_hourly_cap",
    }
    assert _admitted(decisions) == ["d"]


def test_prune_forgets_expired_and_idle_counters():
    site = _site(free_slots=2, rate=1.0)
    site.admit([_candidate(rule="r1")], NOW)
    site.prune(NOW + 2 * 3600)
    assert site.to_dict() == {"outstanding": [], "site_hourly": [], "rule_hourly": {}}


@pytest.mark.parametrize(
    ("rate", "busy", "cap"), [(0.0, 0.8, None), (1.5, 0.8, None), (0.5, 0.0, None), (0.5, 0.8, -1)]
)
def test_rejects_invalid_settings(rate, busy, cap):
    with pytest.raises(ValueError, match="must be"):
        SiteAdmission(acceptance_rate=rate, busy_above=busy, max_per_hour=cap)
