"""Who may be invited, when: per-visitor limits, minimum browsing, business hours, priority,
renderable messages, deterministic holdout groups and hourly caps."""

from datetime import UTC, datetime

import pytest
from beckon_contracts.rules import Rule, SiteRules
from triggers.domain.observation import Observation, Product
from triggers.domain.rules import (
    CompiledRules,
    holdout_position,
    in_holdout,
    visitor_limit_reason,
)
from triggers.domain.state import InvitationMark, VisitorState, apply

MONDAY_NOON = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()
T0 = MONDAY_NOON
PINNED_POSITION = 20.921788
SHOES = Product("trail-runner-x", "Trail Runner X", "shoes", 129.9, "EUR")


def ev(kind: str, at: float, session_id: str = "s1", **fields) -> Observation:
    return Observation(
        event_id=f"{kind}-{at}",
        type=kind,
        site_id="demo",
        visitor_id="v1",
        session_id=session_id,
        at=T0 + at,
        **fields,
    )


def page(at: float, path: str = "/", page_type: str = "home", **fields) -> Observation:
    return ev(
        "page_viewed",
        at,
        url=f"https://shop.example{path}",
        path=path,
        page_type=page_type,
        **fields,
    )


def visit(*observations: Observation) -> tuple[VisitorState, Observation]:
    state = VisitorState(site_id="demo", visitor_id="v1")
    for obs in observations:
        apply(state, obs)
    return state, observations[-1]


def rule(rule_id: str = "r", **fields) -> Rule:
    data = {
        "id": rule_id,
        "name": rule_id,
        "message": "Shoes or boots? I can help you choose.",
        "when": {"time_on_site": {"gte": 0}},
    }
    return Rule.model_validate({**data, **fields})


def mark(rule_id: str, at: float, session_id: str | None = "s1", arm: str = "invited"):
    return InvitationMark(
        invitation_id=f"i-{rule_id}-{at}",
        rule_id=rule_id,
        arm=arm,
        at=T0 + at,
        session_id=session_id,
    )


def site(*rules: Rule, **fields) -> CompiledRules:
    return CompiledRules.from_site(SiteRules(site_id="demo", rules=list(rules), **fields))


# ---- visitor_limit_reason -------------------------------------------------------------------
def test_no_prior_invitations_is_allowed():
    assert visitor_limit_reason(rule(), [], "s1", T0) is None


def test_once_per_session():
    r = rule(limits={"once_per": "session", "cooldown": 0})
    assert visitor_limit_reason(r, [mark("r", 0)], "s1", T0 + 60) == "once_per_session"
    assert visitor_limit_reason(r, [mark("r", 0)], "s2", T0 + 60) is None
    assert visitor_limit_reason(r, [mark("other", 0)], "s1", T0 + 60) is None


def test_once_per_visitor():
    r = rule(limits={"once_per": "visitor", "cooldown": 0})
    assert visitor_limit_reason(r, [mark("r", 0, "old")], "s9", T0 + 86400 * 30) == (
        "once_per_visitor"
    )
    assert visitor_limit_reason(r, [mark("other", 0)], "s1", T0 + 60) is None


def test_no_once_per_limit_leaves_only_the_cooldown():
    r = rule(limits={"once_per": None, "cooldown": "1m"})
    assert visitor_limit_reason(r, [mark("r", 0)], "s1", T0 + 30) == "cooldown"
    assert visitor_limit_reason(r, [mark("r", 0)], "s1", T0 + 61) is None


def test_cooldown_counts_invitations_from_any_rule():
    r = rule(limits={"once_per": "session", "cooldown": "10m"})
    marks = [mark("other", 0)]
    assert visitor_limit_reason(r, marks, "s1", T0 + 599) == "cooldown"
    assert visitor_limit_reason(r, marks, "s1", T0 + 600) is None


def test_held_out_marks_count_like_invitations():
    r = rule(limits={"once_per": "session", "cooldown": "10m"})
    held = [mark("r", 0, arm="held_out")]
    assert visitor_limit_reason(r, held, "s1", T0 + 3600) == "once_per_session"
    other_held = [mark("other", 0, arm="held_out")]
    assert visitor_limit_reason(r, other_held, "s1", T0 + 60) == "cooldown"


# ---- evaluate: gates ------------------------------------------------------------------------
def test_nothing_fires_before_min_browsing():
    compiled = site(rule(), min_browsing="30s")
    state, obs = visit(page(0), page(29, "/c/shoes", "category"))
    assert compiled.evaluate(state, obs) == []
    state, obs = visit(page(0), page(30, "/c/shoes", "category"))
    assert [m.rule_id for m in compiled.evaluate(state, obs)] == ["r"]


def test_invitations_already_made_filter_matches():
    compiled = site(rule(limits={"once_per": "session", "cooldown": 0}), min_browsing=0)
    state, obs = visit(page(0), page(40, "/c/shoes", "category"))
    assert len(compiled.evaluate(state, obs)) == 1
    state.invitations.append(mark("r", 40))
    assert compiled.evaluate(state, obs) == []
    later = page(3 * 3600, session_id="s2")
    apply(state, later)  # a new session: once per session allows it again
    assert len(compiled.evaluate(state, later)) == 1


