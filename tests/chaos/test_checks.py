"""Every checker can fail: a loss and a duplicate of each kind, planted in the real stores
(the session's Kafka broker, a fresh database with chat's, leads' and the notifier's schemas,
an SMTP sink), are each found and counted, while what was planted right is found once.

Each test uses its own site id and fresh ids, so the topics the session shares cannot mix
them up.
"""

from __future__ import annotations

import email.message
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_devstack.chaos import checks
from beckon_devstack.chaos.ledger import (
    AGENT,
    VISITOR,
    AckedMessage,
    Killed,
    Ledger,
    Mark,
    Reply,
    WebhookReceipt,
    status_kind,
)
from beckon_devstack.chaos.target import Target
from beckon_devstack.smtp_sink import SmtpSink
from beckon_devstack.testing import create_database
from chat.adapters.migrations import migrate as migrate_chat
from leads.adapters.migrations import migrate as migrate_leads
from notifier.adapters.migrations import migrate as migrate_notifier

from .conftest import assert_every_path_held


@dataclass
class Planted:
    target: Target
    db: str
    sink: SmtpSink

    async def execute(self, sql: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.db)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def publish(self, topic: str, *records: dict[str, Any]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.target.kafka_bootstrap)
        await producer.start()
        try:
            for record in records:
                await producer.send_and_wait(topic, json.dumps(record, default=str).encode())
        finally:
            await producer.stop()

    async def mail(self, message_id: str) -> None:
        message = email.message.EmailMessage()
        message["From"] = "chat@demo.beckon.dev"
        message["To"] = "someone@example.com"
        message["Subject"] = "planted"
        message["Message-ID"] = message_id
        message.set_content("planted")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=self.sink.smtp_port)


@pytest.fixture(scope="module")
async def stores(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, SmtpSink]]:
    _, url = await create_database(database_url, "chaos_checks")
    conn = await asyncpg.connect(url)
    try:
        await migrate_chat(conn)
        await migrate_leads(conn)
        await migrate_notifier(conn)
    finally:
        await conn.close()
    async with SmtpSink(smtp_port=0, http_port=0, mail_dir=tmp_path_factory.mktemp("mail")) as sink:
        yield url, sink


@pytest.fixture
def planted(stores: tuple[str, SmtpSink], kafka_bootstrap: str) -> Planted:
    url, sink = stores
    site = f"chk-{uuid.uuid4().hex[:10]}"
    target = Target(
        tracker_urls=(),
        triggers_urls=(),
        chat_urls=(),
        leads_urls=(),
        notifier_urls=(),
        smtp_sink_url=sink.http_url,
        kafka_bootstrap=kafka_bootstrap,
        database_url=url,
        triggers_token="-",
        reply_domain="reply.example.com",
        inbound_secret="-",
        site_id=site,
    )
    return Planted(target, url, sink)


def _one_lost_one_duplicated(result: checks.CheckResult) -> None:
    assert (result.lost, result.duplicated) == (1, 1), result
    assert not result.ok
    assert len(result.examples) == 2, result


def _event(site: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid7()),
        "type": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "site_id": site,
        **fields,
    }


async def test_tracking_loss_and_duplicate(planted: Planted) -> None:
    site = planted.target.site_id
    once, twice, lost = (_event(site, "page_viewed", visitor_id="v1") for _ in range(3))
    other = {**twice, "visitor_id": "v2"}  # the same id on a different event
    await planted.publish("tracking.events", once, twice, other)
    ledger = Ledger(tracking_event_ids={once["event_id"], twice["event_id"], lost["event_id"]})
    result = await checks.check_tracking(checks.Stores(planted.target), ledger)
    _one_lost_one_duplicated(result)
    assert result.found == 2


async def test_a_retried_batch_is_redelivered_not_duplicated(planted: Planted) -> None:
    site = planted.target.site_id
    event = _event(site, "page_viewed", visitor_id="v1")
    # the tracker produced a retried batch again: same event, its own receipt time
    await planted.publish("tracking.events", event, {**event, "received_at": "later"})
    ledger = Ledger(tracking_event_ids={event["event_id"]})
    result = await checks.check_tracking(checks.Stores(planted.target), ledger)
    assert result.ok, result
    assert result.extra["redelivered"] == 1


