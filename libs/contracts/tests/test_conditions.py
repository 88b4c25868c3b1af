"""What the condition languages share (engagement rules, leads' routing): one-key conditions
in a tagged union with readable errors, and the helpers of located problems."""

from __future__ import annotations

from typing import Annotated, ClassVar

import pytest
from beckon_contracts.conditions import (
    OneKeyConditions,
    did_you_mean,
    error_message,
    join_location,
    listify,
    nesting_depth,
)
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: ClassVar[str]


class _Colour(_Condition):
    key = "colour"
    colour: str


class _Size(_Condition):
    key = "size"
    size: int = Field(ge=0)


class _Other(BaseModel):  # a condition of another language
    key: ClassVar[str] = "colour"
    colour: str = "red"


SHAPE = OneKeyConditions(_Condition, ("colour", "size"), several="pick one")
Condition = Annotated[
    Annotated[_Colour, Tag("colour")] | Annotated[_Size, Tag("size")],
    Discriminator(SHAPE.key),
    BeforeValidator(SHAPE.check),
]


class _Rule(BaseModel):
    when: list[Condition]


def _errors(data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _Rule.model_validate({"when": [data]})
    return [f"{SHAPE.location(e['loc'])}: {error_message(e)}" for e in caught.value.errors()]


def test_a_one_key_mapping_becomes_its_condition():
    rule = _Rule.model_validate({"when": [{"colour": "red"}, {"size": 3}]})
    assert rule.when == [_Colour(colour="red"), _Size(size=3)]
    assert _Rule.model_validate(rule.model_dump()).when == rule.when
    assert SHAPE.key(_Size(size=1)) == "size"
    assert SHAPE.check(rule.when[0]) is rule.when[0]


def test_the_shapes_a_tagged_union_rejects_obscurely_get_readable_errors():
    assert _errors("red") == [
        "when[0]: a condition is a mapping with exactly one key, got 'red';"
        " valid keys: colour, size"
    ]
    assert _errors({"colour": "red", "size": 1}) == [
        "when[0]: a condition has exactly one key (got colour, size); pick one"
    ]
    assert _errors({}) == ["when[0]: a condition has exactly one key (got none); pick one"]
    assert _errors({"sise": 1}) == [
        "when[0]: unknown condition 'sise' (did you mean 'size'?); valid keys: colour, size"
    ]
    assert _errors({1: 2}) == ["when[0]: unknown condition 1; valid keys: colour, size"]


def test_an_error_inside_a_condition_is_located_at_its_field_said_once():
    assert _errors({"size": -1}) == ["when[0].size: Input should be greater than or equal to 0"]
    # only a condition's own tag is folded, not any name said twice
    assert SHAPE.location(("a", "a", 0, "size", "size")) == "a.a[0].size"


def test_another_languages_condition_is_not_taken_for_one_of_ours():
    assert SHAPE.key(_Other()) is None
    with pytest.raises(ValueError, match="a condition is a mapping"):
        SHAPE.check(_Other())


def test_did_you_mean_names_the_closest_choice_or_nothing():
    assert did_you_mean("prodcut", ("home", "product")) == " (did you mean 'product'?)"
    assert did_you_mean("zzz", ("home", "product")) == ""


def test_listify_takes_one_name_as_a_list():
    assert listify("a") == ["a"]
    assert listify(["a", "b"]) == ["a", "b"]
    assert listify(None) is None


def test_error_message_drops_pydantics_prefix():
    assert error_message({"msg": "Value error, no bound"}) == "no bound"
    assert error_message({"msg": "Assertion failed, odd"}) == "odd"
    assert error_message({"msg": "Field required"}) == "Field required"
    assert error_message({}) == "invalid"


@pytest.mark.parametrize(
    ("prefix", "where", "joined"),
    [
        ("", "rules[0].id", "rules[0].id"),
        ("lead", "", "lead"),
        ("lead", "country", "lead.country"),
        ("sites[1]", "[2]", "sites[1][2]"),
        ("", "", ""),
    ],
)
def test_join_location(prefix: str, where: str, joined: str):
    assert join_location(prefix, where) == joined


def test_nesting_depth_counts_lists_and_mappings_up_to_just_past_the_limit():
    assert nesting_depth("x", 5) == 0
    assert nesting_depth({"a": [1, {"b": []}]}, 5) == 3
    deep: object = []
    for _ in range(10_000):  # deeper than recursion would go
        deep = [deep]
    assert nesting_depth(deep, 40) == 41
