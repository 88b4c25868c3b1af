"""Postgres for the admin pages, one store per topic on a unit of work's connection
(`tx.store(PeopleStore)`): rule versions, teams and agents with their invitations, site
settings. Every query is scoped by site. The stores never write the outbox: a use case
publishes what a change must tell (`rules.config`, `sites.config`, presence) through its
unit of work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson
from beckon_contracts.rules import SiteRules

from chat.adapters import store
from chat.adapters.store import Row


class RulesStore:
    """The versions of a site's rules published from the console."""

    _VERSION = """SELECT site_id, version, rules, published_by, published_by_name, published_at
                  FROM chat.rule_versions"""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, site_id: str) -> None:
        """Serialise publishing per site (held until the transaction ends)."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('beckon.chat.rules:' || $1))", site_id
        )

    async def latest(self, site_id: str) -> Row | None:
        return await self.conn.fetchrow(
            self._VERSION + " WHERE site_id = $1 ORDER BY version DESC LIMIT 1", site_id
        )

    async def history(self, site_id: str, limit: int = 20) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(
            """SELECT version, published_by, published_by_name, published_at,
                      jsonb_array_length(coalesce(rules -> 'rules', '[]'::jsonb)) AS rules
               FROM chat.rule_versions WHERE site_id = $1 ORDER BY version DESC LIMIT $2""",
            site_id,
            limit,
        )
        return rows

    async def keep(self, rules: SiteRules, agent_id: str, agent_name: str, now: datetime) -> None:
        """Keep a published version (its `rules.config` record is the use case's to publish)."""
        await self.conn.execute(
            """INSERT INTO chat.rule_versions
                   (site_id, version, rules, published_by, published_by_name, published_at)
               VALUES ($1, $2, $3::jsonb, $4, $5, $6)""",
            rules.site_id,
            rules.version,
            rules.model_dump_json(by_alias=True),
            agent_id,
            agent_name,
            now,
        )


class PeopleStore:
    """Teams, agents and their set-password invitations."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- teams -------------------------------------------------------------------------------

    async def team_exists(self, site_id: str, team: str) -> bool:
        return await store.team_exists(self.conn, site_id, team)

    async def teams(self, site_id: str) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(
            """SELECT t.team, t.name,
                      coalesce(jsonb_agg(jsonb_build_object('id', a.agent_id, 'name', a.name,
                                                            'status', a.status)
                                         ORDER BY a.name) FILTER (WHERE a.agent_id IS NOT NULL),
                               '[]'::jsonb) AS members
               FROM chat.teams t
               LEFT JOIN chat.team_members m ON m.site_id = t.site_id AND m.team = t.team
               LEFT JOIN chat.agents a ON a.agent_id = m.agent_id
               WHERE t.site_id = $1
               GROUP BY t.team, t.name ORDER BY t.team""",
            site_id,
        )
        return rows

    async def create_team(self, site_id: str, team: str, name: str) -> bool:
        """False: the site has that team already."""
        done = await self.conn.fetchval(
            """INSERT INTO chat.teams (site_id, team, name) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING 1""",
            site_id,
            team,
            name,
        )
        return done is not None

    async def rename_team(self, site_id: str, team: str, name: str) -> bool:
        """False: no such team."""
        done = await self.conn.fetchval(
            "UPDATE chat.teams SET name = $3 WHERE site_id = $1 AND team = $2 RETURNING 1",
            site_id,
            team,
            name,
        )
        return done is not None

    async def add_member(self, site_id: str, team: str, agent_id: str) -> None:
        await self.conn.execute(
            """INSERT INTO chat.team_members (site_id, team, agent_id) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            site_id,
            team,
            agent_id,
        )

    async def remove_member(self, site_id: str, team: str, agent_id: str) -> None:
        await self.conn.execute(
            "DELETE FROM chat.team_members WHERE site_id = $1 AND team = $2 AND agent_id = $3",
            site_id,
            team,
            agent_id,
        )

    async def teams_of(self, site_id: str, agent_id: str) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT team FROM chat.team_members WHERE site_id = $1 AND agent_id = $2",
            site_id,
            agent_id,
        )
        return {row["team"] for row in rows}

    # --- agents ------------------------------------------------------------------------------

    async def agents(self, site_id: str, agent_id: str | None = None) -> list[Row]:
        """The site's agents as the admin page lists them (only `agent_id`, if given)."""
        rows: list[Row] = await self.conn.fetch(
            """SELECT a.agent_id, a.email, a.name, a.avatar_url, a.role, a.status, a.max_chats,
                      a.last_seen_at, a.created_at, a.deactivated_at,
                      a.password_hash = '!' AS invite_pending,
                      (SELECT count(*) FROM chat.conversations c
                       WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats,
                      ARRAY(SELECT m.team FROM chat.team_members m
                            WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
               FROM chat.agents a
               WHERE a.site_id = $1 AND ($2::text IS NULL OR a.agent_id = $2)
               ORDER BY a.deactivated_at IS NOT NULL, a.name, a.agent_id""",
            site_id,
            agent_id,
        )
        return rows

    async def agent_for_update(self, site_id: str, agent_id: str) -> Row | None:
        """The agent's row, locked until the transaction ends."""
        return await self.conn.fetchrow(
            """SELECT agent_id, site_id, email, name, role, status, max_chats, deactivated_at
               FROM chat.agents WHERE site_id = $1 AND agent_id = $2 FOR UPDATE""",
            site_id,
            agent_id,
        )

    async def agent_name(self, site_id: str, agent_id: str) -> str | None:
        name: str | None = await self.conn.fetchval(
            "SELECT name FROM chat.agents WHERE site_id = $1 AND agent_id = $2",
            site_id,
            agent_id,
        )
        return name

    async def email_site(self, email: str) -> str | None:
        """The site whose agent has this (normalised) address, if any (addresses are unique
        across sites: an agent logs in with the address alone)."""
        site_id: str | None = await self.conn.fetchval(
            "SELECT site_id FROM chat.agents WHERE email = $1", email
        )
        return site_id

    async def agent_id_taken(self, agent_id: str) -> bool:
        found = await self.conn.fetchval("SELECT 1 FROM chat.agents WHERE agent_id = $1", agent_id)
        return found is not None

    async def insert_agent(
        self, *, site_id: str, agent_id: str, email: str, name: str, role: str, max_chats: int
    ) -> bool:
        """A new agent who cannot log in until they set a password ('!' is no argon2 hash).
        False: the address was taken on another site at the same moment."""
        try:
            await self.conn.execute(
                """INSERT INTO chat.agents
                       (agent_id, site_id, email, password_hash, name, role, max_chats)
                   VALUES ($1, $2, $3, '!', $4, $5, $6)""",
                agent_id,
                site_id,
                email,
                name,
                role,
                max_chats,
            )
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def update_agent(
        self,
        site_id: str,
        agent_id: str,
        *,
        name: str | None,
        role: str | None,
        max_chats: int | None,
        avatar_url: str | None = None,
    ) -> None:
        """Change what is given (None: unchanged; an empty avatar_url removes the picture)."""
        await self.conn.execute(
            """UPDATE chat.agents SET name = coalesce($3, name), role = coalesce($4, role),
                                      max_chats = coalesce($5, max_chats),
                                      avatar_url = CASE WHEN $6::text IS NULL THEN avatar_url
                                                        ELSE nullif($6::text, '') END
               WHERE site_id = $1 AND agent_id = $2""",
            site_id,
            agent_id,
            name,
            role,
            max_chats,
            avatar_url,
        )

    async def active_admins(self, site_id: str) -> set[str]:
        rows = await self.conn.fetch(
            """SELECT agent_id FROM chat.agents
               WHERE site_id = $1 AND role = 'admin' AND deactivated_at IS NULL""",
            site_id,
        )
        return {row["agent_id"] for row in rows}

    async def open_chats(self, site_id: str, agent_id: str) -> int:
        count: int = await self.conn.fetchval(
            """SELECT count(*) FROM chat.conversations
               WHERE site_id = $1 AND agent_id = $2 AND status = 'open'""",
            site_id,
            agent_id,
        )
        return count

    async def deactivate(self, site_id: str, agent_id: str, now: datetime) -> None:
        """No login (the hash can never verify), sessions ended, offline, out of every team,
        open invites void."""
        await self.conn.execute(
            """UPDATE chat.agents SET deactivated_at = $3, status = 'offline',
                                      password_hash = '!', session_version = session_version + 1
               WHERE site_id = $1 AND agent_id = $2""",
            site_id,
            agent_id,
            now,
        )
        await self.conn.execute(
            "DELETE FROM chat.team_members WHERE site_id = $1 AND agent_id = $2",
            site_id,
            agent_id,
        )
        await self.conn.execute(
            "UPDATE chat.agent_invites SET used_at = $2 WHERE agent_id = $1 AND used_at IS NULL",
            agent_id,
            now,
        )

    # --- invitations -------------------------------------------------------------------------

    async def insert_invite(
        self,
        *,
        token_hash: bytes,
        site_id: str,
        agent_id: str,
        created_by: str,
        expires_at: datetime,
        now: datetime,
    ) -> None:
        """A new invitation; the agent's earlier ones stop working."""
        await self.conn.execute(
            "UPDATE chat.agent_invites SET used_at = $2 WHERE agent_id = $1 AND used_at IS NULL",
            agent_id,
            now,
        )
        await self.conn.execute(
            """INSERT INTO chat.agent_invites
                   (token_hash, site_id, agent_id, created_by, expires_at)
               VALUES ($1, $2, $3, $4, $5)""",
            token_hash,
            site_id,
            agent_id,
            created_by,
            expires_at,
        )

    async def open_invite_site(self, token_hash: bytes, now: datetime) -> str | None:
        """The site of an unused, unexpired invitation (None: no such invitation)."""
        site_id: str | None = await self.conn.fetchval(
            """SELECT site_id FROM chat.agent_invites
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2""",
            token_hash,
            now,
        )
        return site_id

    async def take_invite(self, token_hash: bytes, now: datetime) -> Row | None:
        """Use an invitation once: the row (site, agent) if it was unused and unexpired."""
        return await self.conn.fetchrow(
            """UPDATE chat.agent_invites SET used_at = $2
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
               RETURNING site_id, agent_id""",
            token_hash,
            now,
        )

    async def set_password(self, site_id: str, agent_id: str, password_hash: str) -> Row | None:
        """A new password (reactivating a deactivated agent) ends the agent's earlier
        sessions."""
        return await self.conn.fetchrow(
            """UPDATE chat.agents SET password_hash = $3, deactivated_at = NULL,
                                      session_version = session_version + 1
               WHERE site_id = $1 AND agent_id = $2 RETURNING email, name""",
            site_id,
            agent_id,
            password_hash,
        )


