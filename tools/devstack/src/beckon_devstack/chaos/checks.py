"""What the system holds, compared with the ledger: nothing accepted lost, nothing done twice.

Each check reads the broker and the database directly (`Target.kafka_bootstrap`,
`Target.database_url`, never through a proxy the battery may cut) and the SMTP sink's HTTP API,
and returns a `CheckResult`: a row of the reliability table (accepted, found, lost, duplicated,
a few examples), not just a bool. Work still on its way (webhook retries, e-mails due, capture
lag) is waited for: `run_checks` repeats a check while it finds losses, until `settle_s`;
duplicates never go away, so they are final at once.

One second copy is not the system's duplicate but the limit of SMTP, and is counted apart
(`resent_after_kill`): an e-mail whose first copy the sink took as the battery SIGKILLed a
notifier instance, and whose notifier row shows that try's result never written. The server
can take a message and the instance die before it writes so: it sends it again after the
claim's lease, with the same Message-ID (docs/notifier.md). Anything else twice is a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from beckon_devstack.chaos.ledger import AGENT, VISITOR, Killed, Ledger
from beckon_devstack.chaos.target import Target

EXAMPLES = 5
# a due SLA timer may be this late before it counts as "not fired" (the scheduler's own
# pass is at most a minute; a NOTIFY wakes it for timers due sooner)
SLA_GRACE_S = 15.0
OPEN_LEAD_STATUSES = ("assigned", "contacted", "qualified")
# a notifier instance SIGKILLed this close to the sink taking an e-mail may have died between
# the server's 250 and its write of the result (the notifier measures that window in
# `notifier_result_unwritten_seconds`: under 0.1 s in bench/notifier.py, at full load)
KILL_NEAR_S = 2.0


@dataclass
class CheckResult:
    """One row of the table: what the ledger says was accepted and what the stores hold."""

    name: str
    accepted: int = 0
    found: int = 0
    lost: int = 0
    duplicated: int = 0
    examples: list[str] = field(default_factory=list)
    # further counts of the check (per socket side, over the cap, ...)
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def example(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)

    def lose(self, text: str) -> None:
        self.lost += 1
        self.example(f"lost: {text}")

    def double(self, text: str) -> None:
        self.duplicated += 1
        self.example(f"duplicated: {text}")

    def row(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.extra.items()))
        return (
            f"| {self.name} | {self.accepted} | {self.found} | {self.lost} | {self.duplicated} "
            f"| {extra} |"
        )


# --- reading the stores ---------------------------------------------------------------------


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON record of the topic up to its end at the time of the call (others skipped)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[dict[str, Any]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                for record in batch:
                    if record.offset >= ends[tp] or record.value is None:
                        continue
                    try:
                        value = json.loads(record.value)
                    except ValueError:
                        continue
                    if isinstance(value, dict):
                        records.append(value)
        return records
    finally:
        await consumer.stop()


class Stores:
    """The direct readers a check uses; one per `run_checks`."""

    def __init__(self, target: Target, killed: Iterable[Killed] = ()) -> None:
        self.target = target
        self.killed = tuple(killed)  # the instances the battery SIGKILLed, and when
        self._topics: dict[str, list[dict[str, Any]]] = {}

    async def topic(self, name: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        if fresh or name not in self._topics:
            self._topics[name] = await read_topic(self.target.kafka_bootstrap, name)
        return self._topics[name]

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.target.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def sink(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            answer = await http.get(f"{self.target.smtp_sink_url}/api/messages")
            answer.raise_for_status()
            messages: list[dict[str, Any]] = answer.json()
            return messages


# --- the checks -----------------------------------------------------------------------------


async def check_tracking(stores: Stores, ledger: Ledger) -> CheckResult:
    """Every accepted tracking event on tracking.events, once per event_id.

    The tracker is at least once by design: a batch retried after its answer was lost is
    produced again with the same event ids, which every consumer deduplicates (docs/tracker.md).
    So a second copy of an event (same id, same event) counts as `redelivered`, not as a
    duplicate; one event under two ids (a Segment message whose id was derived twice
    differently) or one id carrying two different events is a duplicate."""
    result = CheckResult("tracking events", accepted=len(ledger.tracking_event_ids))
    result.accepted += len(ledger.segment_message_ids)
    copies: Counter[str] = Counter()
    contents: dict[str, set[str]] = defaultdict(set)
    by_message: dict[str, set[str]] = defaultdict(set)
    for record in await stores.topic("tracking.events", fresh=True):
        event_id = str(record.get("event_id"))
        copies[event_id] += 1
        contents[event_id].add(_event_content(record))
        message_id = (record.get("context") or {}).get("message_id")
        if message_id:
            by_message[str(message_id)].add(event_id)
    redelivered = 0

    def one(event_id: str, label: str) -> None:
        nonlocal redelivered
        if len(contents.get(event_id, ())) > 1:
            result.double(f"{label}: one id, {len(contents[event_id])} different events")
        redelivered += max(0, copies[event_id] - 1)

    for event_id in sorted(ledger.tracking_event_ids):
        if not copies[event_id]:
            result.lose(f"event {event_id}")
            continue
        result.found += 1
        one(event_id, f"event {event_id}")
    for message_id in sorted(ledger.segment_message_ids):
        ids = by_message.get(message_id, set())
        if not ids:
            result.lose(f"segment message {message_id}")
            continue
        result.found += 1
        if len(ids) > 1:
            result.double(f"segment message {message_id} as {sorted(ids)}")
        for event_id in ids:
            one(event_id, f"segment message {message_id}")
    result.extra["redelivered"] = redelivered
    return result


def _event_content(record: dict[str, Any]) -> str:
    """What makes an event that event: not its receipt time, which each copy has its own."""
    return json.dumps(
        [record.get(k) for k in ("type", "site_id", "visitor_id", "session_id", "payload")],
        sort_keys=True,
        default=str,
    )


async def check_invitations(stores: Stores, ledger: Ledger) -> CheckResult:
    """One invitation per decision: every invitation shown is stored (chat.invitations), one
    record content per invitation id, no visitor invited twice by one once-per-session rule,
    and one `invitation.shown` fact per invitation."""
    result = CheckResult("invitations", accepted=len(ledger.invitations_shown))
    visitors = set(ledger.conversations.values()) | {
        v for v, _ in ledger.invitations_shown.values()
    }
    contents: dict[str, set[str]] = defaultdict(set)
    per_rule: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in await stores.topic("chat.invitations", fresh=True):
        if record.get("type") != "invitation.issued":
            continue
        payload = record.get("payload") or {}
        invitation_id = str(payload.get("invitation_id"))
        visitor = str(record.get("visitor_id"))
        contents[invitation_id].add(f"{visitor}|{payload.get('rule_id')}|{payload.get('message')}")
        if visitor in visitors and not payload.get("personal"):
            per_rule[(visitor, str(payload.get("rule_id")))].add(invitation_id)
    rows = await stores.query(
        "SELECT invitation_id::text AS id FROM chat.invitations WHERE invitation_id = ANY($1)",
        [UUID(i) for i in ledger.invitations_shown],
    )
    stored = {row["id"] for row in rows}
    shown: dict[str, set[str]] = defaultdict(set)
    for record in await stores.topic("chat.events", fresh=True):
        if record.get("type") == "invitation.shown":
            invitation = (record.get("payload") or {}).get("invitation_id")
            shown[str(invitation)].add(str(record.get("event_id")))
    for invitation_id in sorted(ledger.invitations_shown):
        if invitation_id not in stored:
            result.lose(f"invitation {invitation_id} not in chat.invitations")
            continue
        result.found += 1
        if len(contents.get(invitation_id, ())) > 1:
            result.double(f"invitation {invitation_id} issued with different contents")
        if len(shown.get(invitation_id, ())) > 1:
            result.double(f"invitation {invitation_id} shown {len(shown[invitation_id])}x")
    for (visitor, rule), ids in sorted(per_rule.items()):
        if len(ids) > 1:
            result.double(f"visitor {visitor} got {len(ids)} invitations of rule {rule}")
    return result


async def check_messages(stores: Stores, ledger: Ledger) -> CheckResult:
    """Every acknowledged chat message once in Postgres, at its seq, each conversation's seqs
    gapless and in the order acknowledged; and on both sides' sockets (the agent side may
    have read it back after a reconnect; a conversation no agent holds waits for one)."""
    acked = [m for listed in ledger.messages.values() for m in listed]
    result = CheckResult("chat messages", accepted=len(acked))
    rows = await stores.query(
        """SELECT message_id::text AS id, conversation_id::text AS cid, seq, author, text,
                  client_id, channel
             FROM chat.messages WHERE conversation_id = ANY($1)""",
        [UUID(c) for c in ledger.messages],
    )
    by_id = {row["id"]: row for row in rows}
    # Conversations no agent holds at the end (still queued, or left while queued): their
    # lines wait in Postgres for whoever picks them up (the console loads the history), so
    # no agent's socket had to carry them. Counted apart, not as lost.
    unattended = {
        row["cid"]
        for row in await stores.query(
            """SELECT conversation_id::text AS cid FROM chat.conversations
                WHERE conversation_id = ANY($1) AND agent_id IS NULL""",
            [UUID(c) for c in ledger.messages],
        )
    }
    waiting_for_agent = 0
    per_conversation: dict[str, list[int]] = defaultdict(list)
    texts: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        per_conversation[row["cid"]].append(row["seq"])
        if row["channel"] == "chat" and row["author"] != "system":
            texts[(row["cid"], row["author"], row["text"])] += 1
    for (cid, author, text), count in texts.items():
        if count > 1:
            result.double(f"{author} line {text!r} stored {count}x in {cid}")
    for cid, seqs in per_conversation.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            result.extra["seq_gaps"] = result.extra.get("seq_gaps", 0) + 1
            result.lose(f"conversation {cid} has seqs {sorted(seqs)}")
    disordered = 0
    socket_lost: Counter[str] = Counter()
    socket_twice = 0
    for cid, listed in ledger.messages.items():
        last: dict[str, int] = {}
        for message in listed:
            row = by_id.get(message.message_id)
            if row is None:
                result.lose(f"message {message.message_id} ({message.text!r})")
                continue
            result.found += 1
            if row["seq"] != message.seq or row["client_id"] != message.client_id:
                disordered += 1
                result.example(
                    f"message {message.message_id} at seq {row['seq']}, acked {message.seq}"
                )
            if message.seq <= last.get(message.author, 0):
                disordered += 1
                result.example(f"message {message.message_id} acked out of order in {cid}")
            last[message.author] = message.seq
            seen = ledger.seen_on_socket.get(message.message_id, Counter())
            fetched = ledger.seen_by_fetch.get(message.message_id, set())
            if message.visitor_expected and not seen[VISITOR]:
                socket_lost[VISITOR] += 1
                result.lose(f"message {message.message_id} never on the visitor's socket")
            if not seen[AGENT] and AGENT not in fetched and cid in unattended:
                waiting_for_agent += 1
            elif not seen[AGENT] and AGENT not in fetched:
                socket_lost[AGENT] += 1
                result.lose(f"message {message.message_id} never reached the agent")
            if seen[VISITOR] > 1:
                socket_twice += 1
    result.extra.update(
        disordered=disordered,
        lost_visitor_socket=socket_lost[VISITOR],
        lost_agent_side=socket_lost[AGENT],
        waiting_for_agent=waiting_for_agent,
        # a frame again after a sync: the widget dedupes it by id (not a stored duplicate)
        redelivered_to_visitor=socket_twice,
    )
    result.lost += disordered
    return result


async def check_leads(stores: Stores, ledger: Ledger) -> CheckResult:
    """One lead per person marked, each assigned once, no agent above their cap."""
    persons = sorted({mark.email.lower() for mark in ledger.marks})
    result = CheckResult("leads", accepted=len(persons))
    site = stores.target.site_id
    rows = await stores.query(
        """SELECT lead_id::text AS id, lower(email) AS email, status, merged_into, assignee
             FROM leads.leads WHERE site_id = $1 AND lower(email) = ANY($2)""",
        site,
        persons,
    )
    survivors: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["merged_into"] is None and row["status"] not in ("lost", "won", "recycled"):
            survivors[row["email"]].append(row["id"])
    for person in persons:
        _count(result, len(survivors.get(person, [])), f"open lead of {person}")
    # each lead's events, once per event id, in its own order (`payload.seq`)
    history: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in await stores.topic("leads.events", fresh=True):
        if record.get("site_id") == site and record.get("type") in (
            "lead.assigned",
            "lead.reassigned",
        ):
            history[str(record.get("lead_id"))][str(record.get("event_id"))] = record
    ours = {lead for ids in survivors.values() for lead in ids}
    assigned = 0
    for lead in sorted(ours):
        twice = _assigned_while_held(history.get(lead, {}).values())
        assigned += any(r.get("type") == "lead.assigned" for r in history.get(lead, {}).values())
        if twice:
            result.double(f"lead {lead} assigned to {twice} while held")
    result.extra["assigned"] = assigned
    loads = await stores.query(
        """SELECT l.assignee, count(*) AS open,
                  coalesce(a.max_open_leads, s.default_lead_cap, 10) AS cap
             FROM leads.leads l
             LEFT JOIN leads.agents a ON a.site_id = l.site_id AND a.agent_id = l.assignee
             LEFT JOIN leads.sites s ON s.site_id = l.site_id
            WHERE l.site_id = $1 AND l.merged_into IS NULL AND l.status = ANY($2)
            GROUP BY l.assignee, a.max_open_leads, s.default_lead_cap""",
        site,
        list(OPEN_LEAD_STATUSES),
    )
    over = [row for row in loads if row["assignee"] is not None and row["open"] > row["cap"]]
    for row in over:
        result.double(f"agent {row['assignee']} holds {row['open']} > cap {row['cap']}")
    result.extra["over_cap"] = len(over)
    result.extra["max_load"] = max((row["open"] for row in loads if row["assignee"]), default=0)
    return result


async def check_emails(stores: Stores, ledger: Ledger) -> CheckResult:
    """Each e-mail the notifier intended (its `notifier.emails` rows) exactly once in the SMTP
    sink by Message-ID, and a transcript intended for every close of a conversation whose
    visitor left an e-mail."""
    rows = await stores.query(
        """SELECT message_id, status, template, conversation_id::text AS cid,
                  due_at < now() - interval '5 seconds' AS overdue,
                  attempts - (SELECT count(*) FROM notifier.attempts a
                               WHERE a.email_id = e.email_id) AS unwritten
             FROM notifier.emails e WHERE site_id = $1""",
        stores.target.site_id,
    )
    result = CheckResult("e-mails")
    in_sink: dict[str, list[float]] = defaultdict(list)
    for message in await stores.sink():
        key = _bare(str(message.get("message_id") or ""))
        in_sink[key].append(_epoch(message.get("received_at")))
    result.extra["resent_after_kill"] = 0
    for row in rows:
        key = _bare(row["message_id"])
        label = f"{row['template']} e-mail {key}"
        if row["status"] == "sent":
            result.accepted += 1
            copies = sorted(in_sink.get(key, []))
            killed = _killed_as_taken(stores.killed, copies, row["unwritten"])
            if killed is None:
                _count(result, len(copies), label)
            else:
                result.found += 1
                result.extra["resent_after_kill"] += 1
                result.example(
                    f"resent after a kill: {label} (notifier-{killed.index} SIGKILLed "
                    f"{killed.at - copies[0]:+.3f} s from the first copy; its result unwritten)"
                )
        elif row["status"] in ("scheduled", "pending", "sending") and row["overdue"]:
            result.accepted += 1
            result.lose(f"{row['template']} e-mail {key} still {row['status']}")
        elif row["status"] == "failed":
            result.accepted += 1
            result.lose(f"{row['template']} e-mail {key} failed")
    transcripts: Counter[str] = Counter(
        row["cid"] for row in rows if row["template"] == "transcript"
    )
    expected = {cid: n for cid, n in ledger.closes.items() if cid in ledger.emails}
    result.extra["transcripts_expected"] = sum(expected.values())
    for cid, closes in sorted(expected.items()):
        if transcripts[cid] < closes:
            result.lose(f"{closes - transcripts[cid]} transcript(s) of {cid}")
        elif transcripts[cid] > closes:
            result.double(f"{transcripts[cid]} transcripts of {cid} for {closes} close(s)")
    result.extra["transcripts"] = sum(transcripts[cid] for cid in expected)
    result.extra["templates"] = len({row["template"] for row in rows})
    # held back by the notifier's limits or suppression list: intended, rightly not sent
    result.extra["suppressed"] = sum(1 for row in rows if row["status"] == "suppressed")
    return result


async def check_webhooks(stores: Stores, ledger: Ledger) -> CheckResult:
    """Each leads event the endpoint subscribes to delivered at least once, always under one
    `webhook-id` (the event's) and one body."""
    result = CheckResult("webhooks")
    if ledger.webhook_endpoint_id is None:
        return result
    created = await stores.query(
        "SELECT created_at FROM leads.webhook_endpoints WHERE endpoint_id = $1",
        UUID(ledger.webhook_endpoint_id),
    )
    since = created[0]["created_at"].timestamp() if created else ledger.webhook_registered_at
    # When each event was written, by the database's clock, against when the traffic was
    # told the endpoint exists (its clock is the machine's, as the database's): an event's
    # `occurred_at` and the endpoint's `created_at` are the leads instance's clock, which the
    # battery jumps (an event written 30 s before the endpoint existed said it occurred after
    # it). The outbox keeps published rows a while; an event no longer in it falls back to
    # `occurred_at` against `created_at`.
    registered = ledger.webhook_registered_at or since or 0
    written = {
        row["event_id"]: row["created_at"].timestamp()
        for row in await stores.query(
            """SELECT convert_from(value, 'UTF8')::jsonb ->> 'event_id' AS event_id, created_at
                 FROM leads.outbox WHERE topic = 'leads.events'"""
        )
    }
    expected: dict[str, str] = {}
    for record in await stores.topic("leads.events", fresh=True):
        event_id = str(record.get("event_id"))
        at = written.get(event_id)
        after = (
            at >= registered
            if at is not None
            else (_epoch(record.get("occurred_at")) >= (since or 0) - 1)
        )
        if (
            record.get("type") in ledger.webhook_event_types
            and record.get("site_id") == stores.target.site_id
            and after
        ):
            expected[event_id] = f"msg_{UUID(event_id).hex}"
    received: dict[str, set[str]] = defaultdict(set)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for receipt in ledger.webhooks:
        received[receipt.event_id].add(receipt.webhook_id)
        bodies[receipt.webhook_id].add(receipt.body)
    result.accepted = len(expected)
    for event_id, webhook_id in sorted(expected.items()):
        ids = received.get(event_id, set())
        if not ids:
            result.lose(f"{event_id} never delivered")
            continue
        result.found += 1
        if ids != {webhook_id}:
            result.double(f"{event_id} delivered as {sorted(ids)}")
    for webhook_id, variants in bodies.items():
        if len(variants) > 1:
            result.double(f"{webhook_id} delivered with {len(variants)} different bodies")
    result.extra["deliveries"] = len(ledger.webhooks)
    result.extra["invalid_signatures"] = ledger.webhook_invalid
    return result


async def check_sla(stores: Stores, ledger: Ledger) -> CheckResult:
    """No SLA timer fired twice or not at all: every timer due (plus a grace) is fired or
    cancelled, and each fired timer has exactly one warning/breach event."""
    rows = await stores.query(
        """SELECT timer_uuid::text AS id, kind, fired_at IS NOT NULL AS fired,
                  cancelled_at IS NOT NULL AS cancelled,
                  due_at < now() - make_interval(secs => $2) AS overdue
             FROM leads.timers WHERE site_id = $1""",
        stores.target.site_id,
        SLA_GRACE_S,
    )
    fired_events: dict[str, set[str]] = defaultdict(set)
    for record in await stores.topic("leads.events", fresh=True):
        # the target's site only: a shared broker holds other sites' timers' events
        if record.get("site_id") != stores.target.site_id:
            continue
        if record.get("type") in ("lead.sla_warning", "lead.sla_breached"):
            timer = (record.get("payload") or {}).get("timer_id")
            fired_events[str(timer)].add(str(record.get("event_id")))
    result = CheckResult("SLA timers")
    known = set()
    for row in rows:
        known.add(row["id"])
        if row["fired"]:
            result.accepted += 1
            _count(result, len(fired_events.get(row["id"], ())), f"timer {row['id']} event")
        elif not row["cancelled"] and row["overdue"]:
            result.accepted += 1
            result.lose(f"timer {row['id']} ({row['kind']}) due and never fired")
    for timer in set(fired_events) - known:
        result.double(f"event for timer {timer}, which is not stored")
    result.extra["cancelled"] = sum(1 for row in rows if row["cancelled"])
    result.extra["pending"] = sum(
        1 for row in rows if not (row["fired"] or row["cancelled"] or row["overdue"])
    )
    return result


async def check_replies(stores: Stores, ledger: Ledger) -> CheckResult:
    """Each reply by e-mail the sink took is the visitor's message in its conversation once."""
    result = CheckResult("replies by e-mail", accepted=len(ledger.replies))
    if not ledger.replies:
        return result
    rows = await stores.query(
        """SELECT conversation_id::text AS cid, text FROM chat.messages
            WHERE conversation_id = ANY($1) AND channel = 'email'""",
        [UUID(reply.conversation_id) for reply in ledger.replies],
    )
    for reply in ledger.replies:
        count = sum(
            1 for row in rows if row["cid"] == reply.conversation_id and reply.marker in row["text"]
        )
        _count(result, count, f"reply {reply.marker}")
    return result


CHECKS: tuple[Callable[[Stores, Ledger], Awaitable[CheckResult]], ...] = (
    check_tracking,
    check_invitations,
    check_messages,
    check_leads,
    check_emails,
    check_webhooks,
    check_sla,
    check_replies,
)


async def run_checks(
    target: Target,
    ledger: Ledger,
    *,
    settle_s: float = 120.0,
    checks: Iterable[Callable[[Stores, Ledger], Awaitable[CheckResult]]] = CHECKS,
    killed: Iterable[Killed] = (),
) -> list[CheckResult]:
    """Every check; one that finds losses is repeated until `settle_s` has passed (work still
    on its way), one that finds duplicates is final. `killed`: the instances the battery
    SIGKILLed (`ChaosStack.killed`), which the e-mails' check reads."""
    stores = Stores(target, killed)
    deadline = time.monotonic() + settle_s
    results = []
    for check in checks:
        while True:
            result = await check(stores, ledger)
            if result.lost == 0 or result.duplicated or time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
        results.append(result)
    return results


async def wait_for_sla_timers(target: Target, *, timeout_s: float) -> int:
    """Wait until every SLA timer of the site is fired or cancelled (a run's last leads have
    timers still running when the traffic stops), at most `timeout_s`; the number still
    running. Call it before `run_checks` when the SLA row must count every timer."""
    deadline = time.monotonic() + timeout_s
    stores = Stores(target)
    while True:
        rows = await stores.query(
            """SELECT count(*) AS running FROM leads.timers
                WHERE site_id = $1 AND fired_at IS NULL AND cancelled_at IS NULL""",
            target.site_id,
        )
        running = int(rows[0]["running"])
        if running == 0 or time.monotonic() > deadline:
            return running
        await asyncio.sleep(1.0)


def table(results: Iterable[CheckResult]) -> str:
    lines = [
        "| check | accepted | found | lost | duplicated | more |",
        "|---|---|---|---|---|---|",
    ]
    lines.extend(result.row() for result in results)
    return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------------


def _count(result: CheckResult, count: int, label: str) -> None:
    """Exactly one is right: none is a loss, more a duplicate."""
    if count == 0:
        result.lose(label)
        return
    result.found += 1
    if count > 1:
        result.double(f"{label} {count}x")


def _assigned_while_held(events: Iterable[dict[str, Any]]) -> str | None:
    """The agent a lead was assigned to while someone still held it (an assignment done
    twice), or None. A reassignment hands it on or back to the queue; a `lead.assigned`
    after that (a dequeue) is a new assignment, not a second one."""
    holder: str | None = None
    for event in sorted(events, key=lambda e: (e.get("payload") or {}).get("seq", 0)):
        payload = event.get("payload") or {}
        if event.get("type") == "lead.assigned":
            if holder is not None:
                return str(payload.get("agent_id"))
            holder = str(payload.get("agent_id"))
        else:
            holder = payload.get("to_agent_id")
    return None


def _killed_as_taken(
    killed: Iterable[Killed], copies: list[float], unwritten: int
) -> Killed | None:
    """The notifier kill that explains a second copy (two copies, a try whose result was
    never written, a notifier instance SIGKILLed within `KILL_NEAR_S` of the first copy and
    before the second), or None: then two copies are a duplicate."""
    if len(copies) != 2 or unwritten < 1:
        return None
    first, second = copies
    return next(
        (
            kill
            for kill in killed
            if kill.service == "notifier"
            and abs(kill.at - first) <= KILL_NEAR_S
            and kill.at < second
        ),
        None,
    )


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").lower()


def _epoch(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0
