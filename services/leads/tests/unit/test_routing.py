"""Routing rules as data: validation with located problems, first-match routing, the tester."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from beckon_edge.refusals import status_of
from hypothesis import given
from hypothesis import strategies as st
from leads.domain import routing
from leads.domain.routing import LeadFacts, RoutingRules, check_routing, explain, route
from pydantic import ValidationError

TEAMS = {"sales", "service", "key-accounts"}

# The seeds' example: sales collects the sales leads, service books car servicing.
DEMO: dict[str, Any] = {
    "default_team": "sales",
    "rules": [
        {
            "id": "car-service",
            "name": "Car servicing bookings",
            "conditions": [
                {"any": [{"categories_viewed": ["Car service", "Tyres"]}, {"tags": "service-*"}]}
            ],
            "team": "service",
        },
        {
            "id": "big-b2b",
            "name": "Business buyers with a big cart",
            "conditions": [{"segment": "b2b"}, {"cart_value": {"gte": 5000, "currency": "EUR"}}],
            "team": "key-accounts",
        },
    ],
}


def _rules(data: dict[str, Any]) -> RoutingRules:
    return routing.parse_routing(data, teams=TEAMS)


def _facts(**values: Any) -> LeadFacts:
    return LeadFacts.model_validate({"validation": "qualified", **values})


def _one(condition: dict[str, Any], **facts: Any) -> routing.Check:
    """How one condition fares for a lead (through a rule, as routing evaluates it)."""
    rules = _rules(
        {
            "default_team": "sales",
            "rules": [{"id": "r", "name": "R", "conditions": [condition], "team": "service"}],
        }
    )
    (trace,) = explain(rules, _facts(**facts)).rules
    (check,) = trace.checks
    return check


def _locs(problems: list[routing.Problem]) -> list[str]:
    return [problem.loc for problem in problems]


# ---- the seeds' example ---------------------------------------------------------------------
def test_service_gets_car_servicing_and_sales_gets_the_rest() -> None:
    rules = _rules(DEMO)

    by_category = route(rules, _facts(categories_viewed=["Brakes", "car service"]))
    assert (by_category.team, by_category.rule_id) == ("service", "car-service")
    assert "viewed category 'car service'" in by_category.why

    by_tag = route(rules, _facts(tags=["Service-Booking"]))
    assert (by_tag.team, by_tag.rule_id) == ("service", "car-service")

    shopper = route(rules, _facts(categories_viewed=["Tents"], cart_value=300, currency="EUR"))
    assert (shopper.team, shopper.rule_id) == ("sales", None)
    assert "default team 'sales'" in shopper.why

    business = route(rules, _facts(segment="b2b", cart_value=Decimal("7200.50"), currency="EUR"))
    assert (business.team, business.rule_id) == ("key-accounts", "big-b2b")
    assert [check.condition for check in business.checks] == ["segment", "cart_value"]


def test_the_first_enabled_rule_that_holds_wins_and_disabled_rules_are_skipped() -> None:
    data = {
        "default_team": "sales",
        "rules": [
            {"id": "off", "name": "Off", "enabled": False, "conditions": [{"tags": "x"}],
             "team": "key-accounts"},
            {"id": "first", "name": "First", "conditions": [{"tags": "x"}], "team": "service"},
            {"id": "second", "name": "Second", "conditions": [{"tags": "x"}], "team": "sales"},
        ],
    }  # fmt: skip
    decision = route(_rules(data), _facts(tags=["x"]))
    assert (decision.team, decision.rule_id) == ("service", "first")


def test_a_rule_holds_only_when_all_its_conditions_hold() -> None:
    rules = _rules(DEMO)
    small = route(rules, _facts(segment="b2b", cart_value=4999, currency="EUR"))
    consumer = route(rules, _facts(segment="b2c", cart_value=9000, currency="EUR"))
    assert small.rule_id is None
    assert consumer.rule_id is None


def test_without_rules_every_lead_goes_to_the_default_team() -> None:
    decision = route(_rules({"default_team": "service"}), _facts())
    assert decision == routing.Decision("service", None, "no rules; the default team 'service'")


# ---- conditions -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("condition", "facts", "held"),
    [
        ({"validation": "qualified"}, {"validation": "qualified"}, True),
        ({"validation": ["ready_to_buy", "qualified"]}, {"validation": "interested"}, False),
        ({"min_validation": "qualified"}, {"validation": "ready_to_buy"}, True),
        ({"min_validation": "qualified"}, {"validation": "qualified"}, True),
        ({"min_validation": "qualified"}, {"validation": "interested"}, False),
        ({"min_validation": "interested"}, {"validation": "contact_only"}, False),
        ({"segment": "b2b"}, {"segment": "b2b"}, True),
        ({"segment": "B2C"}, {"segment": "b2b"}, False),
        ({"tags": ["vip", "service-*"]}, {"tags": ["SERVICE-booking"]}, True),
        ({"tags": "vip"}, {"tags": ["vipx"]}, False),
        ({"categories_viewed": "Car service"}, {"categories_viewed": [" car SERVICE "]}, True),
        ({"categories_viewed": "Car service"}, {"categories_viewed": ["Car services"]}, False),
        ({"cart_value": {"gte": 100, "lt": 500}}, {"cart_value": 100}, True),
        ({"cart_value": {"gte": 100, "lt": 500}}, {"cart_value": 500}, False),
        ({"cart_value": {"gt": 0.1}}, {"cart_value": "0.1"}, False),  # exact, no float error
        ({"cart_value": {"gte": 0.1}}, {"cart_value": "0.1"}, True),
        ({"source": "google"}, {"source": "Google"}, True),
        ({"medium": ["cpc", "paid*"]}, {"medium": "paid_social"}, True),
        ({"campaign": "spring-??"}, {"campaign": "spring-25"}, True),
        ({"campaign": "spring-??"}, {"campaign": "spring-2025"}, False),
        ({"country": ["fi", "SE"]}, {"country": "FI"}, True),
        ({"country": "FI"}, {"country": "ee"}, False),
        ({"language": "fi"}, {"language": "fi-FI"}, True),
        ({"language": "fi"}, {"language": "fil"}, False),  # Filipino is not Finnish
        ({"language": "en-GB"}, {"language": "en-US"}, False),
        ({"language": "en-gb"}, {"language": "en_GB"}, True),
        ({"score": {"gte": 60, "lte": 80}}, {"score": 80}, True),
        ({"score": {"gt": 80}}, {"score": 80}, False),
        ({"score_segment": ["warm", "hot"]}, {"score_segment": "Hot"}, True),
        ({"score_segment": "hot"}, {"score_segment": "cold"}, False),
    ],
)
def test_each_condition(condition: dict[str, Any], facts: dict[str, Any], held: bool) -> None:
    check = _one(condition, **facts)
    assert check.held is held
    assert check.code == ("match" if held else "no_match")
    assert check.text


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        ({"tags": "vip"}, "no tag known"),
        ({"categories_viewed": "Tyres"}, "no viewed category known"),
        ({"cart_value": {"gte": 1}}, "no cart known"),
        ({"source": "google"}, "no source known"),
        ({"country": "FI"}, "no country known"),
        ({"language": "fi"}, "no language known"),
        ({"score": {"gte": 1}}, "no score known"),
        ({"score_segment": "hot"}, "no score segment known"),
    ],
)
def test_a_fact_the_lead_lacks_fails_its_condition_as_missing(
    condition: dict[str, Any], text: str
) -> None:
    check = _one(condition)
    assert (check.held, check.code, check.text) == (False, "missing", text)


def test_a_cart_in_another_currency_never_matches_a_rule_with_a_currency() -> None:
    sek = _one({"cart_value": {"gte": 100, "currency": "EUR"}}, cart_value=9000, currency="SEK")
    assert (sek.held, sek.code) == (False, "other_currency")
    assert sek.text == "the cart is in SEK; the rule counts in EUR"
    unknown = _one({"cart_value": {"gte": 100, "currency": "EUR"}}, cart_value=9000)
    assert (unknown.held, unknown.code) == (False, "other_currency")
    # an empty cart is 0 in every currency
    empty = _one({"cart_value": {"lt": 50, "currency": "EUR"}}, cart_value=0, currency="SEK")
    assert empty.held
    # a rule without a currency compares the amount as it is
    assert _one({"cart_value": {"gte": 100}}, cart_value=9000, currency="SEK").held


def test_groups_nest_and_report_their_parts() -> None:
    condition = {
        "all": [
            {"any": [{"country": "FI"}, {"language": "fi"}]},
            {"not": {"tags": "spam"}},
        ]
    }
    finn = _one(condition, country="SE", language="fi", tags=["vip"])
    assert finn.held
    assert [part.loc for part in finn.parts] == [
        "rules[0].conditions[0].all[0]",
        "rules[0].conditions[0].all[1]",
    ]
    assert finn.parts[0].parts[1].loc == "rules[0].conditions[0].all[0].any[1]"
    spam = _one(condition, country="FI", tags=["spam"])
    assert not spam.held
    assert spam.text == "1 of 2 fail: not (tag 'spam')"


@pytest.mark.parametrize(
    ("traits", "tags", "segment"),
    [
        ({}, [], "b2c"),
        ({"company": "Acme Oy"}, [], "b2b"),
        ({"company": {"name": "Acme Oy", "industry": "retail"}}, [], "b2b"),
        ({"company": {"industry": "retail"}}, [], "b2c"),
        ({"company": "  "}, [], "b2c"),
        ({"vat_id": "FI12345678"}, [], "b2b"),
        ({"company": "Acme Oy"}, ["B2C"], "b2c"),  # the agent's tag decides
        ({}, ["b2b"], "b2b"),
    ],
)
def test_segment_from_traits_and_tags(
    traits: dict[str, object], tags: list[str], segment: str
) -> None:
    assert routing.segment_of(traits, tags) == segment


# ---- validation -----------------------------------------------------------------------------
def test_every_problem_is_reported_at_its_place() -> None:
    bad = {
        "default_team": "salse",
        "rules": [
            {
                "id": "Car Service",
                "name": "",
                "conditions": [
                    {"cart_value": {"gte": 500, "lte": 100}},
                    {"validaton": "qualified"},
                    {"score": {}},
                ],
                "team": "service",
            },
            {"id": "a", "name": "A", "conditions": [], "team": "servce"},
            {
                "id": "a",
                "name": "A again",
                "conditions": [
                    {"not": {"country": "fin"}},
                    {"any": [{"language": "english!"}, {"min_validation": "hot"}]},
                    {"cart_value": {"gte": 1, "curency": "EUR"}},
                    {"segment": "business"},
                ],
                "team": "sales",
            },
        ],
    }
    rules, problems = check_routing(bad, teams=TEAMS)
    assert rules is None
    found = {problem.loc: problem.msg for problem in problems}
    assert _locs(problems) == [
        "default_team",
        "rules[0].id",
        "rules[0].name",
        "rules[0].conditions[0].cart_value",
        "rules[0].conditions[1]",
        "rules[0].conditions[2].score",
        "rules[1].conditions",
        "rules[1].team",
        "rules[2].conditions[0].not.country[0]",
        "rules[2].conditions[1].any[0].language[0]",
        "rules[2].conditions[1].any[1].min_validation",
        "rules[2].conditions[2].cart_value",
        "rules[2].conditions[3].segment",
        "rules[2].id",
    ]
    assert "did you mean 'sales'" in found["default_team"]
    assert "did you mean 'service'" in found["rules[1].team"]
    assert "did you mean 'validation'" in found["rules[0].conditions[1]"]
    assert "did you mean 'currency'" in found["rules[2].conditions[2].cart_value"]
    assert found["rules[0].conditions[0].cart_value"] == (
        "no value is at least 500 and at most 100; the bounds exclude each other"
    )
    assert found["rules[2].id"] == "id 'a' is already used by rules[1]"
    assert "e.g. 'car-service'" in found["rules[0].id"]
    assert "e.g. FI" in found["rules[2].conditions[0].not.country[0]"]
    assert not any(msg.startswith("Value error") for msg in found.values())


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"gte": 5, "gt": 4}, "give one lower bound: gte or gt, not both"),
        ({"lte": 5, "lt": 4}, "give one upper bound: lte or lt, not both"),
        ({"gt": 5, "lt": 5}, "no value is above 5 and below 5; the bounds exclude each other"),
        ({"gte": 5, "lt": 5}, "no value is at least 5 and below 5; the bounds exclude each other"),
        ({"currency": "EUR"}, "the range has no bound; give one of gte, gt, lte, lt"),
    ],
)
def test_a_range_no_value_can_meet_is_refused(bounds: dict[str, Any], message: str) -> None:
    _, problems = check_routing(
        {
            "default_team": "sales",
            "rules": [
                {"id": "r", "name": "R", "conditions": [{"cart_value": bounds}], "team": "sales"}
            ],
        }
    )
    assert [(p.loc, p.msg) for p in problems] == [("rules[0].conditions[0].cart_value", message)]


def test_a_single_point_range_is_fine() -> None:
    assert _one({"score": {"gte": 5, "lte": 5}}, score=5).held


def test_unknown_teams_are_problems_only_when_the_sites_teams_are_given() -> None:
    data = {**DEMO, "default_team": "nobody"}
    assert check_routing(data)[1] == []
    _, problems = check_routing(data, teams=TEAMS)
    assert _locs(problems) == ["default_team"]
    _, problems = check_routing(data, teams=set())
    assert "this site has no teams yet" in problems[0].msg


def test_bad_documents_are_problems_not_exceptions() -> None:
    assert check_routing([1, 2]) == (
        None,
        [routing.Problem("", "the routing rules must be a JSON object")],
    )
    deep: dict[str, Any] = {"tags": "x"}
    for _ in range(60):
        deep = {"not": deep}
    rules, problems = check_routing(
        {
            "default_team": "sales",
            "rules": [{"id": "r", "name": "R", "conditions": [deep], "team": "sales"}],
        }
    )
    assert rules is None
    assert "deeper than" in problems[0].msg


def test_the_posted_version_is_ignored_and_the_editor_json_round_trips() -> None:
    rules, problems = check_routing({**DEMO, "version": 42})
    assert problems == []
    assert rules is not None
    assert rules.version == 1
    as_json = routing.routing_json(rules)
    assert as_json["rules"][1]["conditions"][1] == {
        "cart_value": {"gte": 5000.0, "currency": "EUR"}
    }
    assert check_routing(as_json) == (rules, [])


def test_parse_routing_refuses_with_every_problem_as_a_422() -> None:
    with pytest.raises(routing.InvalidRouting) as caught:
        routing.parse_routing({"default_team": "sales", "rules": [{"id": "x"}]})
    refusal = caught.value
    assert status_of(refusal) == 422
    assert refusal.code == "invalid_routing_rules"
    assert refusal.errors == [
        {"loc": "rules[0].name", "msg": "Field required"},
        {"loc": "rules[0].conditions", "msg": "Field required"},
        {"loc": "rules[0].team", "msg": "Field required"},
    ]
    assert refusal.detail == "rules[0].name: Field required"


def test_a_duplicate_id_alone_is_one_problem_at_the_second_rules_id() -> None:
    rule = DEMO["rules"][0]
    _, problems = check_routing({"default_team": "sales", "rules": [rule, rule]})
    assert problems == [
        routing.Problem("rules[1].id", "id 'car-service' is already used by rules[0]")
    ]


def test_the_model_alone_refuses_a_duplicate_id() -> None:
    rule = DEMO["rules"][0]
    with pytest.raises(ValidationError, match=r"rules\[1\]\.id: id 'car-service' is already"):
        RoutingRules.model_validate({"default_team": "sales", "rules": [rule, rule]})


def test_the_testers_lead_is_validated_with_located_problems() -> None:
    facts, problems = routing.check_facts(
        {"validation": "hot", "cart_value": -5, "country": "Finland", "colour": "red"}
    )
    assert facts is None
    assert _locs(problems) == [
        "lead.validation",
        "lead.cart_value",
        "lead.country",
        "lead.colour",
    ]
    assert routing.check_facts("x") == (
        None,
        [routing.Problem("lead", "the lead must be a JSON object")],
    )


# ---- the tester -----------------------------------------------------------------------------
def test_the_tester_explains_every_rule_and_every_condition() -> None:
    data = {
        "default_team": "sales",
        "rules": [
            DEMO["rules"][0],
            {**DEMO["rules"][1], "enabled": False},
            {
                "id": "b2b",
                "name": "Any business",
                "conditions": [{"segment": "b2b"}, {"country": "FI"}],
                "team": "key-accounts",
            },
            {"id": "finns", "name": "Finns", "conditions": [{"country": "FI"}], "team": "sales"},
        ],
    }
    facts = _facts(segment="b2b", country="FI", cart_value=9000, currency="EUR")
    explanation = explain(_rules(data), facts)
    assert explanation.decision == route(_rules(data), facts)
    assert explanation.decision.rule_id == "b2b"
    assert [(t.rule_id, t.outcome) for t in explanation.rules] == [
        ("car-service", "failed"),
        ("big-b2b", "disabled"),
        ("b2b", "chosen"),
        ("finns", "shadowed"),
    ]
    failed = explanation.rules[0].checks[0]
    assert failed.text == "none of 2 holds: no viewed category known; no tag known"
    # a disabled rule is still evaluated, so the admin sees what it would do
    assert all(check.held for check in explanation.rules[1].checks)
    # the JSON the console reads
    body = orjson.loads(orjson.dumps(explanation.to_dict()))
    assert body["decision"]["team"] == "key-accounts"
    assert body["rules"][2]["checks"][1] == {
        "condition": "country",
        "loc": "rules[2].conditions[1]",
        "held": True,
        "code": "match",
        "expected": ["FI"],
        "actual": "FI",
        "text": "country FI",
    }


def test_the_tester_checks_every_condition_of_a_failing_rule() -> None:
    rules = _rules(
        {
            "default_team": "sales",
            "rules": [
                {
                    "id": "r",
                    "name": "R",
                    "conditions": [{"country": "FI"}, {"score": {"gte": 50}}, {"tags": "x"}],
                    "team": "service",
                }
            ],
        }
    )
    facts = _facts(country="SE", score=70)
    (trace,) = explain(rules, facts).rules
    assert [(c.condition, c.held, c.code) for c in trace.checks] == [
        ("country", False, "no_match"),
        ("score", True, "match"),
        ("tags", False, "missing"),
    ]
    assert trace.checks[1].text == "score 70, at least 50"
    assert route(rules, facts).why == "no enabled rule holds; the default team 'sales'"


def test_money_is_shown_in_the_rules_currency() -> None:
    check = _one({"cart_value": {"gte": 5000, "currency": "EUR"}}, cart_value=120, currency="EUR")
    assert check.text == "cart €120.00, not at least €5,000.00"
    assert check.actual == {"value": 120.0, "currency": "EUR"}


# ---- properties -----------------------------------------------------------------------------
TAG = st.sampled_from(["a", "b", "c", "d"])
RULE = st.tuples(
    st.booleans(), st.sets(TAG, min_size=1, max_size=3), st.sampled_from(sorted(TEAMS))
)


@given(rules=st.lists(RULE, max_size=8), tags=st.sets(TAG))
def test_route_picks_the_first_enabled_rule_that_holds(
    rules: list[tuple[bool, set[str], str]], tags: set[str]
) -> None:
    document = _rules(
        {
            "default_team": "sales",
            "rules": [
                {
                    "id": f"r{i}",
                    "name": f"Rule {i}",
                    "enabled": enabled,
                    "conditions": [{"tags": sorted(wanted)}],
                    "team": team,
                }
                for i, (enabled, wanted, team) in enumerate(rules)
            ],
        }
    )
    facts = _facts(tags=sorted(tags))
    first = next(
        (i for i, (enabled, wanted, _) in enumerate(rules) if enabled and wanted & tags), None
    )
    decision = route(document, facts)
    if first is None:
        assert (decision.team, decision.rule_id) == ("sales", None)
    else:
        assert (decision.team, decision.rule_id) == (rules[first][2], f"r{first}")
    explanation = explain(document, facts)
    assert explanation.decision == decision
    assert [t.outcome for t in explanation.rules].count("chosen") == (first is not None)
