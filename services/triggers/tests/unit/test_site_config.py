"""A site's timezone and business hours from `sites.config` (set in the console) apply over
the rules document's own; what the site leaves unset, the document decides."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from beckon_contracts.rules import SiteRules
from beckon_contracts.sites import SiteConfig
from triggers.domain.engine import Sites, with_site_config

RULE = {"id": "r", "name": "R", "when": {"returning": True}, "message": "Hi"}
NINE_TO_FIVE_MONDAY = {"mon": ["09:00-17:00"]}


def site_rules(version: int = 1, **fields: Any) -> SiteRules:
    return SiteRules.model_validate(
        {"site_id": "shop", "version": version, "rules": [RULE]} | fields
    )


def config(version: int = 1, **fields: Any) -> SiteConfig:
    base = {"site_id": "shop", "version": version, "site_key": "pk_shop_key"}
    return SiteConfig.model_validate(base | fields)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC")).timestamp()


def test_the_site_settings_override_the_rules_document_only_where_set():
    rules = site_rules(timezone="Europe/Paris", business_hours=NINE_TO_FIVE_MONDAY)
    assert with_site_config(rules, None) is rules
    assert with_site_config(rules, config()) is rules  # nothing set on the site
    helsinki = with_site_config(rules, config(timezone="Europe/Helsinki"))
    assert (helsinki.timezone, helsinki.business_hours) == ("Europe/Helsinki", rules.business_hours)
    assert helsinki.version == rules.version
    hours = with_site_config(rules, config(business_hours={"tue": ["10:00-11:00"]}))
    assert hours.timezone == "Europe/Paris"
    assert hours.business_hours is not None
    assert (hours.business_hours.mon, hours.business_hours.tue) == ([], ["10:00-11:00"])


def test_a_site_configured_later_changes_when_its_rules_may_fire():
    sites = Sites()
    sites.put(site_rules(business_hours=NINE_TO_FIVE_MONDAY))  # read in UTC
    monday_0730_utc = at("2024-01-01 07:30")  # 09:30 in Helsinki (UTC+2)
    [compiled] = sites.get("shop").compiled.rules
    assert not compiled.open_at(monday_0730_utc)

    assert sites.configure(config(timezone="Europe/Helsinki"))
    [compiled] = sites.get("shop").compiled.rules
    assert compiled.open_at(monday_0730_utc)
    assert sites.get("shop").rules.timezone == "Europe/Helsinki"

    # a newer rules version keeps the site's timezone
    sites.put(site_rules(version=2, business_hours=NINE_TO_FIVE_MONDAY))
    assert sites.get("shop").rules.timezone == "Europe/Helsinki"
    assert sites.get("shop").rules.version == 2


def test_an_older_configuration_is_ignored_and_a_tombstone_restores_the_document():
    sites = Sites()
    sites.put(site_rules(timezone="Europe/Paris"))
    assert sites.configure(config(version=3, timezone="Europe/Helsinki"))
    assert not sites.configure(config(version=2, timezone="America/New_York"))
    assert sites.get("shop").rules.timezone == "Europe/Helsinki"
    sites.unconfigure("shop")
    assert sites.get("shop").rules.timezone == "Europe/Paris"


def test_a_site_without_rules_gets_its_configuration_too():
    sites = Sites()
    assert sites.get("shop").rules.timezone == "UTC"
    sites.configure(config(timezone="Europe/Helsinki"))
    assert sites.get("shop").rules.timezone == "Europe/Helsinki"
    assert sites.known("shop") is None


def test_a_finnish_site_writes_money_in_its_messages_the_finnish_way():
    """The invitation's {product_price} follows the site's language, as its canned replies do
    (a Finnish site showed "€318.90" in the invitation and "318,90 €" in a canned reply)."""
    from triggers.domain.engine import step
    from triggers.domain.observation import observe
    from triggers.domain.state import VisitorState
    from triggers_testing import product_view

    priced = RULE | {
        "when": {"product_views": {"gte": 1}},
        "message": "That one is {product_price} today",
        "holdout_percent": 0,
    }
    sites = Sites()
    sites.put(site_rules(rules=[priced]))

    def invitation_text(site_id: str = "shop") -> str:
        state = VisitorState(site_id, "v1")
        step(sites.get(site_id), state, observe(product_view(site_id, "v1", 0)))
        result = step(sites.get(site_id), state, observe(product_view(site_id, "v1", 60)))
        assert result.candidate is not None  # browsed long enough now
        return result.candidate.variables["product_price"]

    assert invitation_text() == "€89.90"  # no site config: English
    sites.configure(config(settings={"language": "fi"}))
    assert invitation_text() == "89,90\u00a0€"
    sites.configure(config(version=2, settings={"language": "auto"}))
    assert invitation_text() == "€89.90"
