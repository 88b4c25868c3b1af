"""Reply tokens: the `+token` that brings an e-mailed reply back into its conversation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from notifier.domain.tokens import (
    TOKEN_LENGTH,
    InvalidToken,
    ReplyTokens,
    reply_address,
    token_from_address,
)

SECRET = "s3cret-for-tests-0123456789"
OTHER = "another-secret-9876543210abc"
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CONVERSATION = UUID("0195929a-6f3e-7c41-9d2b-5a8e1f0c3b77")


def test_round_trip() -> None:
    tokens = ReplyTokens([SECRET])
    token = tokens.issue(CONVERSATION, now=NOW)
    target = tokens.verify(token, now=NOW + timedelta(days=3))
    assert target.conversation_id == CONVERSATION
    assert target.issued_at == datetime(2025, 3, 14, tzinfo=UTC)


def test_shape_survives_mtas_that_lowercase_local_parts() -> None:
    tokens = ReplyTokens([SECRET])
    for _ in range(50):
        token = tokens.issue(uuid4(), now=NOW)
        assert re.fullmatch(r"[a-z2-7]+", token)
        assert len(token) == TOKEN_LENGTH <= 56
        # a local part is at most 64 octets: "reply+" and the token fit
        assert len(reply_address("reply", token, "reply.example.com").split("@")[0]) <= 64


def test_same_conversation_same_day_same_token() -> None:
    tokens = ReplyTokens([SECRET])
    morning = tokens.issue(CONVERSATION, now=NOW.replace(hour=0, minute=1))
    evening = tokens.issue(CONVERSATION, now=NOW.replace(hour=23, minute=59))
    assert morning == evening
    assert tokens.issue(CONVERSATION, now=NOW + timedelta(days=1)) != morning
    assert tokens.issue(uuid4(), now=NOW) != morning


def test_verify_is_case_insensitive() -> None:
    tokens = ReplyTokens([SECRET])
    token = tokens.issue(CONVERSATION, now=NOW)
    assert tokens.verify(token.upper(), now=NOW).conversation_id == CONVERSATION
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(token))
    assert tokens.verify(mixed, now=NOW).conversation_id == CONVERSATION


@pytest.mark.parametrize("position", [0, 1, 5, 20, 26, 30, 35, 40, 48, 49])
def test_a_flipped_character_is_refused(position: int) -> None:
    tokens = ReplyTokens([SECRET])
    token = tokens.issue(CONVERSATION, now=NOW)
    replacement = "a" if token[position] != "a" else "b"
    forged = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(forged, now=NOW)
    if 2 <= position < TOKEN_LENGTH - 1:
        assert refused.value.code == "forged"
    else:
        # the first two characters carry the format version; the last one has two spare
        # bits, and only its canonical spelling is accepted
        assert refused.value.code in ("forged", "malformed")


def test_a_flip_in_the_signed_part_is_forged() -> None:
    tokens = ReplyTokens([SECRET])
    token = tokens.issue(CONVERSATION, now=NOW)
    forged = token[:10] + ("q" if token[10] != "q" else "r") + token[11:]
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(forged, now=NOW)
    assert refused.value.code == "forged"


def test_another_conversation_cannot_be_claimed() -> None:
    """A token's uuid swapped for another conversation's: the MAC no longer matches."""
    tokens = ReplyTokens([SECRET])
    mine = tokens.issue(CONVERSATION, now=NOW)
    other = tokens.issue(uuid4(), now=NOW)
    # splice: version+uuid of the other token, day+MAC of mine (bytes 0..16 ~ chars 0..27)
    spliced = other[:27] + mine[27:]
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(spliced, now=NOW)
    assert refused.value.code == "forged"


def test_expired() -> None:
    tokens = ReplyTokens([SECRET], ttl=timedelta(days=90))
    token = tokens.issue(CONVERSATION, now=NOW)
    assert tokens.verify(token, now=NOW + timedelta(days=89)).conversation_id == CONVERSATION
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(token, now=NOW + timedelta(days=91))
    assert refused.value.code == "expired"
    assert "2025-03-14" in str(refused.value)


def test_from_the_future_is_refused() -> None:
    tokens = ReplyTokens([SECRET])
    token = tokens.issue(CONVERSATION, now=NOW + timedelta(days=10))
    with pytest.raises(InvalidToken) as refused:
        tokens.verify(token, now=NOW)
    assert refused.value.code == "forged"


def test_signed_with_another_secret_is_forged() -> None:
    token = ReplyTokens([OTHER]).issue(CONVERSATION, now=NOW)
    with pytest.raises(InvalidToken) as refused:
        ReplyTokens([SECRET]).verify(token, now=NOW)
    assert refused.value.code == "forged"


def test_rotation_two_secrets_valid_at_once() -> None:
    old = ReplyTokens([OTHER])
    rotated = ReplyTokens([SECRET, OTHER])  # the new one signs, the old one still verifies
    old_token = old.issue(CONVERSATION, now=NOW)
    new_token = rotated.issue(CONVERSATION, now=NOW)
    assert new_token != old_token
    assert rotated.verify(old_token, now=NOW).conversation_id == CONVERSATION
    assert rotated.verify(new_token, now=NOW).conversation_id == CONVERSATION
    # once the old secret is dropped, its tokens stop working
    with pytest.raises(InvalidToken):
        ReplyTokens([SECRET]).verify(old_token, now=NOW)


@pytest.mark.parametrize(
    "token", ["", "abc", "a" * TOKEN_LENGTH + "a", "1" * TOKEN_LENGTH, "é" * TOKEN_LENGTH]
)
def test_malformed(token: str) -> None:
    with pytest.raises(InvalidToken) as refused:
        ReplyTokens([SECRET]).verify(token, now=NOW)
    assert refused.value.code == "malformed"


@pytest.mark.parametrize("secrets", [[], [""], ["Zq9!kw"], [SECRET, "Xy7#" * 3]])
def test_weak_secrets_are_refused_naming_the_setting(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="NOTIFIER_REPLY_SECRETS") as refused:
        ReplyTokens(secrets)
    for secret in secrets:
        if secret:
            assert secret not in str(refused.value)  # a secret is never echoed


def test_one_string_is_not_a_list_of_secrets() -> None:
    with pytest.raises(ValueError, match="NOTIFIER_REPLY_SECRETS"):
        ReplyTokens(SECRET)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReplyTokens([SECRET]).issue(CONVERSATION, now=datetime(2025, 3, 14))


def test_reply_address_and_back() -> None:
    token = ReplyTokens([SECRET]).issue(CONVERSATION, now=NOW)
    address = reply_address("reply", token, "reply.example.com")
    assert address == f"reply+{token}@reply.example.com"
    assert token_from_address(address, "reply.example.com") == token
    assert token_from_address(address.upper(), "Reply.Example.COM") == token
    assert token_from_address(f"<{address}>", "reply.example.com") == token


@pytest.mark.parametrize(
    "address",
    [
        "reply+abc@other.example.com",
        "reply@reply.example.com",
        "reply+@reply.example.com",
        "no-at-sign",
        "reply+abc@reply.example.com.evil.com",
    ],
)
def test_token_from_address_other_domains_and_no_token(address: str) -> None:
    assert token_from_address(address, "reply.example.com") is None


@pytest.mark.parametrize(
    ("local", "token", "domain", "reason"),
    [
        ("re ply", "abc", "reply.example.com", "local part"),
        ("reply+x", "abc", "reply.example.com", "local part"),
        ("reply", "ABC", "reply.example.com", "base32"),
        ("reply", "abc", "reply.example.com\r\nBcc: x@y.z", "not a domain name"),
        ("reply", "abc", "localhost", "not a domain name"),
    ],
)
def test_reply_address_refuses_bad_parts(local: str, token: str, domain: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        reply_address(local, token, domain)
