"""Postgres access for conversations: asyncpg, `$n` parameters, every query scoped by site.

`ConversationStore` works on the connection of a unit of work (`tx.store(ConversationStore)`),
so the caller's unit decides the transaction and the lock; the methods that change assignment
expect the site's assignment lock to be held (`uow(site_id, lock=True)`). The few queries other
packages share (a conversation by id, an agent, a site) stay in `chat.adapters.store` and are
reached here by the same names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from chat.adapters import store
from chat.adapters.store import CONVERSATION_SELECT, Row
from chat.conversations.model import AgentLoad
from chat.refs import Visitor

_MESSAGE = """
SELECT m.message_id, m.conversation_id, m.seq, m.author, m.agent_id, m.text, m.client_id,
       m.created_at, m.channel, m.attachments, a.name AS agent_name,
       a.avatar_url AS agent_avatar_url
FROM chat.messages m LEFT JOIN chat.agents a ON a.agent_id = m.agent_id
"""

# transfers are for agents only, like notes: never in chat.events or the widget
_TRANSFER = """
SELECT t.transfer_id, t.conversation_id, t.by_agent_id, t.from_agent_id, t.to_agent_id,
       t.to_team, t.target, t.note, t.created_at,
       b.name AS by_name, b.avatar_url AS by_avatar_url,
       f.name AS from_name, f.avatar_url AS from_avatar_url,
       o.name AS to_name, o.avatar_url AS to_avatar_url,
       tm.name AS to_team_name
