"""The chat use cases: each one transaction that changes rows and writes its facts to the
outbox, so a committed change is always published (at least once, in order per conversation).

Assignment changes (start, pick-up, transfer, close, status) hold the site's assignment lock,
so concurrent requests on any number of instances never put an agent above their limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

import asyncpg
from beckon_contracts.ids import uuid7
from opentelemetry import trace

from chat import views
from chat.adapters import store
from chat.adapters.sites import SiteCache
from chat.agents.sessions import Sessions
from chat.conversations import assignment
from chat.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from chat.refs import AgentRef, Visitor, now_utc
from chat.uow import UnitOfWork as _Tx
from chat.uow import UnitOfWorkFactory

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

    async def _agent_teams(self, conn: asyncpg.Connection, agent_id: str) -> list[str]:
        rows = await conn.fetch("SELECT team FROM chat.team_members WHERE agent_id = $1", agent_id)
        return [row["team"] for row in rows]

    async def _chosen_team(self, conn: asyncpg.Connection, site_id: str, team: str | None) -> str:
        """The team asked for, else the site's default; refused when the site has no such team."""
        if team is None:
            site = await store.site_by_id(conn, site_id)
            assert site is not None
            team = str(views.site(site)["default_team"])
        if not await store.team_exists(conn, site_id, team):
            raise Invalid("unknown_team", f"team {team!r} does not exist")
        return team

    # --- visitors ---------------------------------------------------------------------------

    async def visitor_session(self, site_key: str, visitor_id: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            site = await store.site_by_key(conn, site_key)
            if site is None:
                raise NotAuthenticated("unknown_site_key", "this site key is not known")
            info = views.site(site)
            conversation = await store.latest_conversation(conn, site["site_id"], visitor_id)
            available = await store.online_agents(conn, site["site_id"], info["default_team"])
            shown = await self._visitor_view(conn, conversation) if conversation else None
        return {
            "site_row": site,
            "site": info,
            "conversation": shown,
            "agents_available": available > 0,
        }

    async def start_conversation(
        self,
        visitor: Visitor,
        *,
        invitation_id: UUID | None,
        team: str | None,
        text: str | None,
        client_id: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """The visitor's one live conversation, created if needed; (conversation, created)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_site(conn, visitor.site_id)
            tx = _Tx(conn, visitor.site_id)
            existing = await store.live_conversation(conn, visitor.site_id, visitor.visitor_id)
            if existing is not None:
                return await self._visitor_view(conn, existing), False
            rule_id = None
            inviter: str | None = None  # the agent who invited personally, if any
            if invitation_id is not None:
                invitation = await store.invitation(
                    conn, visitor.site_id, visitor.visitor_id, invitation_id
                )
                if invitation is None:
                    raise NotFound("unknown_invitation", "no such invitation for you")
                team, rule_id = invitation["team"], invitation["rule_id"]
                tx.continue_invitation_trace(invitation, "conversation.started")
                if invitation["personal"]:
                    inviter = views.invitation_agent_id(invitation)
            team = await self._chosen_team(conn, visitor.site_id, team)
            conversation_id = uuid7()
            inserted = await store.insert_conversation(
                conn,
                conversation_id=conversation_id,
                site_id=visitor.site_id,
                visitor_id=visitor.visitor_id,
                team=team,
                status="queued",
                invitation_id=invitation_id,
                rule_id=rule_id,
                email=None,
            )
            if not inserted:  # only without the lock (never here), kept as the last guard
                existing = await store.live_conversation(conn, visitor.site_id, visitor.visitor_id)
                assert existing is not None
                return await self._visitor_view(conn, existing), False
            tx.emit(
                "conversation.started",
                visitor.visitor_id,
                str(conversation_id),
                conversation_id=conversation_id,
                team=team,
                invitation_id=invitation_id,
                rule_id=rule_id,
            )
            row = await store.lock_conversation(conn, visitor.site_id, conversation_id)
            assert row is not None
            if inviter is None or not await assignment.assign_to_inviter(tx, row, inviter):
                await assignment.try_assign(tx, row, "auto")
            tx.teams.add(team)
            if text:
                await self._add_message(
                    tx, row, author="visitor", agent=None, text=text, client_id=client_id
                )
            await tx.finish()
            created = await store.conversation(conn, visitor.site_id, conversation_id)
            assert created is not None
            shown = await self._visitor_view(conn, created)
        await self._committed(tx)
        return shown, True

    async def _opening(self, conn: asyncpg.Connection, row: asyncpg.Record) -> Any:
        """The invitation that opened the conversation (its text: the agent's first words)."""
        if row["invitation_id"] is None:
            return None
        return await store.invitation(conn, row["site_id"], row["visitor_id"], row["invitation_id"])

    async def _visitor_view(self, conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
        """The visitor's conversation as loaded whole (not in frames): with its opening line,
        so the widget shows the invitation's words as the agent's first, as the console does."""
        opening = views.opening(await self._opening(conn, row), for_agent=False)
        return {**views.conversation(row), "opening": opening}

    async def _add_message(
        self,
        tx: _Tx,
        row: asyncpg.Record,
        *,
        author: str,
        agent: asyncpg.Record | None,
        text: str,
        client_id: str | None,
    ) -> tuple[Any, bool]:
        """The message (a stored row, or what was just written, keyed alike) and whether new."""
        if client_id is not None:
            existing = await store.message_by_client_id(
                tx.conn, row["conversation_id"], author, client_id
            )
            if existing is not None:
                return existing, False
        message_id = uuid7()
        sent_at = now_utc()
        seq = await store.insert_message(
            tx.conn,
            message_id=message_id,
            conversation_id=row["conversation_id"],
            author=author,
            agent_id=agent["agent_id"] if agent else None,
            text=text,
            client_id=client_id,
            now=sent_at,
        )
        tx.emit(
            "message.sent",
            row["visitor_id"],
            str(row["conversation_id"]),
            conversation_id=row["conversation_id"],
            message_id=message_id,
            seq=seq,
            author=author,
            agent_id=agent["agent_id"] if agent else None,
            agent_name=agent["name"] if agent else None,
            agent_avatar_url=agent["avatar_url"] if agent else None,
            text=text,
            client_id=client_id,
            sent_at=sent_at,
        )
        stored = {
            "message_id": message_id,
            "conversation_id": row["conversation_id"],
            "seq": seq,
            "author": author,
            "agent_id": agent["agent_id"] if agent else None,
            "text": text,
            "client_id": client_id,
            "created_at": sent_at,
            "agent_name": agent["name"] if agent else None,
            "agent_avatar_url": agent["avatar_url"] if agent else None,
        }
        return stored, True

    async def visitor_message(
        self, visitor: Visitor, *, text: str, client_id: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            live = await store.live_conversation(conn, visitor.site_id, visitor.visitor_id)
            if live is None:
                raise Conflict("no_conversation", "start a conversation first")
            row = await store.lock_conversation(conn, visitor.site_id, live["conversation_id"])
            if row is None or row["status"] not in ("queued", "open"):
                raise Conflict("conversation_closed", "this conversation has ended")
            tx = _Tx(conn, visitor.site_id)
            stored, _ = await self._add_message(
                tx, row, author="visitor", agent=None, text=text, client_id=client_id
            )
            await tx.finish()
        await self._committed(tx)
        return views.message(stored)

    async def visitor_messages(self, visitor: Visitor, after: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            conversation = await store.latest_conversation(
                conn, visitor.site_id, visitor.visitor_id
            )
            if conversation is None:
                return []
            rows = await store.messages(conn, conversation["conversation_id"], after)
        return [views.message(row) for row in rows]

    async def visitor_hello(self, visitor: Visitor) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            conversation = await store.latest_conversation(
                conn, visitor.site_id, visitor.visitor_id
            )
            invitations = await store.pending_invitations(
                conn, visitor.site_id, visitor.visitor_id, now_utc()
            )
            shown = await self._visitor_view(conn, conversation) if conversation else None
        live = conversation is not None and conversation["status"] in ("queued", "open")
        return {
            "t": "hello",
            "conversation": shown,
            "invitations": [] if live else [views.invitation(row) for row in invitations],
        }

    async def capture_email(self, visitor: Visitor, email: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            tx = _Tx(conn, visitor.site_id)
            conversation = await store.latest_conversation(
                conn, visitor.site_id, visitor.visitor_id
            )
            conversation_id = conversation["conversation_id"] if conversation else None
            await store.set_email(conn, visitor.site_id, visitor.visitor_id, conversation_id, email)
            tx.emit(
                "conversation.email_captured",
                visitor.visitor_id,
                str(conversation_id or f"{visitor.site_id}:{visitor.visitor_id}"),
                conversation_id=conversation_id,
                email=email,
            )
            await tx.finish()
        await self._committed(tx)

    async def leave_offline_message(
        self, visitor: Visitor, *, email: str, text: str, name: str | None, team: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            tx = _Tx(conn, visitor.site_id)
            team = await self._chosen_team(conn, visitor.site_id, team)
            conversation_id = uuid7()
            await store.insert_conversation(
                conn,
                conversation_id=conversation_id,
                site_id=visitor.site_id,
                visitor_id=visitor.visitor_id,
                team=team,
                status="offline",
                invitation_id=None,
                rule_id=None,
                email=email,
            )
            await store.set_email(conn, visitor.site_id, visitor.visitor_id, None, email)
            row = await store.lock_conversation(conn, visitor.site_id, conversation_id)
            assert row is not None
            await self._add_message(
                tx, row, author="visitor", agent=None, text=text, client_id=None
            )
            tx.emit(
                "offline.message_left",
                visitor.visitor_id,
                str(conversation_id),
                conversation_id=conversation_id,
                team=team,
                email=email,
                name=name,
                text=text,
            )
            await tx.finish()
            stored = await store.conversation(conn, visitor.site_id, conversation_id)
        await self._committed(tx)
        assert stored is not None
        return views.conversation(stored)

    async def invitation_outcome(self, visitor: Visitor, invitation_id: UUID, outcome: str) -> None:
        allowed = {
            "shown": ("issued",),
            "accepted": ("issued", "shown"),
            "declined": ("issued", "shown"),
        }[outcome]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.invitation(conn, visitor.site_id, visitor.visitor_id, invitation_id)
            if row is None:
                raise NotFound("unknown_invitation", "no such invitation for you")
            if not await store.set_invitation_status(conn, invitation_id, outcome, allowed):
                return  # answered before: the first answer stands, nothing new to publish
            tx = _Tx(conn, visitor.site_id)
            tx.continue_invitation_trace(row, f"invitation.{outcome}")
            tx.emit(
                f"invitation.{outcome}",
                visitor.visitor_id,
                f"{visitor.site_id}:{visitor.visitor_id}",
                invitation_id=invitation_id,
                rule_id=row["rule_id"],
                team=row["team"],
            )
            await tx.finish()
        await self._committed(tx)

    async def record_invitation(self, values: dict[str, Any]) -> bool:
        """Keep an invitation from triggers (idempotent on its id); True when it is new."""
        async with self.pool.acquire() as conn:
            if await store.site_by_id(conn, values["site_id"]) is None:
                return False
            return await store.insert_invitation(conn, values)

    async def agent_conversations(self, ref: AgentRef, scope: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await store.conversations_for_agent(conn, ref.site_id, ref.agent_id, scope)
            last = await store.last_messages(conn, [row["conversation_id"] for row in rows])
        return [views.agent_conversation(row, last.get(row["conversation_id"])) for row in rows]

    async def agent_conversation(self, ref: AgentRef, conversation_id: UUID) -> dict[str, Any]:
        """The conversation with its timeline: the invitation that opened it, its messages,
        and, for agents only, the private notes and the transfers (each with its note)."""
        async with self.pool.acquire() as conn:
            row = await store.conversation(conn, ref.site_id, conversation_id)
            if row is None:
                raise NotFound("unknown_conversation", "no such conversation")
            rows = await store.messages(conn, conversation_id)
            notes = await store.notes(conn, ref.site_id, conversation_id)
            transfers = await store.transfers(conn, ref.site_id, conversation_id)
            opening = await self._opening(conn, row)
        return {
            "conversation": views.agent_conversation(row),
            "opening": views.opening(opening, for_agent=True),
            "messages": [views.message(m) for m in rows],
            "notes": [views.note(n) for n in notes],
            "transfers": [views.transfer(t) for t in transfers],
        }

    async def conversation_view(self, site_id: str, conversation_id: UUID) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await store.conversation(conn, site_id, conversation_id)

    async def last_message(self, conversation_id: UUID) -> asyncpg.Record | None:
        """The conversation's newest message (what an agent's list shows beside it)."""
        async with self.pool.acquire() as conn:
            return (await store.last_messages(conn, [conversation_id])).get(conversation_id)

    async def _locked(
        self, conn: asyncpg.Connection, ref: AgentRef, conversation_id: UUID
    ) -> asyncpg.Record:
        row = await store.lock_conversation(conn, ref.site_id, conversation_id)
        if row is None:
            raise NotFound("unknown_conversation", "no such conversation")
        return row

    async def agent_message(
        self, ref: AgentRef, conversation_id: UUID, *, text: str, client_id: str | None
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ref, conversation_id)
            if row["status"] != "open" or row["agent_id"] != ref.agent_id:
                raise Conflict("not_your_conversation", "pick it up before you reply")
            agent = await store.agent(conn, ref.site_id, ref.agent_id)
            tx = _Tx(conn, ref.site_id)
            stored, _ = await self._add_message(
                tx, row, author="agent", agent=agent, text=text, client_id=client_id
            )
            await tx.finish()
        await self._committed(tx)
        return views.message(stored)

    async def _agent_row(self, conn: asyncpg.Connection, ref: AgentRef) -> asyncpg.Record:
        agent = await store.agent(conn, ref.site_id, ref.agent_id)
        if agent is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        return agent

    async def pickup(self, ref: AgentRef, conversation_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_site(conn, ref.site_id)
            row = await self._locked(conn, ref, conversation_id)
            if row["status"] != "queued":
                raise Conflict("not_queued", "someone already has this conversation")
            agent = await self._agent_row(conn, ref)
            if row["team"] not in agent["teams"]:
                raise Conflict("not_in_team", f"you are not in team {row['team']!r}")
            if agent["open_chats"] >= agent["max_chats"]:
                raise Conflict("at_limit", f"you already have {agent['open_chats']} open chats")
            tx = _Tx(conn, ref.site_id)
            await assignment.assign(tx, row, ref.agent_id, "pickup")
            await tx.finish()
            updated = await store.conversation(conn, ref.site_id, conversation_id)
        await self._committed(tx)
        assert updated is not None
        return views.agent_conversation(updated)

    async def transfer(
        self,
        ref: AgentRef,
        conversation_id: UUID,
        *,
        to_agent: str | None,
        to_team: str | None,
        note: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the conversation, the transfer as the agents' timeline shows it, with its note)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_site(conn, ref.site_id)
            row = await self._locked(conn, ref, conversation_id)
            if row["status"] not in ("open", "queued"):
                raise Conflict("conversation_closed", "this conversation has ended")
            # a live chat is its agent's: only they, or an admin, hand it on (a queued one
            # is nobody's yet); team leads are admins in Beckon's roles
            if row["status"] == "open" and row["agent_id"] != ref.agent_id:
                caller = await self._agent_row(conn, ref)
                if caller["role"] != "admin":
                    raise Forbidden(
                        "transfer_not_allowed",
                        "only the agent who has this chat, or an admin, can transfer it",
                    )
            tx = _Tx(conn, ref.site_id)
            previous = row["agent_id"]
            if to_agent is not None:
                target = await store.agent(conn, ref.site_id, to_agent)
                if target is None:
                    raise NotFound("unknown_agent", "no such agent")
                if target["status"] != "online":
                    raise Conflict("agent_unavailable", f"{target['name']} is not online")
                if target["agent_id"] != previous and target["open_chats"] >= target["max_chats"]:
                    raise Conflict("at_limit", f"{target['name']} is at their limit")
                # an agent outside the conversation's team takes it into one of theirs
                teams = list(target["teams"])
                team = row["team"] if row["team"] in teams or not teams else teams[0]
                if team != row["team"]:
                    await conn.execute(
                        "UPDATE chat.conversations SET team = $2 WHERE conversation_id = $1",
                        conversation_id,
                        team,
                    )
                    row = await self._locked(conn, ref, conversation_id)
                await assignment.assign(tx, row, target["agent_id"], "transfer")
            elif to_team is not None:
                if not await store.team_exists(conn, ref.site_id, to_team):
                    raise NotFound("unknown_team", f"team {to_team!r} does not exist")
                team = to_team
                await store.end_assignment(conn, conversation_id, now_utc(), "requeue")
                await store.requeue(conn, conversation_id, to_team)
                row = await self._locked(conn, ref, conversation_id)
                await assignment.try_assign(tx, row, "transfer")
                tx.teams.add(to_team)
            else:
                raise Invalid("missing_target", "give agent_id or team")
            updated = await store.conversation(conn, ref.site_id, conversation_id)
            assert updated is not None
            tx.emit(
                "conversation.transferred",
                row["visitor_id"],
                str(conversation_id),
                conversation_id=conversation_id,
                from_agent_id=previous,
                to_agent_id=updated["agent_id"],
                to_team=team,
                note=None,  # the note is for agents only: in chat.transfers, never published
            )
            moved = await store.insert_transfer(
                conn,
                transfer_id=uuid7(),
                conversation_id=conversation_id,
                site_id=ref.site_id,
                by_agent_id=ref.agent_id,
                from_agent_id=previous,
                to_agent_id=updated["agent_id"],
                to_team=team,
                target="agent" if to_agent is not None else "team",
                note=note,
                now=now_utc(),
            )
            if previous is not None:
                await tx.agent_changed(previous)
                await assignment.drain_queues(tx, await self._agent_teams(conn, previous))
            await tx.finish()
            updated = await store.conversation(conn, ref.site_id, conversation_id)
        await self._committed(tx)
        assert updated is not None
        return views.agent_conversation(updated), views.transfer(moved)

    async def tag(self, ref: AgentRef, conversation_id: UUID, tags: list[str]) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, ref, conversation_id)
            await store.set_tags(conn, conversation_id, tags)
            await store.remember_tags(conn, ref.site_id, tags)
            tx = _Tx(conn, ref.site_id)
            tx.emit(
                "conversation.tagged",
                row["visitor_id"],
                str(conversation_id),
                conversation_id=conversation_id,
                tags=tags,
            )
            await tx.finish()
            updated = await store.conversation(conn, ref.site_id, conversation_id)
        await self._committed(tx)
        assert updated is not None
        return views.agent_conversation(updated)

    async def close(self, ref: AgentRef, conversation_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_site(conn, ref.site_id)
            row = await self._locked(conn, ref, conversation_id)
            if row["status"] not in ("open", "queued"):
                raise Conflict("conversation_closed", "this conversation has ended")
            if row["status"] == "open" and row["agent_id"] != ref.agent_id:
                raise Conflict("not_your_conversation", "only its agent closes it")
            tx = _Tx(conn, ref.site_id)
            closed_at = now_utc()
            await store.close(conn, conversation_id, closed_at)
            await store.end_assignment(conn, conversation_id, closed_at, "closed")
            tx.emit(
                "conversation.closed",
                row["visitor_id"],
                str(conversation_id),
                conversation_id=conversation_id,
                closed_by="agent",
                agent_id=row["agent_id"],
                team=row["team"],
                messages=row["last_seq"],
                email=row["email"],
            )
            tx.teams.add(row["team"])
            if row["agent_id"] is not None:
                await tx.agent_changed(row["agent_id"])
                await assignment.drain_queues(tx, await self._agent_teams(conn, row["agent_id"]))
            await tx.finish()
            updated = await store.conversation(conn, ref.site_id, conversation_id)
        await self._committed(tx)
        assert updated is not None
        return views.agent_conversation(updated)
