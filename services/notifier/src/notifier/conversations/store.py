"""What the notifier keeps of chat's conversations (from `chat.events`): the visitor's
captured address, language, how far they saw it, and its messages (agents' notes never
reach the topic). Writes are idempotent upserts, so a replayed fact changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: UUID
    site_id: str
    visitor_id: str
    team: str | None
    email: str | None
    visitor_name: str | None
    language: str
    offline: bool
    seen_seq: int
    emailed_seq: int
    closed_at: datetime | None
    first_email_id: str | None
    last_email_id: str | None

    @classmethod
    def of(cls, row: Any) -> Conversation:
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Line:
    """One message of the conversation as e-mails show it."""

    seq: int
    author: str
    author_name: str | None
    agent_avatar_url: str | None
    text: str
    channel: str
    sent_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "author": self.author,
            "author_name": self.author_name,
            "agent_avatar_url": self.agent_avatar_url,
            "text": self.text,
            "channel": self.channel,
            "sent_at": self.sent_at.isoformat(),
        }


_COLUMNS = ", ".join(Conversation.__slots__)  # type: ignore[attr-defined]


class ConversationStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def upsert(
        self,
        *,
        conversation_id: UUID,
        site_id: str,
        visitor_id: str,
        team: str | None = None,
        language: str | None = None,
        email: str | None = None,
        visitor_name: str | None = None,
        offline_text: str | None = None,
        captured: bool = False,
    ) -> None:
        """Make the conversation known, filling what this fact tells (never blanking what
        an earlier one told). An address replaces the one held only when this fact is its
        capture (`captured`: the visitor gave it now); others fill it only when none is held."""
        await self.conn.execute(
            """INSERT INTO notifier.conversations AS c
                   (conversation_id, site_id, visitor_id, team, language, email, visitor_name,
                    offline, offline_text)
               VALUES ($1, $2, $3, $4, coalesce($5, 'en'), $6, $7, $8::text IS NOT NULL, $8::text)
               ON CONFLICT (conversation_id) DO UPDATE SET
                   team = coalesce(excluded.team, c.team),
                   language = coalesce($5, c.language),
                   email = CASE WHEN $9 THEN coalesce(excluded.email, c.email)
                                ELSE coalesce(c.email, excluded.email) END,
                   visitor_name = coalesce(excluded.visitor_name, c.visitor_name),
                   offline = c.offline OR excluded.offline,
                   offline_text = coalesce(excluded.offline_text, c.offline_text)
               WHERE c.site_id = excluded.site_id""",
            conversation_id,
            site_id,
            visitor_id,
            team,
            language,
            email,
            visitor_name,
            offline_text,
            captured,
        )

    async def get(
        self, site_id: str, conversation_id: UUID, *, lock: bool = False
    ) -> Conversation | None:
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM notifier.conversations "  # noqa: S608
            "WHERE conversation_id = $1 AND site_id = $2" + (" FOR UPDATE" if lock else ""),
            conversation_id,
            site_id,
        )
        return Conversation.of(row) if row is not None else None

    async def find(self, conversation_id: UUID) -> Conversation | None:
        """By id alone (an inbound reply's token names only the conversation)."""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM notifier.conversations WHERE conversation_id = $1",  # noqa: S608
            conversation_id,
        )
        return Conversation.of(row) if row is not None else None

    async def message(
        self, site_id: str, conversation_id: UUID, visitor_id: str, line: Line
    ) -> tuple[Conversation | None, str | None]:
        """`upsert` (the conversation made known) and `add_message` in one statement: the
        conversation as it is after the line (None: another site's conversation id; nothing
        is added) and how the visitor's latest earlier message came (chat, email, None)."""
        row = await self.conn.fetchrow(
            f"""WITH ours AS (
                    INSERT INTO notifier.conversations AS c
                        (conversation_id, site_id, visitor_id, language, offline)
                    VALUES ($1, $9, $10, 'en', false)
                    ON CONFLICT (conversation_id) DO UPDATE SET
                        -- a line after the close makes the conversation live again
                        closed_at = CASE WHEN c.closed_at < $8 THEN NULL ELSE c.closed_at END
                    WHERE c.site_id = excluded.site_id
                    RETURNING {_COLUMNS}),
                added AS (
                    INSERT INTO notifier.messages
                        (conversation_id, seq, author, author_name, agent_avatar_url, text,
                         channel, sent_at)
                    SELECT conversation_id, $2, $3, $4, $5, $6, $7, $8 FROM ours
                    ON CONFLICT (conversation_id, seq) DO NOTHING)
                SELECT ours.*,
                       (SELECT m.channel FROM notifier.messages m
                        WHERE m.conversation_id = $1 AND m.author = 'visitor'
                        ORDER BY m.seq DESC LIMIT 1) AS last_visitor_channel
                FROM ours""",  # noqa: S608
            conversation_id,
            line.seq,
            line.author,
            line.author_name,
            line.agent_avatar_url,
            line.text,
            line.channel,
            line.sent_at,
            site_id,
            visitor_id,
        )
        if row is None:
            return None, None
        return Conversation.of(row), row["last_visitor_channel"]

    async def seen(self, conversation_id: UUID, up_to_seq: int) -> None:
        await self.conn.execute(
            """UPDATE notifier.conversations SET seen_seq = greatest(seen_seq, $2)
               WHERE conversation_id = $1""",
            conversation_id,
            up_to_seq,
        )

    async def close(
        self,
        *,
        conversation_id: UUID,
        site_id: str,
        visitor_id: str,
        team: str | None,
        email: str | None,
        at: datetime,
    ) -> Conversation | None:
        """`upsert` with what the close tells and `closed` in one statement: closed at `at`
        (the first close stands), the conversation as it is now, its row locked until the
        transaction ends (None: another site's conversation id; nothing changes)."""
        row = await self.conn.fetchrow(
            f"""INSERT INTO notifier.conversations AS c
                    (conversation_id, site_id, visitor_id, team, language, email, offline,
                     closed_at)
                VALUES ($1, $2, $3, $4, 'en', $5, false, $6)
                ON CONFLICT (conversation_id) DO UPDATE SET
                    team = coalesce(excluded.team, c.team),
                    email = coalesce(c.email, excluded.email),
                    closed_at = coalesce(c.closed_at, excluded.closed_at)
                WHERE c.site_id = excluded.site_id
                RETURNING {_COLUMNS}""",  # noqa: S608
            conversation_id,
            site_id,
            visitor_id,
            team,
            email,
            at,
        )
        return Conversation.of(row) if row is not None else None

    async def transcript_lines(self, conversation_id: UUID) -> list[Line]:
        """Every line, for the transcript; the unread-messages e-mail still waiting is
        cancelled in the same statement (the transcript says it all)."""
        rows = await self.conn.fetch(
            """WITH cancelled AS (
                   UPDATE notifier.emails SET status = 'cancelled', reason = 'in_transcript'
                   WHERE conversation_id = $1 AND template = 'unread_messages'
                     AND status = 'scheduled')
               SELECT seq, author, author_name, agent_avatar_url, text, channel, sent_at
               FROM notifier.messages WHERE conversation_id = $1 ORDER BY seq""",
            conversation_id,
        )
        return [Line(**dict(row)) for row in rows]

    async def lines(
        self, conversation_id: UUID, *, after_seq: int = 0, author: str | None = None
    ) -> list[Line]:
        rows = await self.conn.fetch(
            """SELECT seq, author, author_name, agent_avatar_url, text, channel, sent_at
               FROM notifier.messages
               WHERE conversation_id = $1 AND seq > $2 AND ($3::text IS NULL OR author = $3)
               ORDER BY seq""",
            conversation_id,
            after_seq,
            author,
        )
        return [Line(**dict(row)) for row in rows]

    async def emailed(
        self, conversation_id: UUID, *, up_to_seq: int | None, message_id: str
    ) -> None:
        """An e-mail of the conversation went out (its agents' messages up to `up_to_seq`):
        the thread's next e-mail answers this one."""
        await self.conn.execute(
            """UPDATE notifier.conversations SET
                   emailed_seq = greatest(emailed_seq, coalesce($2, 0)),
                   first_email_id = coalesce(first_email_id, $3),
                   last_email_id = $3
               WHERE conversation_id = $1""",
            conversation_id,
            up_to_seq,
            message_id,
        )