FROM chat.transfers t
LEFT JOIN chat.agents b ON b.agent_id = t.by_agent_id
LEFT JOIN chat.agents f ON f.agent_id = t.from_agent_id
LEFT JOIN chat.agents o ON o.agent_id = t.to_agent_id
LEFT JOIN chat.teams tm ON tm.site_id = t.site_id AND tm.team = t.to_team
"""


# What a widget reaches: the conversations its browser credential started, and those of the
# user the store vouched for (a valid identity hash). Never all of a visitor id's: the id is
# in a cookie any script on the store can read.
_REACHES = """c.site_id = $1 AND ((c.visitor_id = $2 AND c.credential_id = $3)
    OR ($4::text IS NOT NULL AND c.user_id = $4))"""


def _reach(visitor: Visitor) -> tuple[str, str, UUID | None, str | None]:
    return visitor.site_id, visitor.visitor_id, visitor.credential_id, visitor.user_id


class ConversationStore:
    """The conversation queries on one unit of work's connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- shared with other packages (chat.adapters.store) ---------------------------------

    async def conversation(self, site_id: str, conversation_id: UUID) -> Row | None:
        return await store.conversation(self.conn, site_id, conversation_id)

    async def conversations(self, site_id: str, conversation_ids: list[UUID]) -> list[Row]:
        return await store.conversations(self.conn, site_id, conversation_ids)

    async def lock_conversation(self, site_id: str, conversation_id: UUID) -> Row | None:
        return await store.lock_conversation(self.conn, site_id, conversation_id)

    async def live_conversation(self, site_id: str, visitor_id: str) -> Row | None:
        return await store.live_conversation(self.conn, site_id, visitor_id)

    async def agent(self, site_id: str, agent_id: str) -> Row | None:
        return await store.agent(self.conn, site_id, agent_id)

    async def site_by_id(self, site_id: str) -> Row | None:
        return await store.site_by_id(self.conn, site_id)

    async def team_exists(self, site_id: str, team: str) -> bool:
        return await store.team_exists(self.conn, site_id, team)

    async def notes(self, site_id: str, conversation_id: UUID) -> list[Row]:
        return await store.notes(self.conn, site_id, conversation_id)

    async def insert_invitation(self, values: dict[str, Any]) -> bool:
        return await store.insert_invitation(self.conn, values)

    # --- sites, teams and agents as conversations need them --------------------------------

    async def site_by_key(self, site_key: str) -> Row | None:
        return await self.conn.fetchrow("SELECT * FROM chat.sites WHERE site_key = $1", site_key)

    async def online_agents(self, site_id: str, team: str) -> int:
        count: int = await self.conn.fetchval(
            """SELECT count(*) FROM chat.agents a JOIN chat.team_members m USING (agent_id)
               WHERE m.site_id = $1 AND m.team = $2 AND a.status = 'online'""",
            site_id,
            team,
        )
        return count

    async def team_loads(self, site_id: str, team: str) -> list[AgentLoad]:
        rows = await self.conn.fetch(
            """SELECT a.agent_id, a.status, a.max_chats, a.last_assigned_at,
                      (SELECT count(*) FROM chat.conversations c
                       WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats
               FROM chat.agents a JOIN chat.team_members m USING (agent_id)
               WHERE m.site_id = $1 AND m.team = $2""",
            site_id,
            team,
        )
        return [
            AgentLoad(
                r["agent_id"], r["status"], r["open_chats"], r["max_chats"], r["last_assigned_at"]
            )
            for r in rows
        ]

    async def agent_teams(self, agent_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT team FROM chat.team_members WHERE agent_id = $1 ORDER BY team", agent_id
        )
        return [row["team"] for row in rows]

    async def set_team(self, conversation_id: UUID, team: str) -> None:
        await self.conn.execute(
            "UPDATE chat.conversations SET team = $2 WHERE conversation_id = $1",
            conversation_id,
            team,
        )

    # --- browser credentials ----------------------------------------------------------------

    async def credential(self, site_id: str, visitor_id: str, secret_hash: bytes) -> Row | None:
        """The credential of this hash, if it was issued to this visitor of this site."""
        return await self.conn.fetchrow(
            """UPDATE chat.visitor_credentials SET last_used_at = now()
               WHERE secret_hash = $3 AND site_id = $1 AND visitor_id = $2
               RETURNING credential_id, user_id""",
            site_id,
            visitor_id,
            secret_hash,
        )

    async def insert_credential(
        self, credential_id: UUID, site_id: str, visitor_id: str, secret_hash: bytes
    ) -> None:
        await self.conn.execute(
            """INSERT INTO chat.visitor_credentials
                   (credential_id, site_id, visitor_id, secret_hash) VALUES ($1, $2, $3, $4)""",
            credential_id,
            site_id,
            visitor_id,
            secret_hash,
        )

    async def set_credential_user(self, credential_id: UUID, user_id: str | None) -> None:
        await self.conn.execute(
            "UPDATE chat.visitor_credentials SET user_id = $2 WHERE credential_id = $1",
            credential_id,
            user_id,
        )

    # --- conversations ----------------------------------------------------------------------

    async def latest_conversation(self, visitor: Visitor) -> Row | None:
        """The live conversation the visitor reaches, else the most recent one (its history
        stays visible)."""
        return await self.conn.fetchrow(
            CONVERSATION_SELECT + " WHERE " + _REACHES + " AND c.status <> 'offline'"
            " ORDER BY (c.status IN ('queued', 'open')) DESC, c.created_at DESC LIMIT 1",
            *_reach(visitor),
        )

    async def visitor_live_conversation(self, visitor: Visitor) -> Row | None:
        """The live conversation this browser (or verified user) reaches, if any."""
        return await self.conn.fetchrow(
            CONVERSATION_SELECT + " WHERE " + _REACHES + " AND c.status IN ('queued', 'open')"
            " ORDER BY c.created_at DESC LIMIT 1",
            *_reach(visitor),
        )

    async def insert_conversation(
        self,
        *,
        conversation_id: UUID,
        site_id: str,
        visitor_id: str,
        team: str,
        status: str,
        invitation_id: UUID | None,
        rule_id: str | None,
        email: str | None,
        credential_id: UUID | None = None,
        user_id: str | None = None,
    ) -> bool:
        """False when the browser already has a live conversation (the unique index says
        so)."""
        inserted = await self.conn.fetchval(
            # clock_timestamp, not now(): the queue's arrival order is when the row was written
            # under the site lock, not when its transaction began waiting for it
            """INSERT INTO chat.conversations (conversation_id, site_id, visitor_id, team, status,
                   invitation_id, rule_id, email, credential_id, user_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock_timestamp())
               ON CONFLICT (site_id, visitor_id, credential_id) WHERE status IN ('queued', 'open')
               DO NOTHING
               RETURNING 1""",
            conversation_id,
            site_id,
            visitor_id,
            team,
            status,
            invitation_id,
            rule_id,
            email,
            credential_id,
            user_id,
        )
        return inserted is not None

    async def assign(self, conversation_id: UUID, agent_id: str, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE chat.conversations SET status = 'open', agent_id = $2, assigned_at = $3
               WHERE conversation_id = $1""",
            conversation_id,
            agent_id,
            now,
        )
        await self.conn.execute(
            "UPDATE chat.agents SET last_assigned_at = $2 WHERE agent_id = $1", agent_id, now
        )

    # --- assignment history (written with the conversation's row, under the site lock) ------

    async def start_assignment(
        self,
        *,
        conversation_id: UUID,
        site_id: str,
        agent_id: str,
        team: str,
        how: str,
        now: datetime,
    ) -> None:
        """The agent's stint on the conversation begins; whoever held it before stops now (an
        agent given a conversation they already hold keeps their stint)."""
        current = await self.conn.fetchval(
            """SELECT agent_id FROM chat.assignments
               WHERE conversation_id = $1 AND ended_at IS NULL""",
            conversation_id,
        )
        if current == agent_id:
            return
        await self.end_assignment(conversation_id, now, "transfer")
        await self.conn.execute(
            """INSERT INTO chat.assignments
                   (conversation_id, site_id, agent_id, team, how, started_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            conversation_id,
            site_id,
            agent_id,
            team,
            how,
            now,
        )

    async def end_assignment(self, conversation_id: UUID, now: datetime, how: str) -> None:
        """The current holder's stint ends (transfer, requeue or close); nothing when none."""
        await self.conn.execute(
            """UPDATE chat.assignments SET ended_at = greatest($2, started_at), ended_how = $3
               WHERE conversation_id = $1 AND ended_at IS NULL""",
            conversation_id,
            now,
            how,
        )

    async def requeue(self, conversation_id: UUID, team: str) -> None:
        await self.conn.execute(
            """UPDATE chat.conversations SET status = 'queued', agent_id = NULL, team = $2
               WHERE conversation_id = $1""",
            conversation_id,
            team,
        )

    async def oldest_queued(self, site_id: str, team: str) -> Row | None:
        return await self.conn.fetchrow(
            """SELECT * FROM chat.conversations
               WHERE site_id = $1 AND team = $2 AND status = 'queued'
               ORDER BY created_at, conversation_id LIMIT 1 FOR UPDATE""",
            site_id,
            team,
        )

    async def conversation_site(self, conversation_id: UUID) -> str | None:
        """The site of a conversation, whichever it is: only to tell a command naming another
        site's conversation (refused) from one naming none."""
        site_id: str | None = await self.conn.fetchval(
            "SELECT site_id FROM chat.conversations WHERE conversation_id = $1", conversation_id
        )
        return site_id

    async def reopen(self, conversation_id: UUID) -> None:
        """A closed conversation waits in its team's queue again (nobody holds it)."""
        await self.conn.execute(
            """UPDATE chat.conversations SET status = 'queued', agent_id = NULL, closed_at = NULL
               WHERE conversation_id = $1""",
            conversation_id,
        )

    async def close(self, conversation_id: UUID, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE chat.conversations SET status = 'closed', closed_at = $2
               WHERE conversation_id = $1""",
            conversation_id,
            now,
        )

    async def set_tags(self, conversation_id: UUID, tags: list[str]) -> None:
        await self.conn.execute(
            "UPDATE chat.conversations SET tags = $2 WHERE conversation_id = $1",
            conversation_id,
            tags,
        )

    async def remember_tags(self, site_id: str, tags: list[str]) -> None:
        """Tags put on a conversation join the site's list (as topics) when they are new."""
        if tags:
            await self.conn.executemany(
                """INSERT INTO chat.tags (site_id, tag, label, kind) VALUES ($1, $2, $2, 'topic')
                   ON CONFLICT (site_id, tag) DO NOTHING""",
                [(site_id, tag) for tag in tags],
            )

    async def set_email(
        self,
        site_id: str,
        visitor_id: str,
        conversation_id: UUID | None,
        email: str,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO chat.visitors (site_id, visitor_id, email) VALUES ($1, $2, $3)
               ON CONFLICT (site_id, visitor_id) DO UPDATE SET email = EXCLUDED.email""",
            site_id,
            visitor_id,
            email,
        )
        if conversation_id is not None:
            await self.conn.execute(
                "UPDATE chat.conversations SET email = $2 WHERE conversation_id = $1",
                conversation_id,
                email,
            )

    async def conversations_for_agent(self, site_id: str, agent_id: str, scope: str) -> list[Row]:
        if scope == "queue":
            where = (
                " WHERE c.site_id = $1 AND c.status = 'queued' AND c.team IN"
                " (SELECT team FROM chat.team_members WHERE agent_id = $2)"
                " ORDER BY c.created_at, c.conversation_id"
            )
        elif scope == "mine":
            where = (
                " WHERE c.site_id = $1 AND c.agent_id = $2 AND c.status = 'open'"
                " ORDER BY c.created_at"
            )
        else:
            where = (
                " WHERE c.site_id = $1 AND ($2::text IS NOT NULL)"
                " ORDER BY c.created_at DESC LIMIT 200"
            )
        rows: list[Row] = await self.conn.fetch(CONVERSATION_SELECT + where, site_id, agent_id)
        return rows

    # --- messages ---------------------------------------------------------------------------

    async def message_by_client_id(
        self, conversation_id: UUID, author: str, client_id: str
    ) -> Row | None:
        return await self.conn.fetchrow(
            _MESSAGE + " WHERE m.conversation_id = $1 AND m.author = $2 AND m.client_id = $3",
            conversation_id,
            author,
            client_id,
        )

    async def message_by_command(self, conversation_id: UUID, command_id: UUID) -> Row | None:
        """The message a `chat.inbound` command added (None: not applied yet)."""
        return await self.conn.fetchrow(
            _MESSAGE + " WHERE m.conversation_id = $1 AND m.command_id = $2",
            conversation_id,
            command_id,
        )

    async def message(self, site_id: str, conversation_id: UUID, message_id: UUID) -> Row | None:
        return await self.conn.fetchrow(
            _MESSAGE + " JOIN chat.conversations c ON c.conversation_id = m.conversation_id"
            " WHERE c.site_id = $1 AND m.conversation_id = $2 AND m.message_id = $3",
            site_id,
            conversation_id,
            message_id,
        )

    async def insert_message(
        self,
        *,
        message_id: UUID,
        conversation_id: UUID,
        author: str,
        agent_id: str | None,
        text: str,
        client_id: str | None,
        now: datetime,
        channel: str = "chat",
        attachments: list[dict[str, Any]] | None = None,
        command_id: UUID | None = None,
    ) -> int:
        """Store the next message of a locked conversation; returns its seq."""
        seq: int = await self.conn.fetchval(
            """UPDATE chat.conversations SET last_seq = last_seq + 1
               WHERE conversation_id = $1 RETURNING last_seq""",
            conversation_id,
        )
        await self.conn.execute(
            """INSERT INTO chat.messages (message_id, conversation_id, seq, author, agent_id,
                   text, client_id, created_at, channel, attachments, command_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)""",
            message_id,
            conversation_id,
            seq,
            author,
            agent_id,
            text,
            client_id,
            now,
            channel,
            orjson.dumps(attachments or []).decode(),
            command_id,
        )
        return seq

    async def seen_state(self, visitor: Visitor, conversation_id: UUID) -> Row | None:
        """(last_seq, seen_seq) of a conversation the visitor reaches (None: not theirs)."""
        return await self.conn.fetchrow(
            "SELECT c.last_seq, c.seen_seq FROM chat.conversations c WHERE "
            + _REACHES
            + " AND c.conversation_id = $5",
            *_reach(visitor),
            conversation_id,
        )

    async def mark_seen(self, conversation_id: UUID, seq: int) -> bool:
        """Raise what the visitor has seen to `seq`: False when it was that high already."""
        done = await self.conn.fetchval(
            """UPDATE chat.conversations SET seen_seq = $2
               WHERE conversation_id = $1 AND seen_seq < $2 RETURNING 1""",
            conversation_id,
            seq,
        )
        return done is not None

    async def messages(
        self, conversation_id: UUID, after_seq: int = 0, limit: int = 500
    ) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(
            _MESSAGE + " WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            conversation_id,
            after_seq,
            limit,
        )
        return rows

    async def last_messages(self, conversation_ids: list[UUID]) -> dict[UUID, Row]:
        rows = await self.conn.fetch(
            _MESSAGE + " WHERE (m.conversation_id, m.seq) IN"
            " (SELECT conversation_id, last_seq FROM chat.conversations"
            "  WHERE conversation_id = ANY($1::uuid[]))",
            conversation_ids,
        )
        return {row["conversation_id"]: row for row in rows}

    # --- transfers --------------------------------------------------------------------------

    async def insert_transfer(
        self,
        *,
        transfer_id: UUID,
        conversation_id: UUID,
        site_id: str,
        by_agent_id: str,
        from_agent_id: str | None,
        to_agent_id: str | None,
        to_team: str,
        target: str,
        note: str | None,
        now: datetime,
    ) -> Row:
        await self.conn.execute(
            """INSERT INTO chat.transfers (transfer_id, conversation_id, site_id, by_agent_id,
                   from_agent_id, to_agent_id, to_team, target, note, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            transfer_id,
            conversation_id,
            site_id,
            by_agent_id,
            from_agent_id,
            to_agent_id,
            to_team,
            target,
            note,
            now,
        )
        return await self.conn.fetchrow(_TRANSFER + " WHERE t.transfer_id = $1", transfer_id)

    async def transfers(self, site_id: str, conversation_id: UUID) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(
            _TRANSFER + " WHERE t.site_id = $1 AND t.conversation_id = $2"
            " ORDER BY t.created_at, t.transfer_id LIMIT 500",
            site_id,
            conversation_id,
        )
        return rows

    # --- invitations ------------------------------------------------------------------------

    async def invitation(self, site_id: str, visitor_id: str, invitation_id: UUID) -> Row | None:
        return await self.conn.fetchrow(
            """SELECT * FROM chat.invitations
               WHERE site_id = $1 AND visitor_id = $2 AND invitation_id = $3""",
            site_id,
            visitor_id,
            invitation_id,
        )

    async def set_invitation_status(
        self, invitation_id: UUID, status: str, allowed_from: tuple[str, ...]
    ) -> bool:
        """Move an invitation forward; False when it already was (the answer is idempotent)."""
        changed = await self.conn.fetchval(
            """UPDATE chat.invitations SET status = $2
               WHERE invitation_id = $1 AND status = ANY($3::text[]) RETURNING 1""",
            invitation_id,
            status,
            list(allowed_from),
        )
        return changed is not None

    async def pending_invitations(self, site_id: str, visitor_id: str, now: datetime) -> list[Row]:
        rows: list[Row] = await self.conn.fetch(
            """SELECT * FROM chat.invitations
               WHERE site_id = $1 AND visitor_id = $2 AND expires_at > $3
                 AND status IN ('issued', 'shown')
               ORDER BY created_at DESC LIMIT 3""",
            site_id,
            visitor_id,
            now,
        )
        return rows
