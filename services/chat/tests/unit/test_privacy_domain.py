"""A privacy request's subjects and records, pure: e-mail addresses never leave chat in clear."""

from __future__ import annotations

import uuid

import pytest
from beckon_contracts.privacy import parse_privacy_command, parse_privacy_erased, subject_hash
from chat.errors import Invalid
from chat.privacy import domain


def test_subjects_are_trimmed_lowercased_and_deduplicated() -> None:
    ids, emails = domain.subjects([" v-1 ", "v-1", ""], ["Anna@Example.org", "anna@example.org "])
    assert ids == ["v-1"]
    assert emails == ["anna@example.org"]


@pytest.mark.parametrize(
    ("ids", "emails", "code"),
    [
        ([], [], "no_subject"),
        ([" "], ["  "], "no_subject"),
        ([f"v-{n}" for n in range(15)], [f"{n}@x.org" for n in range(6)], "too_many_subjects"),
    ],
)
def test_a_request_names_someone_and_not_too_many(
    ids: list[str], emails: list[str], code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        domain.subjects(ids, emails)
    assert refused.value.code == code


def test_the_command_carries_addresses_as_hashes_only() -> None:
    record = domain.erasure_command(
        site_id="shop",
        request_id=uuid.uuid4(),
        visitor_ids=["v-1"],
        emails=["anna@example.org"],
        requested_by="admin-1",
    )
    assert record.topic == "privacy.requests"
    assert record.key == b"shop"
    assert b"anna" not in record.value
    command = parse_privacy_command(record.value)
    assert command.payload.email_hashes == [subject_hash(" ANNA@example.org")]
    assert command.payload.visitor_ids == ["v-1"]

    fact = domain.erased_record(command, visitor_ids=["v-1"], counts={"visitors": 1})
    assert b"v-1" not in fact.value
    assert b"anna" not in fact.value
    erased = parse_privacy_erased(fact.value)
    assert erased.payload.service == "chat"
    assert erased.payload.visitor_hashes == [subject_hash("v-1")]
