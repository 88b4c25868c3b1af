"""The `sites.config` contract: what chat publishes and the tracker and triggers follow."""

import json

import pytest
from beckon_contracts import topics
from beckon_contracts.sites import (
    SiteConfig,
    config_key,
    newer,
    normalize_origin,
    parse_site_record,
    site_record,
)
from pydantic import ValidationError

BASE = {"site_id": "shop", "version": 1, "site_key": "pk_shop_key"}


def test_the_topic_is_compacted_and_keyed_by_site():
    topic = topics.get("sites.config")
    assert (topic.cleanup_policy, topic.key, topic.retention_ms) == ("compact", "site", None)
    assert topic.topic_configs()["cleanup.policy"] == "compact"
    assert config_key("shop") == b"shop"


def test_a_record_round_trips_with_origins_normalized():
    config = SiteConfig.model_validate(
        {
            **BASE,
            "write_key": "wk_shop_key",
            "allowed_origins": ["https://Shop.Example/", "http://127.0.0.1:8000"],
            "timezone": "Europe/Paris",
            "business_hours": {"mon": "9:00-17:00"},
            "settings": {"greeting": "Hi", "typing_preview": True},
        }
    )
    assert config.allowed_origins == ["https://shop.example", "http://127.0.0.1:8000"]
    record = site_record(config)
    assert (record.type, record.site_id) == ("site.configured", "shop")
    back = parse_site_record(record.model_dump_json())
    assert back == config
    assert back.business_hours is not None
    assert back.business_hours.mon == ["09:00-17:00"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"allowed_origins": ["ftp://shop.example"]}, "allowed_origins"),
        ({"allowed_origins": ["https://shop.example/path"]}, "allowed_origins"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"version": 0}, "version"),
        ({"site_key": "short"}, "site_key"),
        ({"write_key": "pk_shop_key"}, ""),  # the same as the site key
        ({"site_id": "Not A Site"}, "site_id"),
    ],
)
def test_invalid_configurations_are_refused(change, loc):
    with pytest.raises(ValidationError) as caught:
        SiteConfig.model_validate({**BASE, **change})
    assert str(caught.value.errors()[0]["loc"][0] if caught.value.errors()[0]["loc"] else "") == loc


def test_a_record_whose_payload_names_another_site_is_refused():
    record = site_record(SiteConfig.model_validate(BASE)).model_dump(mode="json")
    record["site_id"] = "other"
    with pytest.raises(ValidationError, match="differs"):
        parse_site_record(json.dumps(record))


def test_the_highest_version_wins_and_a_republish_is_taken():
    one, two = SiteConfig.model_validate(BASE), SiteConfig.model_validate({**BASE, "version": 2})
    assert newer(None, one)
    assert newer(one, two)
    assert newer(two, two)
    assert not newer(two, one)


def test_origins_keep_only_scheme_host_and_port():
    assert normalize_origin(" https://[::1]:8443/ ") == "https://[::1]:8443"
    with pytest.raises(ValueError, match="invalid port"):
        normalize_origin("https://shop.example:99999")
