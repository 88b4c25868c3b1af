"""Seed sites' leads settings from a YAML file (`python -m leads seed FILE`, or
LEADS_SEED_FILE at start-up): teams, routing rules, business hours and SLA policies.

Each part is applied only while the site has none of it, so a restart never undoes what an
admin changed in the console. Everything goes through the same use cases (and checks) as the
admin's routes: a bad file fails with the field named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from beckon_contracts.envelope import SiteId
from beckon_contracts.rules import BusinessHours
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leads.routing import service as routing
from leads.routing.store import Team
from leads.sla import service as sla
from leads.sla.models import SiteHours, SitePolicy
from leads.uow import UnitsOfWork

SEEDED_BY = "seed"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedTeam(_Strict):
    team: str
    name: str = ""


class SeedHours(_Strict):
    timezone: str = "UTC"
    hours: BusinessHours | None = None


class SeedSite(_Strict):
    site_id: SiteId
    teams: list[SeedTeam] = Field(default_factory=list)
    routing: dict[str, Any] | None = None
    business_hours: SeedHours | None = None
    sla_policies: list[SitePolicy] = Field(default_factory=list)


class SeedFile(_Strict):
    sites: list[SeedSite] = Field(min_length=1)


class SeedError(ValueError):
    """The file cannot be read or does not describe sites (the message says where)."""


def load(path: Path) -> SeedFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SeedError(f"{path}: {exc}") from None
    try:
        return SeedFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SeedError(f"{path}: {where}: {first['msg']}") from None


async def seed(uow: UnitsOfWork, path: Path, *, now: datetime | None = None) -> list[str]:
    """Apply what each site of the file does not have yet; returns what was applied."""
    now = now or datetime.now(UTC)
    applied: list[str] = []
    for site in load(path).sites:
        sid = site.site_id
        if site.teams and not await routing.list_teams(uow=uow, site_id=sid):
            teams = [Team(t.team, t.name or t.team, None) for t in site.teams]
            await routing.save_teams(uow=uow, site_id=sid, teams=teams)
            applied.append(f"{sid}: {len(teams)} teams")
        if site.routing is not None:
            current = await routing.get_routing(uow=uow, site_id=sid)
            if current.version is None:
                await routing.save_routing(
                    uow=uow, site_id=sid, document=site.routing, by=SEEDED_BY, now=now
                )
                applied.append(f"{sid}: routing rules")
        if site.business_hours is not None:
            hours = await sla.site_hours(uow, site_id=sid)
            if hours.hours is None:
                wanted = SiteHours(
                    timezone=site.business_hours.timezone, hours=site.business_hours.hours
                )
                await sla.set_site_hours(uow, site_id=sid, hours=wanted, now=now)
                applied.append(f"{sid}: business hours")
        if site.sla_policies and not await sla.site_policies(uow, site_id=sid):
            await sla.replace_site_policies(uow, site_id=sid, policies=site.sla_policies, now=now)
            applied.append(f"{sid}: {len(site.sla_policies)} SLA policies")
    return applied