class SiteStore:
    """A site's settings and the version of its configuration (`sites.config`)."""

    _SITE = """SELECT site_id, name, site_key, write_key, allowed_origins, settings,
                      config_version, identity_secrets, identity_verification
               FROM chat.sites"""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def team_exists(self, site_id: str, team: str) -> bool:
        return await store.team_exists(self.conn, site_id, team)

    async def site(self, site_id: str) -> Row | None:
        return await self.conn.fetchrow(self._SITE + " WHERE site_id = $1", site_id)

    async def update(
        self,
        site_id: str,
        *,
        allowed_origins: list[str] | None,
        settings_patch: dict[str, Any],
    ) -> None:
        """Merge keys into the settings (a null value removes its key) and/or set the
        origins; the site's configuration gets a new version."""
        await self.conn.execute(
            """UPDATE chat.sites
               SET allowed_origins = coalesce($2, allowed_origins),
                   settings = jsonb_strip_nulls(settings || $3::jsonb),
                   config_version = config_version + 1
               WHERE site_id = $1""",
            site_id,
            allowed_origins,
            orjson.dumps(settings_patch).decode(),
        )

    async def set_identity(
        self, site_id: str, *, secrets: list[dict[str, Any]], verification: bool
    ) -> None:
        """The site's identity secrets (newest first) and enforcement; a new config version."""
        await self.conn.execute(
            """UPDATE chat.sites SET identity_secrets = $2::jsonb, identity_verification = $3,
                   config_version = config_version + 1
               WHERE site_id = $1""",
            site_id,
            orjson.dumps(secrets).decode(),
            verification,
        )

    async def versions(self) -> dict[str, int]:
        """Every site's configuration version."""
        rows = await self.conn.fetch("SELECT site_id, config_version FROM chat.sites")
        return {row["site_id"]: row["config_version"] for row in rows}
