"""The chat use cases: each one transaction that changes rows and writes its facts to the
outbox, so a committed change is always published (at least once, in order per conversation).

Assignment changes (start, pick-up, transfer, close, status) hold the site's assignment lock,
so concurrent requests on any number of instances never put an agent above their limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from beckon_contracts.ids import uuid7
from opentelemetry import trace

from chat import views
from chat.adapters import store
from chat.adapters.sites import SiteCache
from chat.agents.sessions import Sessions
from chat.conversations import assignment
from chat.domain.login import normalise_email
from chat.errors import NotAuthenticated, NotFound
from chat.refs import AgentRef, now_utc
from chat.uow import UnitOfWork as _Tx
from chat.uow import UnitOfWorkFactory

_hasher = PasswordHasher()
# verifying against a real hash keeps a wrong e-mail as slow as a wrong password
_DUMMY_HASH = _hasher.hash("beckon-not-a-password")
tracer = trace.get_tracer("chat")


class ChatService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_message_chars: int,
        on_commit: Callable[[], None],
        on_agents_changed: Callable[[str, Iterable[str]], Awaitable[None]],
    ) -> None:
        self.pool = pool
        self.uow = UnitOfWorkFactory(pool, on_commit=on_commit, on_agents_changed=on_agents_changed)
        self.max_message_chars = max_message_chars
        self.sites = SiteCache(self.uow)
        self.sessions = Sessions(self.uow)

    async def _committed(self, tx: _Tx) -> None:
        await self.uow.committed(tx)

    # _agent_teams, _locked and _agent_row serve the methods not moved yet (conversations has
    # its own in chat.conversations.service); they go with this class.
    async def _agent_teams(self, conn: asyncpg.Connection, agent_id: str) -> list[str]:
        rows = await conn.fetch("SELECT team FROM chat.team_members WHERE agent_id = $1", agent_id)
        return [row["team"] for row in rows]

    # --- agents -----------------------------------------------------------------------------

    async def login(self, email: str, password: str) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            row = await store.agent_by_email(conn, normalise_email(email))
        try:
            _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            raise NotAuthenticated("bad_credentials", "wrong e-mail or password")
        return row

    async def agent(self, ref: AgentRef) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            row = await store.agent(conn, ref.site_id, ref.agent_id)
        if row is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        return views.agent(row)

    async def me(self, ref: AgentRef) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            row = await store.agent(conn, ref.site_id, ref.agent_id)
            if row is None:
                raise NotAuthenticated("unknown_agent", "log in again")
            site = await store.site_by_id(conn, ref.site_id)
            teams = await store.teams(conn, ref.site_id)
        assert site is not None
        return {
            "agent": views.agent(row),
            "site": views.site(site),
            "teams": [{"team": t["team"], "name": t["name"]} for t in teams],
        }

    async def set_status(self, ref: AgentRef, status: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_site(conn, ref.site_id)
            tx = _Tx(conn, ref.site_id)
            await store.set_agent_status(conn, ref.site_id, ref.agent_id, status, now_utc())
            await tx.agent_changed(ref.agent_id)
            if status == "online":
                await assignment.drain_queues(tx, await self._agent_teams(conn, ref.agent_id))
            await tx.finish()
            row = await store.agent(conn, ref.site_id, ref.agent_id)
        await self._committed(tx)
        assert row is not None
        return views.agent(row)

    async def set_preferences(
        self, ref: AgentRef, *, locale: str | None, settings: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The agent's own language and console preferences (notifications, sound, …)."""
        async with self.pool.acquire() as conn:
            await store.set_agent_preferences(
                conn,
                ref.site_id,
                ref.agent_id,
                locale,
                orjson.dumps(settings).decode() if settings is not None else None,
            )
            row = await store.agent(conn, ref.site_id, ref.agent_id)
        if row is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        return views.agent(row)

    async def heartbeat(self, ref: AgentRef) -> None:
        async with self.pool.acquire() as conn:
            await store.touch_agent(conn, ref.agent_id, now_utc())

    async def sweep_absent_agents(self, older_than_s: float) -> int:
        """Agents whose console went silent go offline, and their teams' presence says so."""
        async with self.pool.acquire() as conn:
            stale = await store.stale_agents(conn, now_utc() - timedelta(seconds=older_than_s))
        for row in stale:
            async with self.pool.acquire() as conn, conn.transaction():
                await store.lock_site(conn, row["site_id"])
                tx = _Tx(conn, row["site_id"])
                await conn.execute(
                    "UPDATE chat.agents SET status = 'offline' WHERE agent_id = $1",
                    row["agent_id"],
                )
                await tx.agent_changed(row["agent_id"])
                await tx.finish()
            await self._committed(tx)
        return len(stale)

    async def add_note(self, ref: AgentRef, conversation_id: UUID, text: str) -> dict[str, Any]:
        """A private note: stored for the site's agents, and deliberately no outbox record
        (chat.events reaches the visitor's socket and the transcripts the notifier mails)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.conversation(conn, ref.site_id, conversation_id)
            if row is None:
                raise NotFound("unknown_conversation", "no such conversation")
            await self._agent_row(conn, ref)
            note = await store.insert_note(
                conn,
                note_id=uuid7(),
                conversation_id=conversation_id,
                agent_id=ref.agent_id,
                text=text,
                now=now_utc(),
            )
        return views.note(note)

    async def mark_lead(
        self, ref: AgentRef, conversation_id: UUID, *, validation: str, note: str | None
    ) -> tuple[dict[str, Any], bool]:
        """One mark per conversation (a second click updates it); `conversation.lead_marked`
        goes out in the same transaction when something changed. (mark, changed)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ref, conversation_id)
            await self._agent_row(conn, ref)
            existing = await conn.fetchrow(
                """SELECT * FROM chat.lead_marks WHERE site_id = $1 AND conversation_id = $2
                   FOR UPDATE""",
                ref.site_id,
                conversation_id,
            )
            if (
                existing is not None
                and existing["validation"] == validation
                and existing["note"] == note
                and existing["agent_id"] == ref.agent_id
            ):
                return views.lead_mark(existing), False
            mark_id = existing["mark_id"] if existing is not None else uuid7()
            mark = await conn.fetchrow(
                """INSERT INTO chat.lead_marks (mark_id, conversation_id, site_id, visitor_id,
                       agent_id, validation, note)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (site_id, conversation_id) DO UPDATE SET
                       agent_id = EXCLUDED.agent_id, validation = EXCLUDED.validation,
                       note = EXCLUDED.note, updated_at = now()
                   RETURNING *""",
                mark_id,
                conversation_id,
                ref.site_id,
                row["visitor_id"],
                ref.agent_id,
                validation,
                note,
            )
            email = row["email"] or await conn.fetchval(
                "SELECT email FROM chat.visitors WHERE site_id = $1 AND visitor_id = $2",
                ref.site_id,
                row["visitor_id"],
            )
            tx = _Tx(conn, ref.site_id)
            tx.emit(
                "conversation.lead_marked",
                row["visitor_id"],
                str(conversation_id),
                mark_id=mark["mark_id"],
                conversation_id=conversation_id,
                agent_id=ref.agent_id,
                validation=validation,
                note=note,
                email=email,
                team=row["team"],
            )
            await tx.finish()
        await self._committed(tx)
        return views.lead_mark(mark), True

    async def _locked(
        self, conn: asyncpg.Connection, ref: AgentRef, conversation_id: UUID
    ) -> asyncpg.Record:
        row = await store.lock_conversation(conn, ref.site_id, conversation_id)
        if row is None:
            raise NotFound("unknown_conversation", "no such conversation")
        return row

    async def _agent_row(self, conn: asyncpg.Connection, ref: AgentRef) -> asyncpg.Record:
        agent = await store.agent(conn, ref.site_id, ref.agent_id)
        if agent is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        return agent
