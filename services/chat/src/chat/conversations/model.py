"""A conversation's rules, without I/O: what its status means and who may do what with it.

A conversation is `queued` (waiting for an agent of its team), `open` (held by one agent),
`closed`, or `offline` (a message left while nobody was online; never live; any agent
answers it, and the answer reaches the visitor by e-mail). A closed one goes back to
`queued` only when the visitor replies to it by e-mail (`on_email_reply`). It is *live*
while queued or open: a visitor has at most one live conversation, and only a live one
takes the visitor's messages, transfers and a close. Who gets a queued conversation is
`pick_agent`'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chat.errors import Conflict, Forbidden, Invalid

LIVE = frozenset({"queued", "open"})
# what a visitor's e-mailed reply does to its conversation (`Conversation.on_email_reply`)
EmailReplyEffect = Literal["add", "reopen", "keep_closed"]


def is_live(status: str) -> bool:
    """Whether a conversation of this status is still going on (queued or open)."""
    return status in LIVE


@dataclass(frozen=True, slots=True)
class Conversation:
    """The status and holder of one conversation, from a row (or a view with `status`)."""

    status: str
    team: str | None = None
    agent_id: str | None = None  # who holds it (open), or held it last (closed)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Conversation:
        return cls(status=row["status"], team=row.get("team"), agent_id=row.get("agent_id"))

    @property
    def live(self) -> bool:
        return is_live(self.status)

    @property
    def queued(self) -> bool:
        return self.status == "queued"

    @property
    def open(self) -> bool:
        return self.status == "open"

    @property
    def closed(self) -> bool:
        return self.status == "closed"

    def held_by(self, agent_id: str) -> bool:
        """The agent holds it now: the one who may reply."""
        return self.open and self.agent_id == agent_id

    def held_by_another(self, agent_id: str) -> bool:
        """Someone else holds it now (a queued conversation is nobody's yet)."""
        return self.open and self.agent_id != agent_id

    def on_email_reply(self, *, visitor_chatting_elsewhere: bool) -> EmailReplyEffect:
        """A live or offline conversation takes the reply as it is. A closed one goes back to
        its team's queue (`reopen`), so the reply reaches an agent again; but a visitor has at
        most one live conversation, so while they chat in another one it stays closed and
        keeps the reply (`keep_closed`)."""
        if not self.closed:
            return "add"
        return "keep_closed" if visitor_chatting_elsewhere else "reopen"

    def check_live(self) -> None:
        """Only a live conversation takes messages, transfers and a close."""
        if not self.live:
            raise Conflict("conversation_closed", "this conversation has ended")

    def check_reply(self, agent_id: str) -> None:
        """Only the agent who holds it replies; an offline message is nobody's, and any
        agent of the site answers it (the notifier mails the answer to the visitor)."""
        if self.status == "offline":
            return
        if not self.held_by(agent_id):
            raise Conflict("not_your_conversation", "pick it up before you reply")

    def check_queued(self) -> None:
        """Only a queued conversation can be picked up (nobody has it yet)."""
        if not self.queued:
            raise Conflict("not_queued", "someone already has this conversation")

    def check_pickup(self, *, teams: Sequence[str], open_chats: int, max_chats: int) -> None:
        """An agent picks up a queued conversation of one of their teams, below their limit."""
        self.check_queued()
        if self.team not in teams:
            raise Conflict("not_in_team", f"you are not in team {self.team!r}")
        if open_chats >= max_chats:
            raise Conflict("at_limit", f"you already have {open_chats} open chats")

    def check_transfer(self, agent_id: str, *, admin: bool) -> None:
        """A live chat is its agent's: only they, or an admin, hand it on (a queued one is
        nobody's yet); team leads are admins in Beckon's roles."""
        self.check_live()
        if self.held_by_another(agent_id) and not admin:
            raise Forbidden(
                "transfer_not_allowed",
                "only the agent who has this chat, or an admin, can transfer it",
            )

    def check_close(self, agent_id: str) -> None:
        """A queued conversation may be closed by any agent, an open one only by its agent."""
        self.check_live()
        if self.held_by_another(agent_id):
            raise Conflict("not_your_conversation", "only its agent closes it")


MAX_SEQ = 2**31 - 1  # seqs are Postgres `integer`s


def messages_after(after: int) -> int:
    """The seq to list messages after, as the database can compare it: a client's `after`
    below 0 is 0, one past any seq a conversation can reach is the largest seq (nothing
    after it), instead of a query argument out of the column's range (a 500)."""
    return min(max(0, after), MAX_SEQ)


def seen_grows(*, seq: int, last_seq: int, seen_seq: int) -> bool:
    """Whether the widget's report that it showed the conversation up to `seq` moves what
    the visitor has seen (`seen_seq`); a seq past the last message is refused."""
    if seq < 1:
        raise Invalid("invalid_seq", f"seq must be a message's seq (1 or more), not {seq}")
    if seq > last_seq:
        raise Invalid(
            "seq_beyond_last",
            f"seq {seq} is past the conversation's last message (seq {last_seq})",
        )
    return seq > seen_seq


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent as assignment sees them: status, open chats and limit, last assignment."""

    agent_id: str
    status: str
    open_chats: int
    max_chats: int
    last_assigned_at: datetime | None = None

    @property
    def free_slots(self) -> int:
        return max(0, self.max_chats - self.open_chats) if self.status == "online" else 0


def pick_agent(agents: Iterable[AgentLoad]) -> AgentLoad | None:
    """The online agent with the fewest open chats and a free slot; ties go to whoever has
    waited longest since their last assignment (never assigned counts as longest)."""
    available = [agent for agent in agents if agent.free_slots > 0]
    if not available:
        return None
    return min(
        available,
        key=lambda agent: (
            agent.open_chats,
            agent.last_assigned_at is not None,
            agent.last_assigned_at or datetime.min,
            agent.agent_id,
        ),
    )
