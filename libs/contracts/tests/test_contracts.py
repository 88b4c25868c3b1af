from decimal import Decimal
from uuid import uuid4

import orjson
import pytest
from beckon_contracts import schemas, topics
from beckon_contracts.envelope import SiteId, is_identifier, is_site_id, record_key
from beckon_contracts.ids import uuid7, uuid7_time_ms
from beckon_contracts.tracking import parse_tracking_event, tracking_event_adapter
from pydantic import ValidationError


def test_exported_json_schemas_match_the_models():
    """Run `make schemas` after changing a contract; this fails until the files are updated."""
    for filename, text in schemas.render().items():
        path = schemas.SCHEMA_DIR / filename
        assert path.exists(), f"{path} missing: run `make schemas`"
        assert path.read_text() == text, f"{path} drifted from the models: run `make schemas`"


def test_uuid7_is_time_ordered_and_versioned():
    ids = [uuid7(unix_ms=1_700_000_000_000 + i) for i in range(50)]
    assert all(value.version == 7 and value.variant == "specified in RFC 4122" for value in ids)
    assert ids == sorted(ids)
    assert uuid7_time_ms(ids[3]) == 1_700_000_000_003
    assert len({uuid7(unix_ms=1) for _ in range(1000)}) == 1000


def _order(**payload):
    return {
        "event_id": str(uuid7()),
        "type": "order_completed",
        "occurred_at": "2026-11-23T10:00:00+02:00",
        "site_id": "demo",
        "visitor_id": "v1",
        "payload": {"order_id": "o1", "value": "99.95", "currency": "eur"} | payload,
    }


def test_money_is_decimal_inside_and_a_number_on_the_wire():
    event = tracking_event_adapter.validate_python(_order())
    assert event.payload.value == Decimal("99.95")
    wire = orjson.loads(tracking_event_adapter.dump_json(event))
    assert wire["payload"]["value"] == 99.95
    assert wire["payload"]["currency"] == "EUR"
    assert parse_tracking_event(tracking_event_adapter.dump_json(event)) == event


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"event_id": str(uuid4())}, ("order_completed", "event_id")),
        ({"occurred_at": "2026-11-23T10:00:00"}, ("order_completed", "occurred_at")),
        ({"site_id": "Not A Slug"}, ("order_completed", "site_id")),
        ({"visitor_id": "two words"}, ("order_completed", "visitor_id")),
        ({"surprise": 1}, ("order_completed", "surprise")),
    ],
)
def test_envelope_rules(change, loc):
    with pytest.raises(ValidationError) as caught:
        tracking_event_adapter.validate_python(_order() | change)
    assert [error["loc"] for error in caught.value.errors()] == [loc]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"value": -1}, "value"), ({"currency": "EURO"}, "currency"), ({"value": "NaN"}, "value")],
)
def test_money_rules(payload, field):
    with pytest.raises(ValidationError) as caught:
        tracking_event_adapter.validate_python(_order(**payload))
    assert caught.value.errors()[0]["loc"][-1] == field


def test_record_keys_keep_a_visitor_on_one_partition():
    assert record_key("demo", "v1") == b"demo:v1"
    assert record_key("demo", None) == b"demo:-"
    assert is_identifier("v_1@shop.example")
    assert not is_identifier("a b")
    assert not is_identifier(7)
    assert not is_identifier("v1\n")  # Python's $ would accept a trailing newline


def test_is_site_id_agrees_with_the_site_id_type():
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(SiteId)
    for value in ("demo", "shop-1_eu", "a" * 64, "Demo", "a.b", "", "a" * 65, "-x", "demo\n"):
        try:
            adapter.validate_python(value)
            valid = True
        except ValidationError:
            valid = False
        assert is_site_id(value) is valid, value
    assert not is_site_id(None)


def test_topic_registry_is_consistent():
    names = [topic.name for topic in topics.ALL_TOPICS]
    assert len(names) == len(set(names))
    for topic in topics.ALL_TOPICS:
        if topic.dead_letter:
            assert topic.dead_letter in topics.BY_NAME, topic.name
        configs = topic.topic_configs()
        assert configs["cleanup.policy"] == topic.cleanup_policy
        assert ("retention.ms" in configs) == (
            topic.cleanup_policy == "delete" and topic.retention_ms is not None
        )
    assert topics.get("tracking.events").dead_letter == "tracking.dlq"
    assert topics.get("visitors.state").cleanup_policy == "compact"


def test_compacted_topics_roll_segments_so_the_cleaner_can_compact_them():
    compacted = [t for t in topics.ALL_TOPICS if t.cleanup_policy == "compact"]
    assert {"visitors.state", "agents.presence", "rules.config"} <= {t.name for t in compacted}
    for topic in compacted:
        configs = topic.topic_configs()
        assert configs["segment.ms"] == str(topics.COMPACTED_SEGMENT_MS)
        assert "min.cleanable.dirty.ratio" not in configs  # Kafka's default in production
        sized_for_tests = topic.topic_configs(compacted_segment_ms=1000)
        assert sized_for_tests["segment.ms"] == "1000"
        assert sized_for_tests["min.cleanable.dirty.ratio"] == "0.01"
    assert "segment.ms" not in topics.TRACKING_EVENTS.topic_configs()


def test_min_insync_replicas_is_the_clusters():
    for topic in topics.ALL_TOPICS:
        assert topic.topic_configs()["min.insync.replicas"] == "1"
        assert topic.topic_configs(min_insync_replicas=2)["min.insync.replicas"] == "2"
    with pytest.raises(KeyError, match="unknown topic"):
        topics.get("nope")
