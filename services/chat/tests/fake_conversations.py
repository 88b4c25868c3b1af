"""`ConversationStore` in memory, for unit tests of the conversations' use cases.

    conversations = FakeConversations()
    conversations.add_site("s1", teams=["sales"])
    conversations.add_agent("s1", "anna", teams=["sales"])
    uow = FakeUnitsOfWork({ConversationStore: conversations})

Rows are dicts with the columns (and joined names) the real queries return, so the views read
them as they read asyncpg records. Only what the use cases need is modelled: one site lock is
the unit of work's, so nothing here locks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from chat.conversations.model import AgentLoad, is_live

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


SHOP_ORIGIN = "https://shop.test"


class FakeConversations:
    def __init__(self) -> None:
        self.sites: dict[str, dict[str, Any]] = {}
        self.credentials: dict[bytes, dict[str, Any]] = {}  # browser credentials by hash
        self.teams: dict[str, set[str]] = {}  # site -> teams
        self.agents: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}  # agent -> teams
        self.rows: dict[UUID, dict[str, Any]] = {}  # conversations, in arrival order
        self.messages_of: dict[UUID, list[dict[str, Any]]] = {}
        self.invitations: dict[UUID, dict[str, Any]] = {}
        self.transfers_of: dict[UUID, list[dict[str, Any]]] = {}
        self.assignments: list[dict[str, Any]] = []
        self.site_tags: dict[str, set[str]] = {}
        self.emails: dict[tuple[str, str], str] = {}
        self._clock = T0

    # --- arranging a test ---------------------------------------------------------------------

    def add_site(self, site_id: str, *, teams: list[str], default_team: str | None = None) -> None:
        self.sites[site_id] = {
            "site_id": site_id,
            "site_key": f"key-{site_id}",
            "name": site_id,
            "allowed_origins": [SHOP_ORIGIN],
            "settings": {"default_team": default_team or teams[0]},
            "identity_secrets": [],
            "identity_verification": True,
        }
        self.teams[site_id] = set(teams)

    def add_agent(
        self,
        site_id: str,
        agent_id: str,
        *,
        teams: list[str],
        status: str = "online",
        max_chats: int = 3,
        role: str = "agent",
    ) -> None:
        self.agents[agent_id] = {
            "agent_id": agent_id,
            "site_id": site_id,
            "name": agent_id.title(),
            "avatar_url": None,
            "role": role,
            "status": status,
            "max_chats": max_chats,
            "last_assigned_at": None,
        }
        self.members[agent_id] = sorted(teams)

    def add_invitation(
        self,
        site_id: str,
        visitor_id: str,
        invitation_id: UUID,
        *,
        team: str,
        agent: dict[str, Any] | None = None,
        status: str = "issued",
    ) -> None:
        self.invitations[invitation_id] = {
            "invitation_id": invitation_id,
            "site_id": site_id,
            "visitor_id": visitor_id,
            "rule_id": None if agent else "size-help",
            "rule_name": "",
            "team": team,
            "message": "Can I help?",
            "agent": agent,
            "personal": agent is not None,
            "status": status,
            "expires_at": self._clock + timedelta(minutes=10),
            "created_at": self._clock,
            "trace": "{}",
        }

    def _tick(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    # --- shared with other packages -----------------------------------------------------------

    async def conversation(self, site_id: str, conversation_id: UUID) -> dict[str, Any] | None:
        row = self.rows.get(conversation_id)
        if row is None or row["site_id"] != site_id:
            return None
        agent = self.agents.get(row["agent_id"]) if row["agent_id"] else None
        position = None
        if row["status"] == "queued":
            position = 1 + sum(
                1
                for other in self.rows.values()
                if other is not row
                and (other["site_id"], other["team"], other["status"])
                == (site_id, row["team"], "queued")
                and other["created_at"] < row["created_at"]
            )
        return {
            **row,
            "agent_name": agent["name"] if agent else None,
            "agent_avatar_url": agent["avatar_url"] if agent else None,
            "queue_position": position,
        }

    async def conversations(
        self, site_id: str, conversation_ids: list[UUID]
    ) -> list[dict[str, Any]]:
        found = [await self.conversation(site_id, cid) for cid in conversation_ids]
        return [row for row in found if row is not None]

    async def lock_conversation(self, site_id: str, conversation_id: UUID) -> dict[str, Any] | None:
        row = self.rows.get(conversation_id)
        return dict(row) if row is not None and row["site_id"] == site_id else None

    async def visitor_live_conversation(self, visitor: Any) -> dict[str, Any] | None:
        for row in self.rows.values():
            if _reaches(visitor, row) and is_live(row["status"]):
                return await self.conversation(visitor.site_id, row["conversation_id"])
        return None

    async def live_conversation(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        for row in self.rows.values():
            if (row["site_id"], row["visitor_id"]) == (site_id, visitor_id) and is_live(
                row["status"]
            ):
                return await self.conversation(site_id, row["conversation_id"])
        return None

    async def agent(self, site_id: str, agent_id: str) -> dict[str, Any] | None:
        agent = self.agents.get(agent_id)
        if agent is None or agent["site_id"] != site_id:
            return None
        open_chats = sum(
            1
            for row in self.rows.values()
            if row["agent_id"] == agent_id and row["status"] == "open"
        )
        return {**agent, "open_chats": open_chats, "teams": list(self.members[agent_id])}

    async def site_by_id(self, site_id: str) -> dict[str, Any] | None:
        return self.sites.get(site_id)

    async def team_exists(self, site_id: str, team: str) -> bool:
        return team in self.teams.get(site_id, set())

    async def notes(self, site_id: str, conversation_id: UUID) -> list[dict[str, Any]]:
        return []

    async def insert_invitation(self, values: dict[str, Any]) -> bool:
        if values["invitation_id"] in self.invitations:
            return False
        self.add_invitation(
            values["site_id"],
            values["visitor_id"],
            values["invitation_id"],
            team=values["team"],
            agent=values.get("agent"),
        )
        return True

    # --- sites, teams and agents --------------------------------------------------------------

    async def credential(self, site_id: str, visitor_id: str, secret_hash: bytes) -> Any:
        row = self.credentials.get(secret_hash)
        return row if row and (row["site_id"], row["visitor_id"]) == (site_id, visitor_id) else None

    async def insert_credential(
        self, credential_id: UUID, site_id: str, visitor_id: str, secret_hash: bytes
    ) -> None:
        self.credentials[secret_hash] = {
            "credential_id": credential_id,
            "site_id": site_id,
            "visitor_id": visitor_id,
            "user_id": None,
        }

    async def set_credential_user(self, credential_id: UUID, user_id: str | None) -> None:
        for row in self.credentials.values():
            if row["credential_id"] == credential_id:
                row["user_id"] = user_id

    async def site_by_key(self, site_key: str) -> dict[str, Any] | None:
        return next((s for s in self.sites.values() if s["site_key"] == site_key), None)

    async def online_agents(self, site_id: str, team: str) -> int:
        return sum(
            1
            for agent in self.agents.values()
            if agent["site_id"] == site_id
            and agent["status"] == "online"
            and team in self.members[agent["agent_id"]]
        )

    async def team_loads(self, site_id: str, team: str) -> list[AgentLoad]:
        loads = []
        for agent_id, teams in self.members.items():
            agent = await self.agent(site_id, agent_id)
            if agent is not None and team in teams:
                loads.append(
                    AgentLoad(
                        agent_id,
                        agent["status"],
                        agent["open_chats"],
                        agent["max_chats"],
                        agent["last_assigned_at"],
                    )
                )
        return loads

    async def agent_teams(self, agent_id: str) -> list[str]:
        return list(self.members.get(agent_id, []))

    async def set_team(self, conversation_id: UUID, team: str) -> None:
        self.rows[conversation_id]["team"] = team

    # --- conversations ------------------------------------------------------------------------

    async def latest_conversation(self, visitor: Any) -> dict[str, Any] | None:
        mine = [
            row
            for row in self.rows.values()
            if _reaches(visitor, row) and row["status"] != "offline"
        ]
        if not mine:
            return None
        latest = max(mine, key=lambda row: (is_live(row["status"]), row["created_at"]))
        return await self.conversation(visitor.site_id, latest["conversation_id"])

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
        if is_live(status) and any(
            (r["site_id"], r["visitor_id"], r.get("credential_id"))
            == (site_id, visitor_id, credential_id)
            and is_live(r["status"])
            for r in self.rows.values()
        ):
            return False
        self.rows[conversation_id] = {
            "conversation_id": conversation_id,
            "site_id": site_id,
            "visitor_id": visitor_id,
            "team": team,
            "agent_id": None,
            "status": status,
            "invitation_id": invitation_id,
            "rule_id": rule_id,
            "email": email,
            "credential_id": credential_id,
            "user_id": user_id,
            "tags": [],
            "last_seq": 0,
            "created_at": self._tick(),
            "assigned_at": None,
            "closed_at": None,
        }
        self.messages_of[conversation_id] = []
        return True

    async def assign(self, conversation_id: UUID, agent_id: str, now: datetime) -> None:
        self.rows[conversation_id].update(status="open", agent_id=agent_id, assigned_at=now)
        self.agents[agent_id]["last_assigned_at"] = now

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
        current = self._current_assignment(conversation_id)
        if current is not None and current["agent_id"] == agent_id:
            return
        await self.end_assignment(conversation_id, now, "transfer")
        self.assignments.append(
            {
                "conversation_id": conversation_id,
                "agent_id": agent_id,
                "team": team,
                "how": how,
                "ended_how": None,
            }
        )

    def _current_assignment(self, conversation_id: UUID) -> dict[str, Any] | None:
        return next(
            (
                a
                for a in self.assignments
                if a["conversation_id"] == conversation_id and a["ended_how"] is None
            ),
            None,
        )

    async def end_assignment(self, conversation_id: UUID, now: datetime, how: str) -> None:
        current = self._current_assignment(conversation_id)
        if current is not None:
            current["ended_how"] = how

    async def requeue(self, conversation_id: UUID, team: str) -> None:
        self.rows[conversation_id].update(status="queued", agent_id=None, team=team)

    async def oldest_queued(self, site_id: str, team: str) -> dict[str, Any] | None:
        queued = [
            row
            for row in self.rows.values()
            if (row["site_id"], row["team"], row["status"]) == (site_id, team, "queued")
        ]
        return dict(min(queued, key=lambda row: row["created_at"])) if queued else None

    async def conversation_site(self, conversation_id: UUID) -> str | None:
        row = self.rows.get(conversation_id)
        return row["site_id"] if row is not None else None

    async def reopen(self, conversation_id: UUID) -> None:
        self.rows[conversation_id].update(status="queued", agent_id=None, closed_at=None)

    async def close(self, conversation_id: UUID, now: datetime) -> None:
        self.rows[conversation_id].update(status="closed", closed_at=now)

    async def set_tags(self, conversation_id: UUID, tags: list[str]) -> None:
        self.rows[conversation_id]["tags"] = list(tags)

    async def remember_tags(self, site_id: str, tags: list[str]) -> None:
        self.site_tags.setdefault(site_id, set()).update(tags)

    async def set_email(
        self, site_id: str, visitor_id: str, conversation_id: UUID | None, email: str
    ) -> None:
        self.emails[(site_id, visitor_id)] = email
        if conversation_id is not None:
            self.rows[conversation_id]["email"] = email

    async def conversations_for_agent(
        self, site_id: str, agent_id: str, scope: str
    ) -> list[dict[str, Any]]:
        rows = [row for row in self.rows.values() if row["site_id"] == site_id]
        if scope == "queue":
            teams = self.members.get(agent_id, [])
            rows = [r for r in rows if r["status"] == "queued" and r["team"] in teams]
        elif scope == "mine":
            rows = [r for r in rows if r["status"] == "open" and r["agent_id"] == agent_id]
        shown = [await self.conversation(site_id, r["conversation_id"]) for r in rows]
        return [row for row in shown if row is not None]

    # --- messages -----------------------------------------------------------------------------

    async def message_by_client_id(
        self, conversation_id: UUID, author: str, client_id: str
    ) -> dict[str, Any] | None:
        return next(
            (
                m
                for m in self.messages_of[conversation_id]
                if (m["author"], m["client_id"]) == (author, client_id)
            ),
            None,
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
        row = self.rows[conversation_id]
        row["last_seq"] += 1
        agent = self.agents.get(agent_id) if agent_id else None
        self.messages_of[conversation_id].append(
            {
                "message_id": message_id,
                "conversation_id": conversation_id,
                "seq": row["last_seq"],
                "author": author,
                "agent_id": agent_id,
                "text": text,
                "client_id": client_id,
                "created_at": now,
                "agent_name": agent["name"] if agent else None,
                "agent_avatar_url": agent["avatar_url"] if agent else None,
                "channel": channel,
                "attachments": list(attachments or []),
                "command_id": command_id,
            }
        )
        return int(row["last_seq"])

    async def message_by_command(
        self, conversation_id: UUID, command_id: UUID
    ) -> dict[str, Any] | None:
        return next(
            (m for m in self.messages_of[conversation_id] if m["command_id"] == command_id), None
        )

    async def message(
        self, site_id: str, conversation_id: UUID, message_id: UUID
    ) -> dict[str, Any] | None:
        if await self.conversation(site_id, conversation_id) is None:
            return None
        return next(
            (m for m in self.messages_of[conversation_id] if m["message_id"] == message_id), None
        )

    async def messages(
        self, conversation_id: UUID, after_seq: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        found = [m for m in self.messages_of.get(conversation_id, []) if m["seq"] > after_seq]
        return found[:limit]

    async def last_messages(self, conversation_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
        return {cid: self.messages_of[cid][-1] for cid in conversation_ids if self.messages_of[cid]}

    # --- transfers ----------------------------------------------------------------------------

    async def insert_transfer(self, **values: Any) -> dict[str, Any]:
        def card(agent_id: str | None, part: str) -> dict[str, Any]:
            agent = self.agents.get(agent_id) if agent_id else None
            return {
                f"{part}_name": agent["name"] if agent else None,
                f"{part}_avatar_url": agent["avatar_url"] if agent else None,
            }

        row = {
            **values,
            "created_at": values["now"],
            "to_team_name": values["to_team"].title(),
            **card(values["by_agent_id"], "by"),
            **card(values["from_agent_id"], "from"),
            **card(values["to_agent_id"], "to"),
        }
        self.transfers_of.setdefault(values["conversation_id"], []).append(row)
        return row

    async def transfers(self, site_id: str, conversation_id: UUID) -> list[dict[str, Any]]:
        return list(self.transfers_of.get(conversation_id, []))

    # --- invitations --------------------------------------------------------------------------

    async def invitation(
        self, site_id: str, visitor_id: str, invitation_id: UUID
    ) -> dict[str, Any] | None:
        row = self.invitations.get(invitation_id)
        if row is None or (row["site_id"], row["visitor_id"]) != (site_id, visitor_id):
            return None
        return row

    async def set_invitation_status(
        self, invitation_id: UUID, status: str, allowed_from: tuple[str, ...]
    ) -> bool:
        row = self.invitations[invitation_id]
        if row["status"] not in allowed_from:
            return False
        row["status"] = status
        return True

    async def pending_invitations(
        self, site_id: str, visitor_id: str, now: datetime
    ) -> list[dict[str, Any]]:
        return [
            row
            for row in self.invitations.values()
            if (row["site_id"], row["visitor_id"]) == (site_id, visitor_id)
            and row["status"] in ("issued", "shown")
        ]


def _reaches(visitor: Any, row: dict[str, Any]) -> bool:
    """As chat.conversations.store's _REACHES: the browser's credential, or a verified user."""
    if row["site_id"] != visitor.site_id:
        return False
    same_browser = (
        visitor.credential_id is not None
        and row["visitor_id"] == visitor.visitor_id
        and row.get("credential_id") == visitor.credential_id
    )
    return same_browser or (visitor.user_id is not None and row.get("user_id") == visitor.user_id)
