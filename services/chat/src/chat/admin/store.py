"""Postgres for the admin pages: rule versions, teams, agents, invitations, site settings.

A site's every change is published whole on `sites.config` through the outbox (`publish_site`).

Functions take a connection so the caller decides the transaction; every query is scoped by
site. Presence: a change of a team's members or of an agent's capacity republishes the whole
team on `agents.presence` through the outbox, as the chat service's own use cases do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import rules_record
from beckon_contracts.sites import config_key, site_record
from beckon_contracts.topics import RULES_CONFIG, SITES_CONFIG

from chat.adapters import store
from chat.adapters.store import Row
from chat.admin import domain
from chat.outbox import OutboxRecord


async def lock_rules(conn: asyncpg.Connection, site_id: str) -> None:
    """Serialise publishing per site (held until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('beckon.chat.rules:' || $1))", site_id
    )


# --- rule versions -------------------------------------------------------------------------

_VERSION = """SELECT site_id, version, rules, published_by, published_by_name, published_at
              FROM chat.rule_versions"""


async def latest_version(conn: asyncpg.Connection, site_id: str) -> Row | None:
    return await conn.fetchrow(
        _VERSION + " WHERE site_id = $1 ORDER BY version DESC LIMIT 1", site_id
    )


async def version(conn: asyncpg.Connection, site_id: str, number: int) -> Row | None:
    return await conn.fetchrow(_VERSION + " WHERE site_id = $1 AND version = $2", site_id, number)


async def history(conn: asyncpg.Connection, site_id: str, limit: int = 20) -> list[Row]:
    rows: list[Row] = await conn.fetch(
        """SELECT version, published_by, published_by_name, published_at,
                  jsonb_array_length(coalesce(rules -> 'rules', '[]'::jsonb)) AS rules
           FROM chat.rule_versions WHERE site_id = $1 ORDER BY version DESC LIMIT $2""",
        site_id,
        limit,
    )
    return rows


async def publish_rules(
    conn: asyncpg.Connection, rules: SiteRules, agent_id: str, agent_name: str, now: datetime
) -> None:
    """Keep the version and put its `rules.config` record in the outbox (same transaction):
    key `site_id`, value a `rules.published` envelope, exactly what `beckon rules apply` sends."""
    document = rules.model_dump_json(by_alias=True)
    await conn.execute(
        """INSERT INTO chat.rule_versions
               (site_id, version, rules, published_by, published_by_name, published_at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6)""",
        rules.site_id,
        rules.version,
        document,
        agent_id,
        agent_name,
        now,
    )
    record = rules_record(rules).model_dump_json().encode()
    await store.add_outbox(conn, [OutboxRecord(RULES_CONFIG.name, rules.site_id.encode(), record)])


# --- presence ------------------------------------------------------------------------------


async def teams_of(conn: asyncpg.Connection, site_id: str, agent_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT team FROM chat.team_members WHERE site_id = $1 AND agent_id = $2",
        site_id,
        agent_id,
    )
    return {row["team"] for row in rows}


async def open_chats(conn: asyncpg.Connection, site_id: str, agent_id: str) -> int:
    count: int = await conn.fetchval(
        """SELECT count(*) FROM chat.conversations
           WHERE site_id = $1 AND agent_id = $2 AND status = 'open'""",
        site_id,
        agent_id,
    )
    return count


# --- teams ---------------------------------------------------------------------------------


