"""Answers by e-mail (only what the visitor has not seen in the widget), the offline form's
receipt and team mail, lead alerts to staff from the directory, limits and suppressions."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from types import SimpleNamespace

import orjson
import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.directory import AgentCard
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    Contact,
    LeadAssigned,
    LeadAssignedPayload,
    LeadEscalated,
    LeadEscalatedPayload,
    LeadState,
    WebhookDisabledPayload,
    WebhookEndpointDisabled,
)
from beckon_devstack.testing import unique
from notifier.emails.service import Limits
from notifier.emails.store import EmailStore
from notifier_testing import LEADS, T0, Talk, make_notifier

pytestmark = pytest.mark.integration


def _text(stored) -> str:
    return message_from_bytes(stored.raw, policy=policy.default).get_body(("plain",)).get_content()


async def test_agent_lines_the_visitor_did_not_see_go_out_once_when_due(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink, unread_after_s=300)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    talk = Talk(site)
    await notifier.feed(
        talk.started(),
        talk.email(address),
        talk.says("visitor", "Is the tent waterproof?"),
        talk.says("agent", "Seen line", minutes=0),
        talk.seen(),  # the widget showed everything so far
        talk.says("agent", "Unseen one: yes, 3000 mm.", minutes=1),
        talk.says("agent", "Unseen two: and it packs small.", minutes=2),
    )
    await notifier.send()
    assert notifier.mail_to(address) == []  # not due yet

    notifier.clock.advance(minutes=10)
    await notifier.send()
    notifier.clock.advance(minutes=10)
    await notifier.send()

    [mail] = notifier.mail_to(address)
    text = _text(mail)
    assert "Unseen one" in text
    assert "Unseen two" in text
    assert "Seen line" not in text
    assert "waterproof" not in text
    assert mail.parsed.headers  # List-Unsubscribe with one-click
    headers = dict(mail.parsed.headers)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http://notifier.test/v1/unsubscribe?t=")


async def test_nothing_goes_out_when_the_visitor_saw_it_before_it_was_due(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink, unread_after_s=300)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    talk = Talk(site)
    await notifier.feed(talk.started(), talk.email(address), talk.says("agent", "Hello?"))
    await notifier.feed(talk.seen())
    notifier.clock.advance(minutes=10)
    await notifier.send()

    assert notifier.mail_to(address) == []
    [row] = await notifier.emails(site)
    assert (row["template"], row["status"], row["reason"]) == (
        "unread_messages",
        "cancelled",
        "seen",
    )


async def test_the_offline_form_gets_a_receipt_and_the_team_inbox_the_message(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    inbox = f"{unique('sales')}@shop.test"
    await notifier_pool.execute(
        "INSERT INTO notifier.sites (site_id, from_name, team_inboxes) VALUES ($1, $2, $3::jsonb)",
        site,
        "Retkitarvike",
        f'{{"sales": ["{inbox}"]}}',
    )
    talk = Talk(site)
    await notifier.feed(talk.offline(address, "Toimitatteko Ahvenanmaalle?"))
    await notifier.send()

    [receipt] = notifier.mail_to(address)
    [team] = notifier.mail_to(inbox)
    assert "Toimitatteko Ahvenanmaalle?" in _text(receipt)  # the visitor's language: fi
    assert "Retkitarvike" in receipt.parsed.from_
    assert "Toimitatteko Ahvenanmaalle?" in _text(team)
    assert team.parsed.reply_to == (address,)  # the team can answer the visitor directly

    # the agent answers in the console: it goes out by e-mail after the gathering pause
    await notifier.feed(talk.says("agent", "Kyllä, 2-3 arkipäivässä."))
    notifier.clock.advance(minutes=1)
    await notifier.send()
    mail = notifier.mail_to(address)
    assert len(mail) == 2
    answer = message_from_bytes(mail[1].raw, policy=policy.default)
    assert "Kyllä, 2-3 arkipäivässä." in answer.get_body(("plain",)).get_content()
    assert answer["In-Reply-To"] == receipt.parsed.message_id  # one thread


def _agent(site: str, agent_id: str, email: str, *, language: str = "fi", role: str = "agent"):
    return AgentCard(
        site_id=site,
        agent_id=agent_id,
        version=1,
        email=email,
        name=agent_id.title(),
        language=language,
        role=role,  # type: ignore[arg-type]
    )


async def test_lead_alerts_go_to_the_assignee_and_the_team_lead_in_their_language(
    notifier_pool, sink
):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    ann, boss = f"{unique('ann')}@shop.test", f"{unique('boss')}@shop.test"
    notifier.directory.agents[(site, "ann")] = _agent(site, "ann", ann)
    notifier.directory.agents[(site, "boss")] = _agent(site, "boss", boss, language="en")
    lead_id = uuid7()
    state = LeadState(
        status="assigned",
        validation="ready_to_buy",
        team="sales",
        agent_id="ann",
        contact=Contact(email="liisa@example.fi", name="Liisa Virtanen"),
    )
    assigned = LeadAssigned(
        event_id=uuid7(),
        occurred_at=T0,
        site_id=site,
        lead_id=lead_id,
        payload=LeadAssignedPayload(seq=3, lead=state, team="sales", agent_id="ann", how="auto"),
    )
    escalated = LeadEscalated(
        event_id=uuid7(),
        occurred_at=T0,
        site_id=site,
        lead_id=lead_id,
        payload=LeadEscalatedPayload(
            seq=4,
            lead=state,
            team="sales",
            reason="sla_breached",
            escalated_to=["boss", "gone"],
            agent_id="ann",
            due_at=datetime(2026, 12, 1, 12, 5, tzinfo=UTC),
        ),
    )
    assert await notifier.feed(assigned, escalated, assigned, topic=LEADS) == [
        "done",
        "done",
        "duplicate",
    ]
    await notifier.send()

    [to_ann] = notifier.mail_to(ann)
    [to_boss] = notifier.mail_to(boss)
    assert "Liisa Virtanen" in to_ann.parsed.subject + _text(to_ann)
    assert f"#lead={lead_id}" in _text(to_ann)
    assert f"#lead={lead_id}" in _text(to_boss)
    rows = {
        (r["template"], r["recipient"], r["status"], r["reason"])
        for r in await notifier.emails(site)
    }
    assert ("lead_escalated", "agent:gone", "failed", "no_address") in rows  # logged, not lost


async def test_limits_and_the_suppression_list_hold_mail_back_and_say_why(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    notifier.handler.intake.policy = type(notifier.handler.intake.policy)(
        reply_domain="reply.shop.test",
        console_url="http://console.test/",
        limits=Limits(2, 100, 1000),
    )
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    bounced = f"{unique('gone')}@example.com"
    async with notifier.uow(site) as tx:
        await tx.store(EmailStore).suppress(site, bounced, "bounce", "550 5.1.1 no such user")
    for _ in range(3):
        talk = Talk(site)
        await notifier.feed(
            talk.started(), talk.email(address), talk.says("visitor", "hi"), talk.closed()
        )
    talk = Talk(site)
    await notifier.feed(
        talk.started(), talk.email(bounced), talk.says("visitor", "hi"), talk.closed()
    )
    await notifier.send()

    assert len(notifier.mail_to(address)) == 2
    assert notifier.mail_to(bounced) == []
    reasons = sorted(
        (r["recipient"], r["status"], r["reason"] or "") for r in await notifier.emails(site)
    )
    assert reasons == sorted(
        [
            (address, "sent", ""),
            (address, "sent", ""),
            (address, "suppressed", "limit_recipient"),
            (bounced, "suppressed", "bounce"),
        ]
    )


async def test_a_disabled_webhook_is_told_to_the_sites_admins(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    admin, agent = f"{unique('admin')}@shop.test", f"{unique('agent')}@shop.test"
    notifier.directory.agents[(site, "root")] = _agent(site, "root", admin, role="admin")
    notifier.directory.agents[(site, "ann")] = _agent(site, "ann", agent)
    endpoint = uuid7()
    disabled = WebhookEndpointDisabled(
        event_id=uuid7(),
        occurred_at=T0,
        site_id=site,
        payload=WebhookDisabledPayload(
            endpoint_id=endpoint,
            url="https://crm.example.com/hooks/beckon",
            reason="gone",
            last_error="HTTP 410: gone",
        ),
    )
    assert await notifier.feed(disabled, disabled, topic=LEADS) == ["done", "duplicate"]
    await notifier.send()

    [mail] = notifier.mail_to(admin)
    assert "https://crm.example.com/hooks/beckon" in _text(mail)
    assert f"#webhook={endpoint}" in _text(mail)
    assert notifier.mail_to(agent) == []  # admins only


async def test_records_that_break_their_contract_go_to_the_dead_letter_topic(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    talk = Talk(unique("site"))
    good = talk.started()
    broken = good.model_dump(mode="json")
    broken["payload"]["conversation_id"] = "not-a-uuid"
    records = [
        SimpleNamespace(topic="chat.events", value=b"{not json", partition=1, offset=7, headers=()),
        SimpleNamespace(
            topic="chat.events", value=orjson.dumps(broken), partition=1, offset=8, headers=()
        ),
        SimpleNamespace(
            topic="leads.events", value=b'{"type": 3}', partition=2, offset=9, headers=()
        ),
        SimpleNamespace(
            topic="chat.events",
            value=orjson.dumps({**broken, "type": "something.new"}),  # not ours: skipped
            partition=1,
            offset=10,
            headers=(),
        ),
    ]
    outcomes = [await notifier.handler.handle(r) for r in records]
    assert outcomes == ["dead_lettered", "dead_lettered", "dead_lettered", "skipped"]
    letters = await notifier_pool.fetch(
        "SELECT topic, value FROM notifier.outbox WHERE topic LIKE '%.dlq' ORDER BY id"
    )
    assert [r["topic"] for r in letters] == [
        "chat.events.dlq",
        "chat.events.dlq",
        "leads.events.dlq",
    ]
    reasons = [DeadLettered.model_validate_json(r["value"]).payload.reason for r in letters]
    assert reasons == ["malformed_json", "schema_invalid", "schema_invalid"]
    assert [
        r["offset"]
        for r in await notifier_pool.fetch('SELECT "offset" FROM notifier.dead_letters ORDER BY id')
    ] == [7, 8, 9]


async def test_the_sites_hourly_limit_holds_back_what_is_over_it(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    notifier.handler.intake.policy = type(notifier.handler.intake.policy)(
        reply_domain="reply.shop.test", console_url="http://console.test/", limits=Limits(9, 9, 3)
    )
    site = unique("site")
    addresses = [f"{unique('buyer')}@example.com" for _ in range(5)]
    for address in addresses:
        talk = Talk(site)
        await notifier.feed(
            talk.started(), talk.email(address), talk.says("visitor", "hi"), talk.closed()
        )
    notifier.clock.advance(hours=1)  # a new clock hour: the site may send again
    talk = Talk(site, at=notifier.clock())
    late = f"{unique('late')}@example.com"
    await notifier.feed(talk.started(), talk.email(late), talk.says("visitor", "hi"), talk.closed())
    await notifier.send()

    statuses = [(r["status"], r["reason"]) for r in await notifier.emails(site)]
    assert statuses == [("sent", None)] * 3 + [("suppressed", "limit_site")] * 2 + [("sent", None)]
    assert len(notifier.mail_to(late)) == 1


async def test_a_reply_by_email_after_the_close_gets_its_answer_by_email(notifier_pool, sink):
    """Chat reopens a closed conversation for a reply by e-mail; the agent's answer then goes
    by e-mail once the agent's lines are gathered (the visitor is not in the widget)."""
    notifier = make_notifier(notifier_pool, sink, unread_after_s=3600)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    talk = Talk(site)
    await notifier.feed(
        talk.started(), talk.email(address), talk.says("visitor", "hi"), talk.closed()
    )
    await notifier.send()
    [transcript] = notifier.mail_to(address)
    reply = talk.says("visitor", "One more question", minutes=10)
    reply = reply.model_copy(
        update={"payload": reply.payload.model_copy(update={"channel": "email"})}
    )
    await notifier.feed(reply, talk.says("agent", "Sure, ask away.", minutes=11))
    notifier.clock.advance(minutes=11, seconds=31)  # the gathering pause after the answer
    await notifier.send()

    mail = notifier.mail_to(address)
    assert len(mail) == 2
    answer = message_from_bytes(mail[1].raw, policy=policy.default)
    assert "Sure, ask away." in answer.get_body(("plain",)).get_content()
    assert answer["In-Reply-To"] == transcript.parsed.message_id


async def test_a_scheduled_email_meets_the_limits_when_it_is_due(notifier_pool, sink):
    """Unread-messages e-mails are checked against the suppression list and the limits when
    they become due (most are cancelled before: the visitor saw the lines, or the close's
    transcript said it all), counting everything but themselves."""
    limits = Limits(1, 100, 1000)
    notifier = make_notifier(notifier_pool, sink, unread_after_s=60, limits=limits)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    first = Talk(site)
    await notifier.feed(first.started(), first.email(address), first.says("visitor", "hi"))
    await notifier.feed(first.says("agent", "Hello, still there?"))
    notifier.clock.advance(minutes=2)
    await notifier.send()  # the one e-mail the hour allows
    second = Talk(site, visitor="v-2")
    await notifier.feed(second.started(), second.email(address), second.says("agent", "And you?"))
    notifier.clock.advance(minutes=2)
    await notifier.send()

    assert len(notifier.mail_to(address)) == 1
    rows = [(r["status"], r["reason"]) for r in await notifier.emails(site)]
    assert rows == [("sent", None), ("suppressed", "limit_recipient")]