def test_site_business_hours_in_the_site_timezone():
    hours = {"mon": ["09:00-17:00"]}
    compiled = site(rule(), min_browsing=0, timezone="America/New_York", business_hours=hours)
    # 12:00 UTC on Monday is 07:00 in New York: closed
    state, obs = visit(page(0), page(60, "/c/shoes", "category"))
    assert compiled.evaluate(state, obs) == []
    # 15:00 UTC is 10:00 in New York: open
    state, obs = visit(page(3 * 3600), page(3 * 3600 + 60, "/c/shoes", "category"))
    assert len(compiled.evaluate(state, obs)) == 1


def test_a_rule_s_own_business_hours_override_the_site_s():
    always = rule("always")
    evening = rule("evening", business_hours={"mon": ["18:00-22:00"]})
    compiled = site(always, evening, min_browsing=0, business_hours={"mon": ["09:00-17:00"]})
    state, obs = visit(page(0), page(60, "/c/shoes", "category"))
    assert [m.rule_id for m in compiled.evaluate(state, obs)] == ["always"]
    state, obs = visit(page(7 * 3600), page(7 * 3600 + 60, "/c/shoes", "category"))  # 19:01
    assert [m.rule_id for m in compiled.evaluate(state, obs)] == ["evening"]


def test_closed_dates_close_the_site():
    compiled = site(
        rule(),
        min_browsing=0,
        business_hours={"mon": ["00:00-24:00"], "closed_dates": ["2024-01-01"]},
    )
    state, obs = visit(page(0), page(60, "/c/shoes", "category"))
    assert compiled.evaluate(state, obs) == []


def test_matches_come_highest_priority_first_and_disabled_rules_never():
    compiled = site(
        rule("low", priority=-5),
        rule("high", priority=10),
        rule("b-mid", priority=3),
        rule("a-mid", priority=3),
        rule("off", priority=99, enabled=False),
        min_browsing=0,
    )
    state, obs = visit(page(0), page(60, "/c/shoes", "category"))
    matches = compiled.evaluate(state, obs)
    assert [m.rule_id for m in matches] == ["high", "a-mid", "b-mid", "low"]
    assert [m.priority for m in matches] == [10, 3, 3, -5]
    assert compiled.rule("off") is None


def test_a_rule_whose_message_cannot_be_rendered_does_not_match():
    needs_product = rule("product", message="Questions about the {product_name}?")
    needs_agent = rule("agent", message="Hi, I'm {agent_name}. Need a hand?")
    compiled = site(needs_product, needs_agent, min_browsing=0)
    state, obs = visit(page(0), page(60, "/c/shoes", "category"))
    assert [m.rule_id for m in compiled.evaluate(state, obs)] == ["agent"]
    state, obs = visit(
        page(0),
        ev(
            "product_viewed",
            60,
            url="https://shop.example/p/x",
            path="/p/x",
            page_type="product",
            product=SHOES,
            currency="EUR",
        ),
    )
    matches = {m.rule_id: m for m in compiled.evaluate(state, obs)}
    assert matches["product"].message() == "Questions about the Trail Runner X?"
    assert matches["agent"].message("Mia") == "Hi, I'm Mia. Need a hand?"
    assert matches["agent"].message() is None


def test_evaluate_accepts_a_later_tick():
    idle = rule("idle", when={"checkout_idle": {"gte": "45s"}})
    compiled = site(idle, min_browsing=0)
    state, obs = visit(
        page(0, "/checkout", "checkout"),
        ev("checkout_started", 5, cart_value=80.0, cart_items=1, currency="EUR"),
    )
    assert compiled.evaluate(state, obs) == []
    assert [m.rule_id for m in compiled.evaluate(state, obs, now=T0 + 60)] == ["idle"]


# ---- holdout --------------------------------------------------------------------------------
def test_holdout_is_deterministic_and_stable():
    first = [in_holdout("demo", f"v{i}", "r", 10) for i in range(200)]
    assert first == [in_holdout("demo", f"v{i}", "r", 10) for i in range(200)]
    assert 0 <= holdout_position("demo", "v1", "r") < 100
    assert holdout_position("demo", "v1", "r") != holdout_position("demo", "v1", "other")


def test_holdout_known_value_pins_the_hash():
    # If this changes, every running experiment would reshuffle its groups.
    assert round(holdout_position("demo", "visitor-1", "big-cart"), 6) == pytest.approx(
        PINNED_POSITION
    )


def test_holdout_proportion_is_close_to_the_percent():
    held = sum(in_holdout("demo", f"visitor-{i}", "big-cart", 10) for i in range(10_000))
    assert 800 <= held <= 1200


def test_holdout_groups_are_independent_per_rule():
    a = {i for i in range(10_000) if in_holdout("demo", f"v{i}", "a", 50)}
    b = {i for i in range(10_000) if in_holdout("demo", f"v{i}", "b", 50)}
    assert 2000 <= len(a & b) <= 3000  # ~25 % if independent, 50 % if identical


def test_holdout_edges():
    assert not any(in_holdout("demo", f"v{i}", "r", 0) for i in range(1000))
    assert all(in_holdout("demo", f"v{i}", "r", 100) for i in range(1000))