async def teams(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    rows: list[Row] = await conn.fetch(
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


async def create_team(conn: asyncpg.Connection, site_id: str, team: str, name: str) -> bool:
    done = await conn.fetchval(
        """INSERT INTO chat.teams (site_id, team, name) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING 1""",
        site_id,
        team,
        name,
    )
    return done is not None


async def rename_team(conn: asyncpg.Connection, site_id: str, team: str, name: str) -> bool:
    done = await conn.fetchval(
        "UPDATE chat.teams SET name = $3 WHERE site_id = $1 AND team = $2 RETURNING 1",
        site_id,
        team,
        name,
    )
    return done is not None


async def add_member(conn: asyncpg.Connection, site_id: str, team: str, agent_id: str) -> None:
    await conn.execute(
        """INSERT INTO chat.team_members (site_id, team, agent_id) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""",
        site_id,
        team,
        agent_id,
    )


async def remove_member(conn: asyncpg.Connection, site_id: str, team: str, agent_id: str) -> None:
    await conn.execute(
        "DELETE FROM chat.team_members WHERE site_id = $1 AND team = $2 AND agent_id = $3",
        site_id,
        team,
        agent_id,
    )


# --- agents --------------------------------------------------------------------------------


async def agents(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    rows: list[Row] = await conn.fetch(
        """SELECT a.agent_id, a.email, a.name, a.avatar_url, a.role, a.status, a.max_chats,
                  a.last_seen_at, a.created_at, a.deactivated_at,
                  a.password_hash = '!' AS invite_pending,
                  (SELECT count(*) FROM chat.conversations c
                   WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats,
                  ARRAY(SELECT m.team FROM chat.team_members m
                        WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
           FROM chat.agents a WHERE a.site_id = $1
           ORDER BY a.deactivated_at IS NOT NULL, a.name, a.agent_id""",
        site_id,
    )
    return rows


async def agent_row(conn: asyncpg.Connection, site_id: str, agent_id: str) -> Row | None:
    return await conn.fetchrow(
        """SELECT agent_id, site_id, email, name, role, status, max_chats, deactivated_at
           FROM chat.agents WHERE site_id = $1 AND agent_id = $2 FOR UPDATE""",
        site_id,
        agent_id,
    )


async def email_site(conn: asyncpg.Connection, email: str) -> str | None:
    """The site whose agent has this (normalised) address, if any (addresses are unique
    across sites: an agent logs in with the address alone)."""
    site_id: str | None = await conn.fetchval(
        "SELECT site_id FROM chat.agents WHERE email = $1", email
    )
    return site_id


async def agent_id_taken(conn: asyncpg.Connection, agent_id: str) -> bool:
    found = await conn.fetchval("SELECT 1 FROM chat.agents WHERE agent_id = $1", agent_id)
    return found is not None


async def insert_agent(
    conn: asyncpg.Connection,
    *,
    site_id: str,
    agent_id: str,
    email: str,
    name: str,
    role: str,
    max_chats: int,
) -> None:
    """A new agent who cannot log in until they set a password ('!' is no argon2 hash)."""
    await conn.execute(
        """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name, role, max_chats)
           VALUES ($1, $2, $3, '!', $4, $5, $6)""",
        agent_id,
        site_id,
        email,
        name,
        role,
        max_chats,
    )


async def update_agent(
    conn: asyncpg.Connection,
    site_id: str,
    agent_id: str,
    *,
    name: str | None,
    role: str | None,
    max_chats: int | None,
    avatar_url: str | None = None,
) -> None:
    """Change what is given (None: unchanged; an empty avatar_url removes the picture)."""
    await conn.execute(
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


async def active_admins(conn: asyncpg.Connection, site_id: str) -> set[str]:
    rows = await conn.fetch(
        """SELECT agent_id FROM chat.agents
           WHERE site_id = $1 AND role = 'admin' AND deactivated_at IS NULL""",
        site_id,
    )
    return {row["agent_id"] for row in rows}


async def deactivate(conn: asyncpg.Connection, site_id: str, agent_id: str, now: datetime) -> None:
    """No login (the hash can never verify), sessions ended, offline, out of every team, open
    invites void."""
    await conn.execute(
        """UPDATE chat.agents SET deactivated_at = $3, status = 'offline', password_hash = '!',
                                  session_version = session_version + 1
           WHERE site_id = $1 AND agent_id = $2""",
        site_id,
        agent_id,
        now,
    )
    await conn.execute(
        "DELETE FROM chat.team_members WHERE site_id = $1 AND agent_id = $2", site_id, agent_id
    )
    await conn.execute(
        "UPDATE chat.agent_invites SET used_at = $2 WHERE agent_id = $1 AND used_at IS NULL",
        agent_id,
        now,
    )


async def insert_invite(
    conn: asyncpg.Connection,
    *,
    token_hash: bytes,
    site_id: str,
    agent_id: str,
    created_by: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    """A new invitation; the agent's earlier ones stop working."""
    await conn.execute(
        "UPDATE chat.agent_invites SET used_at = $2 WHERE agent_id = $1 AND used_at IS NULL",
        agent_id,
        now,
    )
    await conn.execute(
        """INSERT INTO chat.agent_invites (token_hash, site_id, agent_id, created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5)""",
        token_hash,
        site_id,
        agent_id,
        created_by,
        expires_at,
    )


async def invite_is_open(conn: asyncpg.Connection, token_hash: bytes, now: datetime) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT 1 FROM chat.agent_invites
               WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2""",
            token_hash,
            now,
        )
    )


async def take_invite(conn: asyncpg.Connection, token_hash: bytes, now: datetime) -> Row | None:
    """Use an invitation once: the row (site, agent) if it was unused and unexpired."""
    return await conn.fetchrow(
        """UPDATE chat.agent_invites SET used_at = $2
           WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
           RETURNING site_id, agent_id""",
        token_hash,
        now,
    )


async def set_password(
    conn: asyncpg.Connection, site_id: str, agent_id: str, password_hash: str
) -> Row | None:
    """A new password (reactivating a deactivated agent) ends the agent's earlier sessions."""
    return await conn.fetchrow(
        """UPDATE chat.agents SET password_hash = $3, deactivated_at = NULL,
                                  session_version = session_version + 1
           WHERE site_id = $1 AND agent_id = $2 RETURNING email, name""",
        site_id,
        agent_id,
        password_hash,
    )


# --- site settings -------------------------------------------------------------------------


_SITE = """SELECT site_id, name, site_key, write_key, allowed_origins, settings, config_version
           FROM chat.sites"""


async def site(conn: asyncpg.Connection, site_id: str) -> Row | None:
    return await conn.fetchrow(_SITE + " WHERE site_id = $1", site_id)


async def update_site(
    conn: asyncpg.Connection,
    site_id: str,
    *,
    allowed_origins: list[str] | None,
    settings_patch: dict[str, Any],
) -> None:
    """Merge keys into the settings (a null value removes its key) and/or set the origins;
    the site's configuration gets a new version (`publish_site` sends it)."""
    await conn.execute(
        """UPDATE chat.sites
           SET allowed_origins = coalesce($2, allowed_origins),
               settings = jsonb_strip_nulls(settings || $3::jsonb),
               config_version = config_version + 1
           WHERE site_id = $1""",
        site_id,
        allowed_origins,
        orjson.dumps(settings_patch).decode(),
    )


def settings_of(row: Row) -> dict[str, Any]:
    settings = row["settings"]
    parsed = orjson.loads(settings) if isinstance(settings, str | bytes) else (settings or {})
    return dict(parsed)


async def publish_site(conn: asyncpg.Connection, site_id: str) -> None:
    """Put the site's whole configuration in the outbox for `sites.config` (key `site_id`),
    in the caller's transaction: the change and its record are one unit."""
    row = await site(conn, site_id)
    if row is None:
        return
    config = domain.site_config(
        site_id=row["site_id"],
        version=row["config_version"],
        site_key=row["site_key"],
        write_key=row["write_key"],
        allowed_origins=row["allowed_origins"],
        settings=settings_of(row),
    )
    record = site_record(config).model_dump_json().encode()
    await store.add_outbox(conn, [OutboxRecord(SITES_CONFIG.name, config_key(site_id), record)])


async def site_versions(conn: asyncpg.Connection) -> dict[str, int]:
    """Every site's configuration version."""
    rows = await conn.fetch("SELECT site_id, config_version FROM chat.sites")
    return {row["site_id"]: row["config_version"] for row in rows}
