import pytest
from chat.text import InvalidInput, clean_client_id, clean_email, clean_tags, clean_text


def test_clean_text_trims_surrounding_whitespace():
    assert clean_text("  hello there \n\t", max_chars=100) == "hello there"


def test_clean_text_drops_control_characters_but_keeps_line_breaks_and_tabs():
    raw = "a\x00b\x07c\x1bd\x7fe\x0bf\x0cg\x1fh\nline\ttab\r\nend"
    assert clean_text(raw, max_chars=100) == "abcdefgh\nline\ttab\r\nend"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t ", "\x00\x01\x7f", " \x00 "])
def test_clean_text_refuses_what_is_empty_once_cleaned(raw):
    with pytest.raises(InvalidInput, match="empty") as caught:
        clean_text(raw, max_chars=100)
    assert caught.value.field == "text"


def test_clean_text_limits_the_length_after_cleaning():
    assert clean_text("x" * 10, max_chars=10) == "x" * 10
    assert clean_text("  " + "x" * 10 + "\x00  ", max_chars=10) == "x" * 10
    with pytest.raises(InvalidInput, match="longer than 10"):
        clean_text("x" * 11, max_chars=10)


@pytest.mark.parametrize("raw", [None, 42, ["hi"], b"hi"])
def test_clean_text_wants_a_string(raw):
    with pytest.raises(InvalidInput, match="string"):
        clean_text(raw, max_chars=100)


def test_clean_text_names_the_field():
    with pytest.raises(InvalidInput) as caught:
        clean_text("", max_chars=10, field="note")
    assert caught.value.field == "note"


def test_invalid_input_is_a_value_error():
    assert issubclass(InvalidInput, ValueError)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("anna@example.com", "anna@example.com"),
        ("  anna.virtanen+chat@shop.example.fi ", "anna.virtanen+chat@shop.example.fi"),
    ],
)
def test_clean_email_accepts_addresses(raw, cleaned):
    assert clean_email(raw) == cleaned


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "anna",
        "anna@",
        "@example.com",
        "anna@example",
        "anna@example.c",
        "an na@example.com",
        "anna@@example.com",
        "a@b@example.com",
        "x" * 65 + "@example.com",
        "anna@" + "x" * 250 + ".com",
        None,
        42,
    ],
)
def test_clean_email_refuses_what_is_not_an_address(raw):
    with pytest.raises(InvalidInput, match="e-mail") as caught:
        clean_email(raw)
    assert caught.value.field == "email"


@pytest.mark.parametrize("raw", ["abc", "A-b_9", "x" * 64, "0192f0c3-aaaa-7bbb-8ccc-000000000001"])
def test_clean_client_id_accepts_ids(raw):
    assert clean_client_id(raw) == raw


def test_clean_client_id_is_optional():
    assert clean_client_id(None) is None


@pytest.mark.parametrize("raw", ["", "x" * 65, "has space", "dot.ted", "ä", "a/b", 12, ["a"]])
def test_clean_client_id_refuses_other_values(raw):
    with pytest.raises(InvalidInput) as caught:
        clean_client_id(raw)
    assert caught.value.field == "client_id"


def test_clean_tags_lowercases_trims_and_dedupes_in_order():
    assert clean_tags(["Price", " shipping ", "price", "PRICE", "returns", "shipping"]) == [
        "price",
        "shipping",
        "returns",
    ]


def test_clean_tags_accepts_an_empty_list():
    assert clean_tags([]) == []


def test_clean_tags_allows_twenty_and_no_more():
    twenty = [f"tag-{n}" for n in range(20)]
    assert clean_tags(twenty) == twenty
    with pytest.raises(InvalidInput, match="at most 20") as caught:
        clean_tags([*twenty, "one-more"])
    assert caught.value.field == "tags"


def test_clean_tags_limits_each_tag_to_forty_characters():
    assert clean_tags(["a" * 40]) == ["a" * 40]
    with pytest.raises(InvalidInput, match="is not a tag"):
        clean_tags(["a" * 41])


@pytest.mark.parametrize("tag", ["", " ", "-leading-dash", "_x", "two words", "ümlaut", "a.b", 3])
def test_clean_tags_refuses_what_is_not_a_tag(tag):
    with pytest.raises(InvalidInput, match="is not a tag"):
        clean_tags(["ok", tag])


@pytest.mark.parametrize("tags", ["price", None, {"price": 1}, ("price",)])
def test_clean_tags_wants_a_list(tags):
    with pytest.raises(InvalidInput, match="list"):
        clean_tags(tags)