async def test_segment_loss_and_duplicate(planted: Planted) -> None:
    site = planted.target.site_id
    message = f"m-{uuid.uuid4().hex}"
    # the same Segment message under two event ids: the tracker made two events of it
    first, second = (
        _event(site, "page_viewed", visitor_id="v1", context={"message_id": message})
        for _ in range(2)
    )
    await planted.publish("tracking.events", first, second)
    ledger = Ledger(segment_message_ids={message, f"m-{uuid.uuid4().hex}"})
    _one_lost_one_duplicated(await checks.check_tracking(checks.Stores(planted.target), ledger))


async def test_invitation_loss_and_duplicate(planted: Planted) -> None:
    site = planted.target.site_id
    visitor = f"v-{uuid.uuid4().hex[:8]}"
    stored, never = str(uuid.uuid4()), str(uuid.uuid4())
    await planted.execute(
        """INSERT INTO chat.invitations (invitation_id, site_id, visitor_id, rule_id, team,
                                         message, expires_at)
           VALUES ($1, $2, $3, 'big-cart', 'sales', 'hi', now() + interval '1 minute')""",
        uuid.UUID(stored),
        site,
        visitor,
    )
    # two decisions for one once-per-session rule and visitor: a second, different invitation
    issued = [
        _event(
            site,
            "invitation.issued",
            visitor_id=visitor,
            payload={"invitation_id": invitation, "rule_id": "big-cart", "message": "hi"},
        )
        for invitation in (stored, str(uuid.uuid4()))
    ]
    await planted.publish("chat.invitations", *issued)
    ledger = Ledger(invitations_shown={stored: (visitor, "big-cart"), never: (visitor, "x")})
    result = await checks.check_invitations(checks.Stores(planted.target), ledger)
    _one_lost_one_duplicated(result)


async def _conversation(planted: Planted, cid: uuid.UUID, *, held: bool = True) -> None:
    """A conversation an agent holds (open), or (`held=False`) one still queued for one."""
    site = planted.target.site_id
    agent = f"agent-{site}"
    await planted.execute(
        "INSERT INTO chat.sites (site_id, site_key) VALUES ($1, $1) ON CONFLICT DO NOTHING", site
    )
    await planted.execute(
        """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name)
           VALUES ($1, $2, $1 || '@shop.test', '-', 'Agent') ON CONFLICT DO NOTHING""",
        agent,
        site,
    )
    await planted.execute(
        """INSERT INTO chat.conversations
               (conversation_id, site_id, visitor_id, team, status, agent_id)
           VALUES ($1, $2, 'v1', 'sales', $3, $4)""",
        cid,
        site,
        "open" if held else "queued",
        agent if held else None,
    )


async def _message(
    planted: Planted, cid: uuid.UUID, seq: int, text: str, channel: str = "chat"
) -> str:
    message_id = uuid.uuid4()
    await planted.execute(
        """INSERT INTO chat.messages (message_id, conversation_id, seq, author, text, client_id,
                                      channel)
           VALUES ($1, $2, $3, 'visitor', $4, $5, $6)""",
        message_id,
        cid,
        seq,
        text,
        f"c{seq}",
        channel,
    )
    return str(message_id)


def _acked(cid: uuid.UUID, message_id: str, seq: int, text: str) -> AckedMessage:
    return AckedMessage(
        message_id=message_id,
        conversation_id=str(cid),
        seq=seq,
        author="visitor",
        client_id=f"c{seq}",
        text=text,
        acked_at=0.0,
    )


async def test_message_loss_and_duplicate(planted: Planted) -> None:
    cid = uuid.uuid4()
    await _conversation(planted, cid)
    first = await _message(planted, cid, 1, "hello")
    await _message(planted, cid, 2, "hello")  # the same line stored again under another id
    ledger = Ledger()
    ledger.message_acked(_acked(cid, first, 1, "hello"))
    ledger.message_acked(_acked(cid, str(uuid.uuid4()), 3, "never stored"))
    for side in (VISITOR, AGENT):
        ledger.socket_saw(first, side)
    result = await checks.check_messages(checks.Stores(planted.target), ledger)
    assert result.duplicated == 1, result
    # the lost message is lost in Postgres; the planted line was seen on both sockets
    assert result.lost == 1, result
    assert result.found == 1


