"""The seed file (the dev stack's demo store): applied through the admin's use cases, once per
part, never over what an admin changed; a bad file names the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from leads import seed
from leads.domain.routing import InvalidRouting
from leads.routing import service as routing
from leads.sla import service as sla
from leads.uow import UnitOfWorkFactory
from leads_testing import unique

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "seed" / "demo.yaml"


def now() -> datetime:
    return datetime.now(UTC)


def _demo_as(site: str, tmp_path: Path) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data["sites"][0]["site_id"] = site
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_the_demo_seed_sets_up_teams_routing_hours_and_slas_once(leads_pool, tmp_path):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    site = unique("site")
    path = _demo_as(site, tmp_path)

    applied = await seed.seed(uow, path)
    assert applied == [
        f"{site}: 2 teams",
        f"{site}: routing rules",
        f"{site}: business hours",
        f"{site}: 3 SLA policies",
    ]
    teams = await routing.list_teams(uow=uow, site_id=site)
    assert [(t.team, t.name) for t in teams] == [
        ("sales", "Sales"),
        ("support", "Customer service"),
    ]
    returns = await routing.try_routing(
        uow=uow, site_id=site, lead={"validation": "interested", "tags": ["Returns"]}
    )
    assert returns.explanation.decision.team == "support"
    hours = await sla.site_hours(uow, site_id=site)
    assert hours.timezone == "Europe/Helsinki"
    policies = {(p.team, p.validation): p for p in await sla.site_policies(uow, site_id=site)}
    assert policies["sales", "ready_to_buy"].reassign is True

    # an admin's change is kept: a second run (a restart) applies nothing
    document = {"default_team": "support", "rules": []}
    saved = await routing.save_routing(
        uow=uow, site_id=site, document=document, by="anna", now=now()
    )
    assert await seed.seed(uow, path) == []
    kept = await routing.get_routing(uow=uow, site_id=site)
    assert kept.version == saved.version
    assert kept.rules.default_team == "support"


async def test_a_bad_file_names_the_field(leads_pool, tmp_path):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    path = tmp_path / "bad.yaml"
    path.write_text("sites:\n  - site_id: demo\n    teams: [{team: sales, colour: red}]\n")
    with pytest.raises(seed.SeedError, match=r"sites\.0\.teams\.0\.colour"):
        await seed.seed(uow, path)
    path.write_text("sites: [\n")
    with pytest.raises(seed.SeedError, match=r"bad\.yaml"):
        await seed.seed(uow, path)


async def test_bad_routing_in_the_file_is_refused_with_its_place(leads_pool, tmp_path):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    site = unique("site")
    data = {
        "sites": [
            {
                "site_id": site,
                "teams": [{"team": "sales"}],
                "routing": {"default_team": "salse", "rules": []},
            }
        ]
    }
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidRouting) as refused:
        await seed.seed(uow, path)
    assert any(problem["loc"] == "default_team" for problem in refused.value.errors or [])
