"""The toolkit's pure rules: variables filled without leftovers, shortcut search and
validation, who manages which canned set, lead validation, questions and answers."""

import pytest
from beckon_contracts.money import format_money
from chat.text import InvalidInput
from chat.toolkit import domain
from chat.toolkit.domain import Canned


def values(**overrides: str | None) -> dict[str, str]:
    base = domain.variable_values(
        agent_name="Anna Virtanen",
        locale="en",
        visitor_name="Maija",
        product="Trail Runner X",
        cart_value=129.5,
        currency="EUR",
    )
    base.update({k: v or "" for k, v in overrides.items()})
    return base


def test_every_variable_is_filled() -> None:
    text = "Hi {visitor_name}, I'm {agent_first_name} ({agent_name}). The {product}: {cart_value}."
    assert domain.fill(text, values()) == (
        "Hi Maija, I'm Anna (Anna Virtanen). The Trail Runner X: €129.50."
    )


def test_an_unknown_value_leaves_nothing_behind_not_the_placeholder() -> None:
    filled = domain.fill(
        "Hi {visitor_name}, welcome! Thanks, {visitor_name}!", values(visitor_name=None)
    )
    assert filled == "Hi, welcome! Thanks!"
    assert "{" not in filled
    assert domain.fill("The {product} is here", values(product="")) == "The is here"


def test_braces_that_are_not_variables_stay_as_written() -> None:
    assert domain.fill("Use code {SAVE10}", values()) == "Use code {SAVE10}"


def test_money_in_a_canned_reply_is_written_as_in_an_invitation() -> None:
    assert domain.format_money is format_money  # the one formatter (beckon_contracts.money)
    cart = domain.variable_values(
        agent_name=None, locale="fi", visitor_name=None, product=None, cart_value=0, currency="EUR"
    )
    assert cart["cart_value"] == ""
    assert cart["agent_first_name"] == ""


def test_shortcuts_are_cleaned_or_refused() -> None:
    assert domain.clean_shortcut(" /Hello ") == "hello"
    for bad in ("", "/", "two words", "ä", "x" * 33, 5):
        with pytest.raises(InvalidInput) as caught:
            domain.clean_shortcut(bad)
        assert caught.value.field == "shortcut"


def test_a_reply_with_an_unknown_variable_is_refused_naming_it() -> None:
    assert domain.clean_canned_text("  Hi {visitor_name}\r\n ") == "Hi {visitor_name}"
    with pytest.raises(InvalidInput) as caught:
        domain.clean_canned_text("Hi {visitor}, see {product}")
    assert "{visitor}" in str(caught.value)
    with pytest.raises(InvalidInput):
        domain.clean_canned_text("   ")


def test_search_ranks_exact_then_prefix_then_contains_then_text() -> None:
    replies = [
        Canned("1", "shipping-eu", "Delivery to the EU", "site"),
        Canned("2", "ship", "We ship daily", "team"),
        Canned("3", "free-ship", "Free shipping over 50", "site"),
        Canned("4", "hello", "Hi! Shipping questions welcome", "personal"),
        Canned("5", "ship", "My own wording", "personal"),
        Canned("6", "returns", "30 days", "site"),
    ]
    found = [c.reply_id for c in domain.search_canned(replies, "/ship")]
    assert found == ["5", "2", "1", "3", "4"]
    assert [c.reply_id for c in domain.search_canned(replies, "")][:2] == ["4", "5"]
    assert domain.search_canned(replies, "nothing-like-it") == []
    assert len(domain.search_canned(replies, None, limit=2)) == 2


def test_personal_replies_are_their_owners_shared_sets_are_admins() -> None:
    assert domain.scope_of("a1", None) == "personal"
    assert domain.scope_of(None, "sales") == "team"
    assert domain.scope_of(None, None) == "site"
    assert domain.may_manage("personal", owner="a1", me="a1", admin=False)
    assert not domain.may_manage("personal", owner="a2", me="a1", admin=True)
    assert not domain.may_manage("team", owner=None, me="a1", admin=False)
    assert domain.may_manage("site", owner=None, me="a1", admin=True)