async def test_message_not_on_a_socket_is_lost(planted: Planted) -> None:
    cid = uuid.uuid4()
    await _conversation(planted, cid)
    message = await _message(planted, cid, 1, "hello")
    ledger = Ledger()
    ledger.message_acked(_acked(cid, message, 1, "hello"))
    ledger.socket_saw(message, AGENT)
    result = await checks.check_messages(checks.Stores(planted.target), ledger)
    assert (result.lost, result.extra["lost_visitor_socket"]) == (1, 1), result
    ledger.socket_saw(message, VISITOR)
    assert (await checks.check_messages(checks.Stores(planted.target), ledger)).ok


async def test_a_line_no_agent_saw_is_lost_unless_no_agent_holds_its_conversation(
    planted: Planted,
) -> None:
    held, queued = uuid.uuid4(), uuid.uuid4()
    await _conversation(planted, held)
    await _conversation(planted, queued, held=False)
    ledger = Ledger()
    for cid in (held, queued):
        message = await _message(planted, cid, 1, "anyone there?")
        ledger.message_acked(_acked(cid, message, 1, "anyone there?"))
        ledger.socket_saw(message, VISITOR)
    result = await checks.check_messages(checks.Stores(planted.target), ledger)
    assert (result.lost, result.extra["lost_agent_side"]) == (1, 1), result
    assert result.extra["waiting_for_agent"] == 1, result


async def test_seq_gap_is_a_loss(planted: Planted) -> None:
    cid = uuid.uuid4()
    await _conversation(planted, cid)
    message = await _message(planted, cid, 2, "second without a first")
    ledger = Ledger()
    ledger.message_acked(_acked(cid, message, 2, "second without a first"))
    for side in (VISITOR, AGENT):
        ledger.socket_saw(message, side)
    result = await checks.check_messages(checks.Stores(planted.target), ledger)
    assert result.extra["seq_gaps"] == 1, result


