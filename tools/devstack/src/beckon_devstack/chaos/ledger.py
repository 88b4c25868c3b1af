"""What the traffic was told was accepted: the other half of every check.

The traffic writes here only what the system acknowledged (a 2xx, a frame carrying the id it
sent, a signed webhook it verified), never what it merely tried, so anything the checks then
miss in the stores was lost after an acknowledgement, and anything found twice was done twice.
Failures are counted per path and kind (`errors`), to fill the "5xx and 503" columns of the
reliability table.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

# the error kinds of an HTTP answer that are the system's fault and not a refusal it meant:
# every 5xx but 503 (which says "try again later", with Retry-After)
SERVER_ERROR = "5xx"


def status_kind(status: int) -> str:
    """The error kind an HTTP answer is counted under: "503", "5xx" (any other 5xx) or the
    status itself (a 4xx)."""
    if status == 503:
        return "503"
    return SERVER_ERROR if status >= 500 else str(status)


# which side of a conversation a socket belongs to
VISITOR = "visitor"
AGENT = "agent"


@dataclass
class AckedMessage:
    """A chat message the system acknowledged (its stored id and seq came back)."""

    message_id: str
    conversation_id: str
    seq: int
    author: str  # visitor | agent
    client_id: str
    text: str
    acked_at: float
    # whether the visitor's widget socket was held when it was acknowledged (an answer to a
    # reply by e-mail comes after the visitor left: only the agent side must see it)
    visitor_expected: bool = True


@dataclass
class WebhookReceipt:
    """One verified request to the webhook receiver."""

    webhook_id: str
    event_id: str
    event_type: str
    body: bytes
    received_at: float


@dataclass
class Mark:
    """An acknowledged lead mark: the person (by e-mail) an agent marked in a conversation."""

    email: str
    conversation_id: str
    visitor_id: str
    validation: str


@dataclass
class Reply:
    """A visitor's reply by e-mail the sink took (SMTP 250), and the marker its text carries."""

    conversation_id: str
    marker: str
    message_id: str
    # how often the conversation had been closed when the reply went: it reopens, and an
    # agent closes it once more
    closes_before: int = 0


@dataclass(frozen=True)
class Killed:
    """An instance the battery SIGKILLed, and when (wall clock, `time.time()`)."""

    service: str
    index: int
    at: float


@dataclass
class Ledger:
    started_at: float = field(default_factory=time.time)
    # tracking: snippet event ids (UUIDv7 we made) and Segment messageIds, each answered 2xx
    tracking_event_ids: set[str] = field(default_factory=set)
    segment_message_ids: set[str] = field(default_factory=set)
    # invitation id -> (visitor id, rule id), reported shown with a 204
    invitations_shown: dict[str, tuple[str, str]] = field(default_factory=dict)
    invitations_accepted: set[str] = field(default_factory=set)
    # conversation id -> visitor id, for every conversation the widget started (2xx)
    conversations: dict[str, str] = field(default_factory=dict)
    # conversation id -> acknowledged messages in the order they were acknowledged
    messages: dict[str, list[AckedMessage]] = field(default_factory=dict)
    # message id -> sides (visitor/agent) whose socket delivered it, and how often
    seen_on_socket: dict[str, Counter[str]] = field(default_factory=dict)
    # message id -> sides that read it back by an HTTP call after a reconnect
    seen_by_fetch: dict[str, set[str]] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    # conversation id -> the visitor's e-mail (captured with a 204) and how often it was closed
    emails: dict[str, str] = field(default_factory=dict)
    closes: Counter[str] = field(default_factory=Counter)
    # the leads webhook endpoint the traffic registered
    webhook_endpoint_id: str | None = None
    webhook_event_types: tuple[str, ...] = ()
    webhook_registered_at: float | None = None
    webhooks: list[WebhookReceipt] = field(default_factory=list)
    webhook_invalid: int = 0
    replies: list[Reply] = field(default_factory=list)
    # (path, kind) -> count: kind is 5xx, 503, 429, 4xx, connection, timeout
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    # acknowledged calls per path
    acked: Counter[str] = field(default_factory=Counter)
    # (whole second, path, outcome) -> count: outcome "ok" or an error kind; what the bench
    # reads to say how much traffic held during a fault and how long recovery took
    timeline: Counter[tuple[int, str, str]] = field(default_factory=Counter)

    # --- recording ------------------------------------------------------------------------

    def error(self, path: str, kind: str) -> None:
        self.errors[(path, kind)] += 1
        self.timeline[(int(time.time()), path, kind)] += 1

    def ok(self, path: str) -> None:
        self.acked[path] += 1
        self.timeline[(int(time.time()), path, "ok")] += 1

    def rate(self, since: float, until: float, *, path: str | None = None) -> float:
        """Acknowledged calls per second between two moments (all paths, or one)."""
        if until <= since:
            return 0.0
        count = sum(
            n
            for (second, p, outcome), n in self.timeline.items()
            if outcome == "ok" and since <= second < until and (path is None or p == path)
        )
        return count / (until - since)

    def errors_between(self, since: float, until: float) -> dict[str, int]:
        """Error counts per kind between two moments (the 5xx / 503 columns of a fault)."""
        totals: Counter[str] = Counter()
        for (second, _path, outcome), n in self.timeline.items():
            if outcome != "ok" and since <= second < until:
                totals[outcome] += n
        return dict(totals)

    def message_acked(self, message: AckedMessage) -> None:
        """Record a message's acknowledgement once (a resend's second ack is the same id)."""
        listed = self.messages.setdefault(message.conversation_id, [])
        if any(known.message_id == message.message_id for known in listed):
            return
        listed.append(message)
        self.ok(f"chat.message.{message.author}")

    def socket_saw(self, message_id: str, side: str) -> None:
        self.seen_on_socket.setdefault(message_id, Counter())[side] += 1

    def fetched(self, message_id: str, side: str) -> None:
        self.seen_by_fetch.setdefault(message_id, set()).add(side)

    # --- reading --------------------------------------------------------------------------

    def error_totals(self) -> dict[str, int]:
        """Counts per kind over every path (the table's 5xx / 503 / connection columns)."""
        totals: Counter[str] = Counter()
        for (_path, kind), count in self.errors.items():
            totals[kind] += count
        return dict(totals)

    def server_errors(self) -> dict[str, int]:
        """5xx answers other than 503, per path: each is a bug (a clean run has none)."""
        return {path: n for (path, kind), n in self.errors.items() if kind == SERVER_ERROR}

    def summary(self) -> dict[str, int]:
        """Non-trivial counts per path: what a clean run must show above zero."""
        return {
            "tracking_events": len(self.tracking_event_ids),
            "segment_messages": len(self.segment_message_ids),
            "invitations_shown": len(self.invitations_shown),
            "invitations_accepted": len(self.invitations_accepted),
            "conversations": len(self.conversations),
            "messages": sum(len(listed) for listed in self.messages.values()),
            "lead_marks": len(self.marks),
            "persons_marked": len({mark.email for mark in self.marks}),
            "closes": sum(self.closes.values()),
            "closes_with_email": sum(n for c, n in self.closes.items() if c in self.emails),
            "webhooks_received": len(self.webhooks),
            "replies": len(self.replies),
        }
