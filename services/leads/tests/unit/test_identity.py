"""Who a lead is: e-mail and phone normalisation, person keys, traits, merges and their undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from beckon_edge.refusals import Conflict, Invalid
from hypothesis import given
from hypothesis import strategies as st
from leads.domain.identity import (
    Email,
    LeadIdentity,
    PersonKey,
    Phone,
    Trait,
    apply_traits,
    clean_traits,
    default_region,
    match,
    merge,
    normalize_email,
    normalize_phone,
    person_keys,
    unmerge,
    wins,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- e-mail ------------------------------------------------------------------------------------


def test_email_domain_is_lower_cased_and_local_part_kept_as_typed_for_sending() -> None:
    email = normalize_email("  Anna.Virtanen@Esimerkki.FI ")
    assert email.address == "Anna.Virtanen@esimerkki.fi"
    assert email.key == "anna.virtanen@esimerkki.fi"


def test_email_case_variants_share_one_key() -> None:
    keys = {normalize_email(raw).key for raw in ("ANNA@x.fi", "anna@X.FI", "Anna@x.Fi")}
    assert keys == {"anna@x.fi"}


def test_email_plus_tags_and_dots_are_kept_so_different_mailboxes_stay_apart() -> None:
    plain = normalize_email("anna@gmail.com")
    tagged = normalize_email("anna+shop@gmail.com")
    dotted = normalize_email("a.nna@gmail.com")
    assert tagged.key == "anna+shop@gmail.com"
    assert len({plain.key, tagged.key, dotted.key}) == 3


def test_email_international_domain_has_one_key_in_either_spelling() -> None:
    unicode = normalize_email("myynti@München.de")
    ascii_ = normalize_email("myynti@xn--mnchen-3ya.de")
    assert unicode.key == ascii_.key == "myynti@xn--mnchen-3ya.de"
    assert unicode.address == "myynti@münchen.de"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "email_empty"),
        ("   ", "email_empty"),
        ("anna", "email_invalid"),
        ("anna@localhost", "email_invalid"),
        ("anna@@x.fi", "email_invalid"),
        ("an na@x.fi", "email_invalid"),
        ("anna@x.fi\n", "email_invalid"),  # strip takes the newline: this one is fine
        ("an\x00na@x.fi", "email_invalid"),
        ("a" * 250 + "@x.fi", "email_invalid"),
        (42, "email_invalid"),
        (None, "email_invalid"),
    ],
)
def test_email_refusals_name_the_field(raw: object, code: str) -> None:
    if raw == "anna@x.fi\n":
        assert normalize_email(raw).address == "anna@x.fi"
        return
    with pytest.raises(Invalid) as refused:
        normalize_email(raw, field="traits.email")
    assert refused.value.code == code
    assert refused.value.errors is not None
    assert refused.value.errors[0]["loc"] == "traits.email"


def test_email_is_never_looked_up_in_dns() -> None:
    # a syntactically fine domain that does not exist is accepted: capture does no I/O
    assert normalize_email("x@surely-not-a-real-domain-beckon.invalid.fi").key.endswith(".fi")


# --- phone -------------------------------------------------------------------------------------


def test_phone_national_number_uses_the_default_region() -> None:
    assert normalize_phone("040 123 4567", region="FI") == Phone("+358401234567", "FI")
    assert normalize_phone("(040) 123-4567", region="FI").e164 == "+358401234567"


def test_phone_with_country_code_needs_no_region() -> None:
    assert normalize_phone("+358 40 123 4567", region=None).e164 == "+358401234567"
    assert normalize_phone("+46 70 123 45 67", region="FI") == Phone("+46701234567", "SE")


def test_phone_international_prefix_of_the_region_is_understood() -> None:
    assert normalize_phone("00358401234567", region="FI").e164 == "+358401234567"


def test_phone_extension_is_kept_aside_from_the_key() -> None:
    phone = normalize_phone("+1 201 555 0123 ext. 42", region=None)
    assert (phone.e164, phone.extension) == ("+12015550123", "42")
    keys = person_keys(phone=phone)
    assert keys == {PersonKey("phone", "+12015550123")}


@pytest.mark.parametrize(
    ("raw", "region", "code"),
    [
        ("040 123 4567", None, "phone_needs_country"),
        ("call me", "FI", "phone_unparseable"),
        ("+999 123 4567", None, "phone_unparseable"),
        ("1" * 70, "FI", "phone_unparseable"),
        ("+358 40 123 4567 8888 9999 1111", None, "phone_unparseable"),
        ("123", "FI", "phone_impossible"),
        ("+1 201 555 01234", None, "phone_impossible"),
        ("040 12", "FI", "phone_invalid"),
        ("+358 00 0000000", None, "phone_invalid"),
        ("", "FI", "phone_empty"),
        (4012345, "FI", "phone_invalid"),
    ],
)
def test_phone_refusals_say_why(raw: object, region: str | None, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        normalize_phone(raw, region=region, field="phone")
    assert refused.value.code == code
    assert refused.value.errors is not None
    assert refused.value.errors[0]["loc"] == "phone"


def test_phone_needs_country_tells_how_to_fix_it() -> None:
    with pytest.raises(Invalid, match=r"country code \(e\.g\. \+358"):
        normalize_phone("040 123 4567", region=None)


@pytest.mark.parametrize(
    ("country", "language", "region"),
    [
        ("fi", "en", "FI"),
        ("SE", None, "SE"),
        ("XX", "fi", "FI"),  # not a region: the language decides
        (None, "fi", "FI"),
        (None, "sv-FI", "FI"),  # the language tag's region beats the language's country
        (None, "sv_SE", "SE"),
        (None, "sv", "SE"),
        (None, "en", None),  # spoken in too many countries
        (None, "en-GB", "GB"),
        (None, None, None),
        ("", "", None),
    ],
)
def test_default_region_from_country_then_language(
    country: str | None, language: str | None, region: str | None
) -> None:
    assert default_region(country=country, language=language) == region


# --- person keys -------------------------------------------------------------------------------


def test_person_keys_hold_each_given_key() -> None:
    keys = person_keys(
        email=normalize_email("Anna@x.fi"),
        phone=normalize_phone("040 123 4567", region="FI"),
        visitor_id="v1",
    )
    assert keys == {
        PersonKey("email", "anna@x.fi"),
        PersonKey("phone", "+358401234567"),
        PersonKey("visitor", "v1"),
    }
    assert person_keys() == frozenset()


def lead(
    lead_id: str,
    *keys: PersonKey,
    status: str = "new",
    created: int = 0,
    traits: dict | None = None,
    validation: str = "contact_only",
    merged_into: str | None = None,
    site: str = "s1",
) -> LeadIdentity:
    return LeadIdentity(
        lead_id=lead_id,
        site_id=site,
        status=status,  # type: ignore[arg-type]
        created_at=at(created),
        keys=frozenset(keys),
        traits=traits or {},
        validation=validation,  # type: ignore[arg-type]
        merged_into=merged_into,
    )


EMAIL = PersonKey("email", "anna@x.fi")
PHONE = PersonKey("phone", "+358401234567")
VISITOR = PersonKey("visitor", "v1")


def test_match_nothing_creates_a_lead() -> None:
    found = match({EMAIL}, [lead("a", PHONE)])
    assert found.creates
    assert found.absorb == ()


def test_match_by_email_or_by_phone() -> None:
    assert match({EMAIL, PHONE}, [lead("a", EMAIL)]).lead_id == "a"
    assert match({EMAIL, PHONE}, [lead("b", PHONE)]).lead_id == "b"
    assert match({VISITOR}, [lead("c", VISITOR, EMAIL)]).lead_id == "c"


def test_match_ignores_closed_and_merged_leads() -> None:
    leads = [lead("won", EMAIL, status="won"), lead("gone", EMAIL, merged_into="x")]
    assert match({EMAIL}, leads).creates


def test_match_of_two_leads_merges_the_later_into_the_further_along() -> None:
    older_new = lead("a", EMAIL, created=0)
    newer_contacted = lead("b", PHONE, status="contacted", created=5)
    found = match({EMAIL, PHONE}, [older_new, newer_contacted])
    assert (found.lead_id, found.absorb) == ("b", ("a",))
    assert found.matched_on == {EMAIL, PHONE}


def test_match_between_equals_keeps_the_oldest() -> None:
    found = match({EMAIL, PHONE}, [lead("b", PHONE, created=5), lead("a", EMAIL, created=0)])
    assert (found.lead_id, found.absorb) == ("a", ("b",))


# --- traits ------------------------------------------------------------------------------------


def test_agent_value_beats_visitor_value_whatever_its_age() -> None:
    agent_old = Trait("Anna V.", "agent", at(0))
    visitor_new = Trait("anna", "visitor", at(60))
    assert not wins(visitor_new, agent_old)
    assert wins(agent_old, visitor_new)


def test_between_equals_the_newest_non_empty_wins() -> None:
    assert wins(Trait("b", "visitor", at(2)), Trait("a", "visitor", at(1)))
    assert not wins(Trait("b", "visitor", at(1)), Trait("a", "visitor", at(2)))
    assert not wins(Trait("", "agent", at(9)), Trait("a", "visitor", at(1)))
    assert wins(Trait("a", "visitor", at(1)), None)
    assert not wins(None, Trait("a", "visitor", at(1)))


def test_identify_fills_and_updates_visitor_traits_but_never_an_agents() -> None:
    current = {
        "name": Trait("Anna Virtanen", "agent", at(0)),
        "company": Trait("Oy Old", "visitor", at(0)),
    }
    update = apply_traits(
        current,
        {"name": "anna", "company": "Oy New", "phone": "+358401234567", "email": None},
        source="visitor",
        at=at(10),
    )
    assert update.traits["name"] == Trait("Anna Virtanen", "agent", at(0))
    assert update.traits["company"] == Trait("Oy New", "visitor", at(10))
    assert update.traits["phone"].value == "+358401234567"
    assert "email" not in update.traits
    assert update.changed == ("phone", "company")
    assert update.kept == ("name",)


def test_identify_replayed_out_of_order_does_not_roll_back() -> None:
    current = {"company": Trait("Oy New", "visitor", at(10))}
    update = apply_traits(current, {"company": "Oy Old"}, source="visitor", at=at(5))
    assert update.traits["company"].value == "Oy New"
    assert update.changed == ()


def test_empty_values_never_erase() -> None:
    current = {"name": Trait("Anna", "visitor", at(0))}
    update = apply_traits(current, {"name": ""}, source="agent", at=at(10))
    assert update.traits == current


def test_an_agent_overwrites_a_visitor_value() -> None:
    current = {"name": Trait("anna", "visitor", at(10))}
    update = apply_traits(current, {"name": "Anna Virtanen"}, source="agent", at=at(1))
    assert update.traits["name"] == Trait("Anna Virtanen", "agent", at(1))
    assert update.changed == ("name",)


def test_clean_traits_reads_segment_shapes() -> None:
    cleaned = clean_traits(
        {
            "firstName": " Anna ",
            "lastName": "Virtanen",
            "company": {"name": "Oy\tAb  "},
            "email": "Anna@X.fi",
            "phone": "040 123 4567",
            "plan": "gold",
        },
        region="FI",
    )
    assert dict(cleaned.values) == {
        "name": "Anna Virtanen",
        "company": "Oy Ab",
        "email": "Anna@x.fi",
        "phone": "+358401234567",
    }
    assert cleaned.email == Email("Anna@x.fi", "anna@x.fi")
    assert cleaned.phone is not None
    assert cleaned.problems == ()
    cleaned.check()


def test_clean_traits_keeps_the_good_and_reports_the_bad_at_their_place() -> None:
    cleaned = clean_traits(
        {"name": "Anna", "phone": "040 12", "email": "nope", "company": "x" * 201}, region="FI"
    )
    assert dict(cleaned.values) == {"name": "Anna"}
    assert [(p["loc"], p["code"]) for p in cleaned.problems] == [
        ("traits.company", "company_too_long"),
        ("traits.email", "email_invalid"),
        ("traits.phone", "phone_invalid"),
    ]
    with pytest.raises(Invalid) as refused:
        cleaned.check()
    assert refused.value.code == "traits_invalid"
    assert refused.value.errors is not None
    assert len(refused.value.errors) == 3


def test_clean_traits_refuses_a_name_that_is_not_text() -> None:
    cleaned = clean_traits({"first_name": 7, "last_name": "V"}, region=None)
    assert [p["code"] for p in cleaned.problems] == ["name_invalid"]
    assert "name" not in cleaned.values


# --- merge and undo ----------------------------------------------------------------------------


def test_merge_moves_keys_and_takes_the_absorbed_leads_better_traits() -> None:
    survivor = lead(
        "a",
        EMAIL,
        VISITOR,
        status="assigned",
        created=0,
        traits={
            "name": Trait("Anna Virtanen", "agent", at(1)),
            "phone": Trait("+358401111111", "visitor", at(1)),
        },
        validation="interested",
    )
    absorbed = lead(
        "b",
        PHONE,
        created=5,
        traits={
            "name": Trait("anna", "visitor", at(6)),
            "phone": Trait("+358401234567", "visitor", at(6)),
            "company": Trait("Oy Ab", "visitor", at(6)),
        },
        validation="ready_to_buy",
    )
    done = merge(absorbed, survivor, at=at(7), by="admin1", matched_on={EMAIL, PHONE})
    assert done.survivor.lead_id == "a"
    assert done.survivor.keys == {EMAIL, VISITOR, PHONE}
    assert done.survivor.traits["name"].value == "Anna Virtanen"  # the agent's stays
    assert done.survivor.traits["phone"].value == "+358401234567"  # the newer visitor value
    assert done.survivor.traits["company"].value == "Oy Ab"  # filled in
    assert done.survivor.validation == "ready_to_buy"
    assert done.absorbed.merged_into == "a"
    assert not done.absorbed.open
    assert done.absorbed.keys == frozenset()
    record = done.record
    assert (record.survivor_id, record.absorbed_id, record.merged_by) == ("a", "b", "admin1")
    assert record.keys_moved == {PHONE}
    assert set(record.traits_after) == {"phone", "company"}
    assert record.traits_before == {
        "phone": Trait("+358401111111", "visitor", at(1)),
        "company": None,
    }
    assert (record.validation_before, record.validation_after) == ("interested", "ready_to_buy")


def test_merge_refuses_the_same_lead_other_sites_and_closed_leads() -> None:
    a = lead("a", EMAIL)
    with pytest.raises(Invalid) as same:
        merge(a, a, at=at(1))
    assert same.value.code == "merge_same_lead"
    with pytest.raises(Invalid) as sites:
        merge(a, lead("b", PHONE, site="s2"), at=at(1))
    assert sites.value.code == "merge_other_site"
    with pytest.raises(Conflict) as closed:
        merge(a, lead("b", PHONE, status="won"), at=at(1))
    assert closed.value.code == "merge_closed_lead"
    with pytest.raises(Conflict, match="merged into c"):
        merge(a, lead("b", PHONE, merged_into="c"), at=at(1))


def _pair() -> tuple[LeadIdentity, LeadIdentity]:
    survivor = lead("a", EMAIL, traits={"name": Trait("Anna", "visitor", at(0))})
    absorbed = lead(
        "b",
        PHONE,
        created=5,
        traits={
            "name": Trait("Anna Virtanen", "visitor", at(5)),
            "company": Trait("Oy Ab", "visitor", at(5)),
        },
        validation="qualified",
    )
    return survivor, absorbed


def test_unmerge_restores_both_leads_exactly_when_nothing_changed_since() -> None:
    survivor, absorbed = _pair()
    done = merge(survivor, absorbed, at=at(6))
    undone = unmerge(done.record, done.survivor, done.absorbed)
    assert undone.survivor == survivor
    assert undone.absorbed == absorbed
    assert set(undone.restored) == {"name", "company"}
    assert undone.kept == ()


def test_unmerge_keeps_edits_and_keys_that_came_after_the_merge() -> None:
    survivor, absorbed = _pair()
    done = merge(survivor, absorbed, at=at(6))
    edited = apply_traits(done.survivor.traits, {"name": "Anna V."}, source="agent", at=at(8))
    later_key = PersonKey("visitor", "v9")
    now = LeadIdentity(
        **{
            **{f: getattr(done.survivor, f) for f in LeadIdentity.__dataclass_fields__},
            "traits": edited.traits,
            "keys": done.survivor.keys | {later_key},
            "validation": "ready_to_buy",
        }
    )
    undone = unmerge(done.record, now, done.absorbed)
    assert undone.survivor.traits["name"] == Trait("Anna V.", "agent", at(8))
    assert "company" not in undone.survivor.traits
    assert undone.kept == ("name",)
    assert undone.restored == ("company",)
    assert undone.survivor.keys == {EMAIL, later_key}
    assert undone.survivor.validation == "ready_to_buy"
    assert undone.absorbed.keys == {PHONE}
    assert undone.absorbed.open


def test_unmerge_twice_or_after_a_later_merge_is_refused() -> None:
    survivor, absorbed = _pair()
    done = merge(survivor, absorbed, at=at(6))
    undone = unmerge(done.record, done.survivor, done.absorbed)
    with pytest.raises(Conflict) as twice:
        unmerge(done.record, undone.survivor, undone.absorbed)
    assert twice.value.code == "unmerge_not_merged"
    later = merge(done.survivor, lead("c", VISITOR, status="contacted", created=9), at=at(10))
    assert later.survivor.lead_id == "c"
    with pytest.raises(Conflict) as order:
        unmerge(done.record, later.absorbed, done.absorbed)
    assert order.value.code == "unmerge_later_merge_first"
    with pytest.raises(Invalid) as wrong:
        unmerge(done.record, done.absorbed, done.survivor)
    assert wrong.value.code == "unmerge_wrong_leads"


_trait = st.builds(
    Trait,
    value=st.sampled_from(["", "a", "b", "c"]),
    source=st.sampled_from(["agent", "visitor"]),
    at=st.integers(0, 5).map(at),
)
_traits = st.dictionaries(st.sampled_from(["name", "email", "phone", "company"]), _trait)


@given(_traits, _traits, st.booleans())
def test_merge_then_unmerge_gives_back_both_leads(mine: dict, theirs: dict, swap: bool) -> None:
    one = lead("a", EMAIL, traits=mine, validation="interested")
    other = lead("b", PHONE, VISITOR, created=1, traits=theirs, validation="qualified")
    done = merge(other, one, at=at(9)) if swap else merge(one, other, at=at(9))
    undone = unmerge(done.record, done.survivor, done.absorbed)
    assert {undone.survivor.lead_id: undone.survivor, undone.absorbed.lead_id: undone.absorbed} == {
        "a": one,
        "b": other,
    }


@given(_traits, _traits)
def test_merged_traits_are_never_beaten_by_either_side(mine: dict, theirs: dict) -> None:
    done = merge(
        lead("a", EMAIL, traits=mine), lead("b", PHONE, created=1, traits=theirs), at=at(9)
    )
    for name, value in done.survivor.traits.items():
        for side in (mine, theirs):
            other = side.get(name)
            strictly_better = wins(other, value) and not wins(value, other)
            assert not strictly_better