async def _lead(
    planted: Planted, email: str, *, status: str = "new", assignee: str | None = None
) -> uuid.UUID:
    lead_id = uuid.uuid4()
    # email_key is left NULL: the schema's one-open-lead-per-key index would refuse the
    # duplicate itself, and the check must see one that got past it
    await planted.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, status, validation, email,
                                    assignee)
           VALUES ($1, $2, $3, $4, 'interested', $5, $6)""",
        lead_id,
        planted.target.site_id,
        f"v-{lead_id.hex[:8]}",
        status,
        email,
        assignee,
    )
    return lead_id


def _marks(*emails: str) -> list[Mark]:
    return [
        Mark(email=e, conversation_id="c", visitor_id="v", validation="interested") for e in emails
    ]


async def test_lead_loss_and_duplicate(planted: Planted) -> None:
    await _lead(planted, "twice@example.com")
    await _lead(planted, "Twice@example.com")
    await _lead(planted, "once@example.com")
    ledger = Ledger(marks=_marks("twice@example.com", "once@example.com", "never@example.com"))
    result = await checks.check_leads(checks.Stores(planted.target), ledger)
    _one_lost_one_duplicated(result)


async def test_lead_assigned_twice_and_over_the_cap(planted: Planted) -> None:
    site = planted.target.site_id
    await planted.execute(
        "INSERT INTO leads.agents (site_id, agent_id, max_open_leads) VALUES ($1, 'ag1', 1)", site
    )
    lead = await _lead(planted, "busy@example.com", status="assigned", assignee="ag1")
    await _lead(planted, "busy2@example.com", status="assigned", assignee="ag1")
    assigned = [
        _event(site, "lead.assigned", lead_id=str(lead), payload={"agent_id": "ag1", "seq": seq})
        for seq in (1, 2)
    ]
    await planted.publish("leads.events", *assigned)
    ledger = Ledger(marks=_marks("busy@example.com", "busy2@example.com"))
    result = await checks.check_leads(checks.Stores(planted.target), ledger)
    assert result.lost == 0, result
    assert result.extra["over_cap"] == 1, result
    assert result.duplicated == 2, result  # assigned twice, and one lead over the cap


async def test_a_lead_assigned_again_after_a_reassignment_is_not_a_duplicate(
    planted: Planted,
) -> None:
    site = planted.target.site_id
    lead = await _lead(planted, "handed@example.com", status="assigned", assignee="ag2")
    events = [
        _event(site, "lead.assigned", lead_id=str(lead), payload={"agent_id": "ag1", "seq": 1}),
        _event(site, "lead.reassigned", lead_id=str(lead), payload={"to_agent_id": None, "seq": 2}),
        _event(site, "lead.assigned", lead_id=str(lead), payload={"agent_id": "ag2", "seq": 3}),
    ]
    await planted.publish("leads.events", *events)
    result = await checks.check_leads(
        checks.Stores(planted.target), Ledger(marks=_marks("handed@example.com"))
    )
    assert result.ok, result
    assert result.extra["assigned"] == 1


async def _email(
    planted: Planted, message_id: str, *, status: str = "sent", tries: int = 0, logged: int = 0
) -> None:
    """An e-mail row tried `tries` times, the first `logged` of its tries in its delivery log."""
    email_id = uuid.uuid4()
    await planted.execute(
        """INSERT INTO notifier.emails (email_id, idempotency_key, site_id, template, recipient,
                                        recipient_kind, language, source_event_id, context,
                                        message_id, status, attempts)
           VALUES ($1, $2, $3, 'transcript', 'someone@example.com', 'visitor', 'en', $1, '{}',
                   $4, $5, $6)""",
        email_id,
        uuid.uuid4().hex,
        planted.target.site_id,
        message_id,
        status,
        tries,
    )
    for attempt in range(tries - logged + 1, tries + 1):  # the last ones: the first unwritten
        await planted.execute(
            """INSERT INTO notifier.attempts (email_id, attempt, outcome, smtp_code)
               VALUES ($1, $2, 'sent', 250)""",
            email_id,
            attempt,
        )


async def test_email_loss_and_duplicate(planted: Planted) -> None:
    ids = [f"<{uuid.uuid4().hex}@reply.example.com>" for _ in range(3)]
    for message_id in ids:
        await _email(planted, message_id)
    await planted.mail(ids[0])
    await planted.mail(ids[1])
    await planted.mail(ids[1])  # the same intent delivered twice
    result = await checks.check_emails(checks.Stores(planted.target), Ledger())
    _one_lost_one_duplicated(result)


async def test_a_second_copy_is_a_resend_only_when_a_notifier_kill_left_its_result_unwritten(
    planted: Planted,
) -> None:
    """Sent by a try whose result was never written, the sink taking it as a notifier instance
    was SIGKILLed, then again by the next try: the SMTP window, counted apart. The same two
    copies without the kill, with a kill of another service or long before, or with every
    try's result written, are duplicates."""
    resent, all_written = (f"<{uuid.uuid4().hex}@reply.example.com>" for _ in "ab")
    await _email(planted, resent, tries=2, logged=1)
    await _email(planted, all_written, tries=2, logged=2)
    await planted.mail(resent)
    killed_at = time.time()
    await planted.mail(all_written)
    await planted.mail(resent)
    await planted.mail(all_written)

    def firsts(result: checks.CheckResult, message_id: str) -> list[str]:
        return [e.split(":")[0] for e in result.examples if message_id.strip("<>") in e]

    killed = [Killed("notifier", 1, killed_at)]
    result = await checks.check_emails(checks.Stores(planted.target, killed), Ledger())
    assert (result.extra["resent_after_kill"], result.duplicated) == (1, 1), result
    assert firsts(result, resent) == ["resent after a kill"]
    assert firsts(result, all_written) == ["duplicated"]
    assert (result.found, result.lost) == (2, 0), result

    for others in ([], [Killed("chat", 1, killed_at)], [Killed("notifier", 0, killed_at - 60)]):
        result = await checks.check_emails(checks.Stores(planted.target, others), Ledger())
        assert (result.extra["resent_after_kill"], result.duplicated) == (0, 2), (others, result)


