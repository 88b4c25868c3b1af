"""The rules contract: defaults, durations, validation errors that name the place, and a
round trip through JSON (what `rules.config` carries)."""

import json

import pytest
from beckon_contracts.rules import (
    CONDITION_KEYS,
    TEMPLATE_VARIABLES,
    BusinessHours,
    Limits,
    Rule,
    SiteRules,
    describe_errors,
    parse_duration,
)
from pydantic import TypeAdapter, ValidationError

RULE = {
    "id": "big-cart",
    "name": "Big cart",
    "message": "Your cart is at {cart_value}.",
    "when": {"cart_value": {"gte": 100}},
}


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        SiteRules.model_validate(data)
    return describe_errors(caught.value)


def site_with(**rule_fields) -> dict:
    return {"site_id": "demo", "rules": [{**RULE, **rule_fields}]}


def test_defaults():
    site = SiteRules.model_validate({"site_id": "demo", "rules": [RULE]})
    assert (site.version, site.timezone, site.min_browsing) == (1, "UTC", 20.0)
    assert site.business_hours is None
    assert site.max_invitations_per_hour is None
    assert (site.acceptance_rate, site.busy_above) == (0.3, 0.5)
    rule = site.rules[0]
    assert rule.enabled
    assert rule.priority == 0
    assert not rule.default
    assert (rule.team, rule.holdout_percent, rule.expires_after) == ("sales", 10.0, 90.0)
    assert rule.limits == Limits(once_per="session", cooldown=600.0, max_per_hour=None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (20, 20.0),
        (1.5, 1.5),
        ("20s", 20.0),
        ("3m", 180.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("90", 90.0),
        (" 1m 30s ", 90.0),
        ("0.5h", 1800.0),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["3 min", "m", "-5", -1, True, "1x", None, float("nan")])
def test_bad_durations(value):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_round_trip_through_json():
    data = {
        "site_id": "demo",
        "timezone": "Europe/Paris",
        "min_browsing": "30s",
        "business_hours": {
            "mon": "9:00-17:00",
            "sat": ["10:00 - 14:00"],
            "closed_dates": ["2024-12-25"],
        },
        "rules": [
            {
                **RULE,
                "limits": {"cooldown": "15m", "once_per": "visitor", "max_per_hour": 30},
                "expires_after": "2m",
                "when": {
                    "all": [
                        {"cart_value": {"gte": 100}},
                        {"not": {"url": "*/checkout*"}},
                        {"any": [{"referrer": {"regex": "google\\."}}, {"source": ["Newsletter"]}]},
                        {"time_on_site": {"gte": "3m", "lt": "1h"}},
                        {"page_type": "cart"},
                    ]
                },
            },
        ],
    }
    site = SiteRules.model_validate(data)
    dumped = site.model_dump(mode="json")
    assert dumped["min_browsing"] == 30.0
    assert dumped["rules"][0]["limits"]["cooldown"] == 900.0
    assert dumped["rules"][0]["expires_after"] == 120.0
    assert dumped["business_hours"]["mon"] == ["09:00-17:00"]
    assert dumped["rules"][0]["when"]["all"][1] == {
        "not": {"url": {"glob": "*/checkout*", "regex": None, "contains": None}}
    }
    assert SiteRules.model_validate(dumped) == site
    assert SiteRules.model_validate_json(site.model_dump_json()) == site
    assert SiteRules.model_validate(json.loads(json.dumps(dumped))) == site


def test_json_schema_is_exportable():
    schema = TypeAdapter(SiteRules).json_schema(mode="serialization")
    assert "Rule" in schema["$defs"]
    assert TypeAdapter(SiteRules).json_schema(mode="validation")["$defs"]


def test_unknown_operator_names_the_path():
    data = {
        "site_id": "demo",
        "rules": [
            RULE,
            RULE | {"id": "b"},
            RULE | {"id": "c"},
            RULE
            | {"id": "d", "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte ": 100}}]}},
        ],
    }
    assert errors_of(data) == [
        "rules[3].when.all[1].cart_value: unknown operator 'gte '; use one of gte, gt, lte, lt"
    ]


def test_unknown_condition_lists_the_valid_keys():
    [error] = errors_of(site_with(when={"any": [{"cart_valeu": {"gte": 1}}]}))
    assert error.startswith("rules[0].when.any[0]: unknown condition 'cart_valeu'")
    assert "did you mean 'cart_value'" in error
    assert all(key in error for key in CONDITION_KEYS)


