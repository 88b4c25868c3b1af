"""The one dead-letter builder: the contract's fields, filled the same way for every service."""

from datetime import UTC, datetime

import orjson
import pytest
from beckon_contracts.dead_letter import DeadLettered, FieldError
from beckon_contracts.tracking import parse_tracking_event
from beckon_messaging import (
    classify,
    dead_letter,
    dead_letter_for,
    encode_dead_letter,
    field_errors,
)
from pydantic import ValidationError

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _invalid_event() -> bytes:
    return orjson.dumps(
        {
            "event_id": "0192f0e4-5c4a-7cc3-8a5e-3f1a2b3c4d5e",
            "type": "product_viewed",
            "occurred_at": "2026-11-23T10:00:00Z",
            "site_id": "shop",
            "visitor_id": "v1",
            "payload": {"product_id": "p1", "price": "free", "currency": "EUR"},
        }
    )


def test_a_consumed_record_is_located_and_its_site_and_visitor_read_from_it() -> None:
    raw = _invalid_event()
    letter = dead_letter(
        raw,
        reason="schema_invalid",
        detail="price is not a number",
        errors=[{"loc": ("product_viewed", "payload", "price"), "msg": "bad", "type": "x"}],
        source="chat-activity:tracking.events",
        topic="tracking.events",
        partition=3,
        offset=41,
        at=AT,
    )
    assert (letter.site_id, letter.visitor_id) == ("shop", "v1")
    assert (letter.occurred_at, letter.received_at) == (AT, AT)
    assert letter.event_id.version == 7
    payload = letter.payload
    assert (payload.topic, payload.partition, payload.offset) == ("tracking.events", 3, 41)
    assert payload.errors == [FieldError(loc="product_viewed.payload.price", msg="bad", type="x")]
    assert payload.raw.encode() == raw


def test_the_wire_value_round_trips_through_the_contract_and_omits_what_is_unknown() -> None:
    letter = dead_letter(b"{oops", reason="malformed_json", detail="no", source="POST /v1/x")
    wire = encode_dead_letter(letter)
    assert DeadLettered.model_validate_json(wire) == letter
    payload = orjson.loads(wire)["payload"]
    assert "topic" not in payload  # an HTTP body has no position
    assert "offset" not in payload
    assert "visitor_id" not in orjson.loads(wire)


def test_unreadable_input_goes_to_the_unknown_site_and_invalid_bytes_are_replaced() -> None:
    letter = dead_letter(
        b'{"site_id": "Not A Site"}\xff', reason="malformed_json", detail="x", source="s"
    )
    assert letter.site_id == "unknown"
    assert letter.payload.raw.endswith("\ufffd")


def test_a_site_given_by_the_caller_wins_over_the_raw_record() -> None:
    letter = dead_letter(
        _invalid_event(), reason="schema_invalid", detail="x", source="s", site_id="other"
    )
    assert (letter.site_id, letter.visitor_id) == ("other", None)


def test_long_details_and_many_errors_are_cut_to_the_contract_limits() -> None:
    errors = [{"loc": ("events", n), "msg": "m" * 900, "type": "t"} for n in range(150)]
    letter = dead_letter(
        b"{}", reason="schema_invalid", detail="d" * 5000, errors=errors, source="s" * 300
    )
    assert len(letter.payload.detail) == 2000
    assert len(letter.payload.source) == 200
    assert len(letter.payload.errors) == 100
    assert letter.payload.errors[7].loc == "events.7"
    assert len(letter.payload.errors[0].msg) == 500


def test_exceptions_are_classified_into_reason_codes() -> None:
    with pytest.raises(ValidationError) as schema:
        parse_tracking_event(_invalid_event())
    with pytest.raises(ValidationError) as not_json:
        parse_tracking_event(b"{oops")
    with pytest.raises(orjson.JSONDecodeError) as decode:
        orjson.loads(b"{oops")
    reason, errors = classify(schema.value)
    assert reason == "schema_invalid"
    assert any(error.loc.endswith("payload.price") for error in errors)
    assert classify(not_json.value) == ("malformed_json", [])
    assert classify(decode.value) == ("malformed_json", [])
    assert classify(KeyError("site_id")) == ("processing_failed", [])


def test_dead_letter_for_an_exception_carries_its_reason_errors_and_type() -> None:
    with pytest.raises(ValidationError) as schema:
        parse_tracking_event(_invalid_event())
    letter = dead_letter_for(schema.value, _invalid_event(), source="triggers:tracking.events")
    assert letter.payload.reason == "schema_invalid"
    assert letter.payload.errors
    failed = dead_letter_for(KeyError("site_id"), b"{}", source="s")
    assert failed.payload.reason == "processing_failed"
    assert failed.payload.detail == "KeyError: 'site_id'"


def test_field_errors_keep_contract_errors_and_join_locations() -> None:
    given = FieldError(loc="a.b", msg="m", type="t")
    assert field_errors([given, {"loc": ["x", 0], "msg": "n", "type": "u"}]) == [
        given,
        FieldError(loc="x.0", msg="n", type="u"),
    ]
