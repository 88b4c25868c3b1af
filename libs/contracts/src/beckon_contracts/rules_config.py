"""Records on `rules.config` (key `site_id`, compacted): a site's whole rule set, versioned.

Publishing replaces the site's rules as a unit; the highest `version` wins, so a stale
publisher can't roll a site back by accident.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import model_validator

from beckon_contracts.envelope import Envelope
from beckon_contracts.ids import uuid7
from beckon_contracts.rules import SiteRules


class RulesPublished(Envelope):
    type: Literal["rules.published"] = "rules.published"
    payload: SiteRules

    @model_validator(mode="after")
    def _same_site(self) -> RulesPublished:
        if self.payload.site_id != self.site_id:
            raise ValueError(
                f"payload.site_id {self.payload.site_id!r} differs from site_id {self.site_id!r}"
            )
        return self


def rules_record(rules: SiteRules) -> RulesPublished:
    now = datetime.now(UTC)
    return RulesPublished(event_id=uuid7(), occurred_at=now, site_id=rules.site_id, payload=rules)


def parse_rules_record(data: bytes | str) -> SiteRules:
    return RulesPublished.model_validate_json(data).payload
