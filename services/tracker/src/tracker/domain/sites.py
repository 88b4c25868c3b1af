"""Which store a request belongs to, and whether its page origin may send for that store.

Sites come from `sites.config` (chat's site admin, followed live) and, for a fresh install,
from the seed in the settings (`TRACKER_SITES`): a seeded site is used until the topic has
that site; from then on the topic alone decides (its keys, its origins), and a tombstone
removes the site, seed or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from beckon_contracts.sites import SiteConfig, newer


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    site_key: str
    write_key: str | None
    allowed_origins: frozenset[str]
    identity_secrets: tuple[str, ...] = ()
    identity_verification: bool = False

    def allows_origin(self, origin: str | None) -> bool:
        """Browsers send Origin; server-side SDKs don't, and CORS does not apply to them (the
        snippet's endpoint refuses a missing Origin before it gets here)."""
        if origin is None:
            return True
        return "*" in self.allowed_origins or origin.rstrip("/").lower() in self.allowed_origins

    @classmethod
    def of(cls, config: SiteConfig) -> Site:
        return cls(
            config.site_id,
            config.site_key,
            config.write_key,
            frozenset(config.allowed_origins),
            tuple(entry.secret for entry in config.identity_secrets),
            config.identity_verification,
        )


class SiteRegistry:
    """The sites in force: lookups by key are one dict read; a change rebuilds the indexes
    (a few sites, changed rarely) and swaps them in whole."""

    def __init__(self, seeds: Iterable[Site] = ()) -> None:
        self._seeds: dict[str, Site] = {site.site_id: site for site in seeds}
        self._followed: dict[str, SiteConfig] = {}
        self._removed: set[str] = set()
        self._by_site_key: dict[str, Site] = {}
        self._by_write_key: dict[str, Site] = {}
        self._index()

    def apply(self, config: SiteConfig) -> bool:
        """A site's record from `sites.config`; whether it changed what is in force."""
        if not newer(self._followed.get(config.site_id), config):
            return False
        self._followed[config.site_id] = config
        self._removed.discard(config.site_id)
        self._index()
        return True

    def remove(self, site_id: str) -> None:
        """A tombstone on `sites.config`: the site is gone (its seed, if any, too)."""
        self._followed.pop(site_id, None)
        self._removed.add(site_id)
        self._index()

    def _index(self) -> None:
        in_force = {
            site_id: site for site_id, site in self._seeds.items() if site_id not in self._removed
        }
        in_force.update((site_id, Site.of(config)) for site_id, config in self._followed.items())
        by_site_key: dict[str, Site] = {}
        by_write_key: dict[str, Site] = {}
        for site in in_force.values():
            by_site_key[site.site_key] = site
            if site.write_key:
                by_write_key[site.write_key] = site
        self._by_site_key, self._by_write_key = by_site_key, by_write_key

    def __len__(self) -> int:
        return len(self._by_site_key)

    def by_site_key(self, key: str | None) -> Site | None:
        return _lookup(self._by_site_key, key)

    def by_write_key(self, key: str | None) -> Site | None:
        return _lookup(self._by_write_key, key)

    def any_allows_origin(self, origin: str) -> bool:
        return any(site.allows_origin(origin) for site in self._by_site_key.values())


def _lookup(table: dict[str, Site], key: str | None) -> Site | None:
    return table.get(key) if key else None