def test_lead_validation_and_note() -> None:
    assert domain.clean_validation("qualified") == "qualified"
    with pytest.raises(InvalidInput):
        domain.clean_validation("hot")
    assert domain.clean_note("  ") is None
    assert domain.clean_note(" wants 12 ") == "wants 12"
    with pytest.raises(InvalidInput):
        domain.clean_note("x" * 1001)


def test_a_conversation_reads_as_questions_and_answers() -> None:
    messages = [
        {"seq": 1, "author": "agent", "text": "Hi! Can I help?", "agent_name": "Anna"},
        {"seq": 2, "author": "visitor", "text": "Is shipping free?", "agent_name": None},
        {"seq": 3, "author": "visitor", "text": "To Finland", "agent_name": None},
        {"seq": 4, "author": "agent", "text": "Yes, over 50 €.", "agent_name": "Anna"},
        {"seq": 5, "author": "system", "text": "Anna joined", "agent_name": None},
        {"seq": 6, "author": "visitor", "text": "And returns?", "agent_name": None},
        {"seq": 7, "author": "agent", "text": "30 days, free.", "agent_name": "Ben"},
        {"seq": 8, "author": "visitor", "text": "Thanks, bye", "agent_name": None},
    ]
    pairs = domain.qa_pairs(list(reversed(messages)))
    assert pairs == [
        {"question": "Is shipping free?\nTo Finland", "answer": "Yes, over 50 €.", "agent": "Anna"},
        {"question": "And returns?", "answer": "30 days, free.", "agent": "Ben"},
    ]
    assert [p["answer"] for p in domain.qa_pairs(messages, "RETURN")] == ["30 days, free."]


def test_each_answer_is_credited_to_the_agent_who_wrote_it_across_a_transfer() -> None:
    messages = [
        {"seq": 1, "author": "visitor", "text": "Do you ship to Åland?", "agent_id": None},
        {"seq": 2, "author": "agent", "text": "Let me ask Ben.", "agent_id": "a1"},
        {"seq": 3, "author": "agent", "text": "One moment.", "agent_id": "a1"},
        {"seq": 4, "author": "agent", "text": "Yes, in 3 days.", "agent_id": "b2"},
        {"seq": 5, "author": "visitor", "text": "Great", "agent_id": None},
        {"seq": 6, "author": "agent", "text": "Anything else?", "agent_id": "b2"},
    ]
    names = {"a1": "Anna", "b2": "Ben"}
    for message in messages:
        message["agent_name"] = names.get(str(message["agent_id"]))
    assert domain.qa_pairs(messages) == [
        {
            "question": "Do you ship to Åland?",
            "answer": "Let me ask Ben.\nOne moment.",
            "agent": "Anna",
        },
        {"question": "Do you ship to Åland?", "answer": "Yes, in 3 days.", "agent": "Ben"},
        {"question": "Great", "answer": "Anything else?", "agent": "Ben"},
    ]
    # two agents of the same name are still two writers
    messages[3]["agent_name"] = "Anna"
    assert [p["answer"] for p in domain.qa_pairs(messages)][:2] == [
        "Let me ask Ben.\nOne moment.",
        "Yes, in 3 days.",
    ]


def test_context_prefers_the_live_snapshot_then_the_recorded_activity() -> None:
    activity = [
        {"type": "cart.updated", "value": 59.0, "currency": "EUR", "title": None, "detail": {}},
        {
            "type": "product.viewed",
            "value": None,
            "currency": None,
            "title": "Page title",
            "detail": '{"product": {"name": "Forest Jacket"}}',
        },
    ]
    facts = domain.context_facts(None, activity)
    assert (facts["product"], facts["cart_value"]) == ("Forest Jacket", 59.0)
    live = {
        "current_product": "Trail Runner X",
        "cart_value": 120.0,
        "currency": "EUR",
        "name": "Maija",
    }
    facts = domain.context_facts(live, activity)
    assert (facts["product"], facts["cart_value"], facts["name"]) == (
        "Trail Runner X",
        120.0,
        "Maija",
    )
    ordered = [
        {"type": "order.completed", "value": 80, "currency": "EUR", "title": None, "detail": {}}
    ]
    assert domain.context_facts(None, ordered + activity)["cart_value"] is None
