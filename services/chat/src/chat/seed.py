"""Sites, teams and agents from YAML (`python -m chat seed FILE`): upserts, safe to repeat.

```yaml
sites:
  - site_id: demo
    site_key: pk_demo_beckon
    write_key: wk_demo_beckon      # Segment-compatible calls (optional)
    name: Demo store
    allowed_origins: ["http://127.0.0.1:8000"]
    settings: {greeting: "Hi!", color: "#1f6feb", language: auto, typing_preview: true,
               default_team: sales}
    teams: [{team: sales, name: Sales}]
    agents:
      - {email: anna@example.com, password: "...", name: Anna, teams: [sales], max_chats: 5}
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import asyncpg
import orjson
import yaml
from beckon_contracts.envelope import Identifier, SiteId
from beckon_contracts.sites import normalize_origin
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from chat.adapters.store import add_outbox
from chat.admin.domain import site_config_record
from chat.admin.store import SiteStore
from chat.agents import directory
from chat.agents.domain import normalise_email
from chat.agents.service import hash_password
from chat.agents.store import DirectoryStore


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeamSeed(_Model):
    team: Identifier
    name: str = ""


class AgentSeed(_Model):
    agent_id: Identifier | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)] | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    avatar_url: str | None = None
    role: Literal["agent", "admin"] = "agent"
    max_chats: int = Field(default=5, ge=1, le=50)
    teams: list[Identifier] = Field(default_factory=list)


class SiteSeed(_Model):
    site_id: SiteId
    site_key: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    write_key: Annotated[str, StringConstraints(min_length=8, max_length=128)] | None = None
    name: str = ""
    allowed_origins: list[str] = Field(default_factory=list)
    settings: dict[str, object] = Field(default_factory=dict)
    # None: as the site is (a new site enforces identity verification, docs/identity.md)
    identity_verification: bool | None = None
    teams: list[TeamSeed] = Field(default_factory=list)
    agents: list[AgentSeed] = Field(default_factory=list)

    @field_validator("allowed_origins")
    @classmethod
    def _normalise(cls, origins: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in origins]

    @model_validator(mode="after")
    def _distinct_agents(self) -> SiteSeed:
        seen: dict[str, str] = {}
        for agent in self.agents:
            agent_id = agent.agent_id or _agent_id(self.site_id, agent.email)
            if agent_id in seen:
                raise ValueError(
                    f"{agent.email} and {seen[agent_id]} would both be agent {agent_id!r}; "
                    "give one of them an explicit agent_id"
                )
            seen[agent_id] = agent.email
        return self


class Seed(_Model):
    sites: list[SiteSeed]


def load_seed(path: Path) -> Seed:
    return Seed.model_validate(yaml.safe_load(path.read_text()) or {"sites": []})


def _agent_id(site_id: str, email: str) -> str:
    local = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-") or "agent"
    return f"{site_id}-{local}"


async def apply_seed(conn: asyncpg.Connection, seed: Seed) -> int:
    """Upsert everything in the seed; returns how many agents it holds."""
    agents = 0
    async with conn.transaction():
        for site in seed.sites:
            await conn.execute(
                """INSERT INTO chat.sites
                       (site_id, site_key, write_key, name, allowed_origins, settings)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                   ON CONFLICT (site_id) DO UPDATE SET site_key = EXCLUDED.site_key,
                       write_key = EXCLUDED.write_key,
                       name = EXCLUDED.name, allowed_origins = EXCLUDED.allowed_origins,
                       settings = EXCLUDED.settings,
                       config_version = chat.sites.config_version + 1""",
                site.site_id,
                site.site_key,
                site.write_key,
                site.name,
                site.allowed_origins,
                orjson.dumps(site.settings).decode(),
            )
            if site.identity_verification is not None:
                await conn.execute(
                    "UPDATE chat.sites SET identity_verification = $2 WHERE site_id = $1",
                    site.site_id,
                    site.identity_verification,
                )
            # the tracker and the workers learn the site from `sites.config` (outbox, in the
            # seed's own transaction: a seed is applied before any unit of work runs)
            row = await SiteStore(conn).site(site.site_id)
            assert row is not None  # upserted just above
            await add_outbox(conn, [site_config_record(row)])
            for team in site.teams:
                await conn.execute(
                    """INSERT INTO chat.teams (site_id, team, name) VALUES ($1, $2, $3)
                       ON CONFLICT (site_id, team) DO UPDATE SET name = EXCLUDED.name""",
                    site.site_id,
                    team.team,
                    team.name or team.team.title(),
                )
            for agent in site.agents:
                agent_id = agent.agent_id or _agent_id(site.site_id, agent.email)
                password_hash = hash_password(agent.password) if agent.password else None
                await conn.execute(
                    """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name,
                           avatar_url, role, max_chats)
                       VALUES ($1, $2, $3, coalesce($4, '!'), $5, $6, $7, $8)
                       ON CONFLICT (agent_id) DO UPDATE SET email = EXCLUDED.email,
                           password_hash = coalesce($4, chat.agents.password_hash),
                           name = EXCLUDED.name, avatar_url = EXCLUDED.avatar_url,
                           role = EXCLUDED.role, max_chats = EXCLUDED.max_chats""",
                    agent_id,
                    site.site_id,
                    normalise_email(agent.email),
                    password_hash,
                    agent.name,
                    agent.avatar_url,
                    agent.role,
                    agent.max_chats,
                )
                await conn.execute("DELETE FROM chat.team_members WHERE agent_id = $1", agent_id)
                await conn.executemany(
                    "INSERT INTO chat.team_members (site_id, team, agent_id) VALUES ($1, $2, $3)",
                    [(site.site_id, member_of, agent_id) for member_of in agent.teams],
                )
                # `agents.directory` lists the agent (if their card changed), like the site
                await add_outbox(conn, await directory.relist(DirectoryStore(conn), [agent_id]))
                agents += 1
    return agents
