"""Where the tracker's sites come from: a seed (TRACKER_SITES) until `sites.config` has the
site, then the topic alone, applied live."""

from beckon_contracts.sites import SiteConfig
from tracker.domain.sites import Site, SiteRegistry

SEED = Site("shop", "pk_seeded_key", "wk_seeded_key", frozenset({"https://shop.example"}))


def config(version: int, *origins: str, **fields: object) -> SiteConfig:
    values: dict[str, object] = {
        "site_id": "shop",
        "version": version,
        "site_key": "pk_shop_key",
        "write_key": "wk_shop_key",
        "allowed_origins": list(origins),
    }
    return SiteConfig.model_validate(values | fields)


def test_a_seeded_site_is_used_until_the_topic_has_it():
    sites = SiteRegistry([SEED])
    assert sites.by_site_key("pk_seeded_key") == SEED
    assert sites.by_write_key("wk_seeded_key") == SEED

    assert sites.apply(config(1, "https://shop.example"))
    # the topic's keys replace the seed's: the seeded ones stop working
    assert sites.by_site_key("pk_seeded_key") is None
    assert sites.by_write_key("wk_seeded_key") is None
    site = sites.by_site_key("pk_shop_key")
    assert site is not None
    assert sites.by_write_key("wk_shop_key") == site
    assert len(sites) == 1


def test_an_origin_added_is_allowed_and_one_removed_is_not():
    sites = SiteRegistry()
    assert sites.by_site_key("pk_shop_key") is None
    sites.apply(config(1, "https://shop.example"))
    assert not sites.any_allows_origin("https://new.example")

    sites.apply(config(2, "https://shop.example", "https://new.example"))
    site = sites.by_site_key("pk_shop_key")
    assert site is not None
    assert site.allows_origin("https://new.example")
    assert sites.any_allows_origin("https://new.example")

    sites.apply(config(3, "https://new.example"))
    site = sites.by_site_key("pk_shop_key")
    assert site is not None
    assert not site.allows_origin("https://shop.example")
    assert site.allows_origin("https://new.example")


def test_an_older_record_never_rolls_a_site_back():
    sites = SiteRegistry()
    assert sites.apply(config(5, "https://new.example"))
    assert not sites.apply(config(4, "https://old.example"))
    site = sites.by_site_key("pk_shop_key")
    assert site is not None
    assert site.allowed_origins == frozenset({"https://new.example"})
    assert sites.apply(config(5, "https://again.example"))  # a republish of the same version


def test_a_tombstone_removes_the_site_and_its_seed():
    other = Site("other", "pk_other_key", None, frozenset({"*"}))
    sites = SiteRegistry([SEED, other])
    sites.apply(config(1, "https://shop.example"))
    sites.remove("shop")
    assert sites.by_site_key("pk_shop_key") is None
    assert sites.by_site_key("pk_seeded_key") is None
    assert sites.by_site_key("pk_other_key") == other
    # the site may come back with a newer record
    assert sites.apply(config(2, "https://shop.example"))
    assert sites.by_site_key("pk_shop_key") is not None


def test_a_site_without_write_key_has_none():
    sites = SiteRegistry()
    sites.apply(config(1, write_key=None))
    assert sites.by_write_key("wk_shop_key") is None
    assert sites.by_site_key("pk_shop_key") is not None
