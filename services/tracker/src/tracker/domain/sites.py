"""Which store a request belongs to, and whether its page origin may send for that store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    site_key: str
    write_key: str | None
    allowed_origins: frozenset[str]

    def allows_origin(self, origin: str | None) -> bool:
        """Browsers send Origin; server-side SDKs don't, and CORS does not apply to them."""
        if origin is None:
            return True
        return "*" in self.allowed_origins or origin.rstrip("/").lower() in self.allowed_origins


class SiteRegistry:
    def __init__(self, sites: Iterable[Site]) -> None:
        self._by_site_key: dict[str, Site] = {}
        self._by_write_key: dict[str, Site] = {}
        for site in sites:
            self._by_site_key[site.site_key] = site
            if site.write_key:
                self._by_write_key[site.write_key] = site

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