def test_a_condition_has_exactly_one_key():
    [error] = errors_of(site_with(when={"cart_value": {"gte": 1}, "page_type": "cart"}))
    assert error.startswith("rules[0].when: a condition has exactly one key")
    [error] = errors_of(site_with(when=[{"page_type": "cart"}]))
    assert error.startswith("rules[0].when: a condition is a mapping")


def test_nested_not_paths():
    [error] = errors_of(site_with(when={"not": {"not": {"event": "clicked"}}}))
    assert error.startswith("rules[0].when.not.not.event: unknown event type 'clicked'")


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ({"cart_value": 100}, "expected a comparison like {gte: 100}"),
        ({"cart_value": {}}, "empty comparison"),
        ({"time_on_site": {"gte": "3 min"}}, "invalid duration '3 min'"),
        ({"url": {"regex": "("}}, "invalid regular expression"),
        ({"url": {"glob": "*", "contains": "x"}}, "exactly one of glob, regex, contains"),
        ({"url": {"prefix": "/x"}}, "unknown pattern kind 'prefix'"),
        ({"page_type": "prodcut"}, "unknown page type 'prodcut' (did you mean 'product'?)"),
        ({"segment": []}, "at least 1 item"),
        ({"all": []}, "at least 1 item"),
        ({"returning": "maybe"}, "valid boolean"),
    ],
)
def test_leaf_errors(when, fragment):
    [error] = errors_of(site_with(when=when))
    assert error.startswith("rules[0].when")
    assert fragment in error


def test_rule_fields_are_checked():
    assert errors_of(site_with(id="Big Cart"))[0].startswith("rules[0].id:")
    assert errors_of(site_with(holdout_percent=101))[0].startswith("rules[0].holdout_percent:")
    assert errors_of(site_with(message=""))[0].startswith("rules[0].message:")
    assert errors_of(site_with(message="x" * 501))[0].startswith("rules[0].message:")
    assert errors_of(site_with(colour="red"))[0].startswith("rules[0].colour: Extra inputs")
    assert errors_of(site_with(limits={"once_per": "day"}))[0].startswith(
        "rules[0].limits.once_per:"
    )


def test_message_variables_are_checked():
    [error] = errors_of(site_with(message="The {product} is great"))
    assert error.startswith("rules[0].message: unknown variable {product}")
    assert all(name in error for name in TEMPLATE_VARIABLES)
    rule = Rule.model_validate(RULE | {"message": "{agent_name} here: {product_name}?"})
    assert rule.variables == ("agent_name", "product_name")


def test_site_level_checks():
    assert errors_of({"site_id": "demo", "rules": [RULE, RULE]}) == [
        "rules[1]: id 'big-cart' is already used by rules[0]"
    ]
    two_defaults = [RULE | {"default": True}, RULE | {"id": "other", "default": True}]
    assert (
        "at most one rule may be the default"
        in errors_of({"site_id": "demo", "rules": two_defaults})[0]
    )
    assert errors_of({"site_id": "demo", "timezone": "Europe/Pariss"}) == [
        "timezone: unknown timezone 'Europe/Pariss'; use an IANA name like 'Europe/Paris' or 'UTC'"
    ]
    assert errors_of({"site_id": "demo", "acceptance_rate": 0})[0].startswith("acceptance_rate:")
    assert errors_of({"site_id": "demo", "busy_above": 1.5})[0].startswith("busy_above:")
    assert errors_of({"site_id": "Demo Store"})[0].startswith("site_id:")


def test_at_most_200_rules():
    rules = [RULE | {"id": f"r{i}"} for i in range(201)]
    assert "at most 200 items" in errors_of({"site_id": "demo", "rules": rules})[0]
    SiteRules.model_validate({"site_id": "demo", "rules": rules[:200]})


@pytest.mark.parametrize(
    ("hours", "fragment"),
    [
        ({"mon": ["17:00-09:00"]}, "split overnight hours over two days"),
        ({"mon": ["9-17"]}, "write them like '09:00-17:00'"),
        ({"mon": ["09:00-25:00"]}, "invalid time"),
        ({"closed_dates": ["2024-12-25"]}, "open on no day"),
        ({"monday": ["09:00-17:00"]}, "Extra inputs"),
    ],
)
def test_business_hours_errors(hours, fragment):
    [error] = errors_of({"site_id": "demo", "business_hours": hours})
    assert error.startswith("business_hours")
    assert fragment in error


def test_business_hours_normalised():
    hours = BusinessHours.model_validate({"tue": "8:00-24:00"})
    assert hours.day("tue") == ["08:00-24:00"]
    assert hours.day("mon") == []