async def test_transcript_not_intended_is_lost(planted: Planted) -> None:
    ledger = Ledger(emails={str(uuid.uuid4()): "someone@example.com"})
    ledger.closes.update(ledger.emails.keys())
    result = await checks.check_emails(checks.Stores(planted.target), ledger)
    assert result.lost == 1, result


async def test_webhook_loss_and_duplicate(planted: Planted) -> None:
    site = planted.target.site_id
    endpoint = uuid.uuid4()
    await planted.execute(
        """INSERT INTO leads.webhook_endpoints (endpoint_id, site_id, url, event_types, secret,
                                                created_at)
           VALUES ($1, $2, 'http://127.0.0.1/hook', '{lead.created}', 'whsec_x',
                   now() - interval '1 minute')""",
        endpoint,
        site,
    )
    delivered, lost = (_event(site, "lead.created", lead_id=str(uuid.uuid4())) for _ in range(2))
    await planted.publish("leads.events", delivered, lost)
    ledger = Ledger(
        webhook_endpoint_id=str(endpoint),
        webhook_event_types=("lead.created",),
        webhooks=[
            WebhookReceipt(
                webhook_id=webhook_id,
                event_id=delivered["event_id"],
                event_type="lead.created",
                body=b"{}",
                received_at=0.0,
            )
            for webhook_id in (f"msg_{uuid.UUID(delivered['event_id']).hex}", "msg_other")
        ],
    )
    _one_lost_one_duplicated(await checks.check_webhooks(checks.Stores(planted.target), ledger))


async def test_sla_timer_never_fired_and_fired_twice(planted: Planted) -> None:
    site = planted.target.site_id
    lead = await _lead(planted, "sla@example.com")
    past = datetime.now(UTC) - timedelta(minutes=5)
    timers = {}
    for percent, fired in ((50, None), (80, past)):
        timer = uuid.uuid4()
        timers[percent] = timer
        await planted.execute(
            """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, deadline_at, due_at,
                                         fired_at, timer_uuid)
               VALUES ($1, $2, 'warning', $3, $4, $4, $5, $6)""",
            lead,
            site,
            percent,
            past,
            fired,
            timer,
        )
    fired_twice = [
        _event(site, "lead.sla_warning", lead_id=str(lead), payload={"timer_id": str(timers[80])})
        for _ in range(2)
    ]
    await planted.publish("leads.events", *fired_twice)
    _one_lost_one_duplicated(await checks.check_sla(checks.Stores(planted.target), Ledger()))


async def test_reply_loss_and_duplicate(planted: Planted) -> None:
    cid = uuid.uuid4()
    await _conversation(planted, cid)
    await _message(planted, cid, 1, "reply once-1", channel="email")
    await _message(planted, cid, 2, "reply twice-2", channel="email")
    await _message(planted, cid, 3, "reply twice-2 again", channel="email")
    ledger = Ledger(
        replies=[
            Reply(conversation_id=str(cid), marker=marker, message_id="<m@x>")
            for marker in ("once-1", "twice-2", "never-3")
        ]
    )
    _one_lost_one_duplicated(await checks.check_replies(checks.Stores(planted.target), ledger))


def test_table_has_a_row_per_check() -> None:
    rows = [checks.CheckResult("a", accepted=2, found=1, lost=1), checks.CheckResult("b")]
    text = checks.table(rows)
    assert text.count("\n") == 3
    assert "| a | 2 | 1 | 1 | 0 |" in text
    assert Counter(r.ok for r in rows) == Counter({False: 1, True: 1})


def test_a_5xx_other_than_503_fails_the_battery() -> None:
    ledger = Ledger()
    for status in (503, 429, 404):
        ledger.error("widget.start", status_kind(status))
    ledger.error("tracker.collect", "connection")
    ledger.error("tracker.collect", "timeout")
    assert ledger.server_errors() == {}
    for status in (500, 502):
        ledger.error("widget.start", status_kind(status))
    assert ledger.server_errors() == {"widget.start": 2}
    with pytest.raises(AssertionError, match=r"5xx other than 503: \{'widget.start': 2\}"):
        assert_every_path_held([], ledger, "report")
