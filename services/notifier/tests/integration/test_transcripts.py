"""A closed conversation with a captured e-mail yields exactly one transcript, through the real
intake, the real sender and a real SMTP server, also when every fact is delivered twice; the
transcript carries the reply address and threading headers, and never another address."""

from __future__ import annotations

from email import message_from_bytes, policy
from types import SimpleNamespace

import asyncpg
import pytest
from beckon_devstack.testing import unique
from notifier.domain.tokens import token_from_address
from notifier_testing import REPLY_DOMAIN, Talk, make_notifier, record

pytestmark = pytest.mark.integration


def _talk(site: str, address: str) -> tuple[Talk, list]:
    talk = Talk(site)
    facts = [
        talk.started(),
        talk.says("visitor", "Do the boots run small?"),
        talk.says("agent", "A little: take half a size up.", minutes=1),
        talk.email(address),
        talk.says("visitor", "Thanks!", minutes=2),
        talk.closed(),
    ]
    return talk, facts


async def test_one_transcript_even_when_every_fact_comes_twice(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    talk, facts = _talk(site, address)

    assert await notifier.feed(*facts) == ["done"] * len(facts)
    assert await notifier.feed(*facts) == ["duplicate"] * len(facts)
    await notifier.send()
    await notifier.send()

    mail = notifier.mail_to(address)
    assert len(mail) == 1
    sent = message_from_bytes(mail[0].raw, policy=policy.default)
    text = sent.get_body(("plain",)).get_content()
    for said in ("Do the boots run small?", "take half a size up", "Thanks!"):
        assert said in text
    token = token_from_address(str(sent["Reply-To"].addresses[0].addr_spec), REPLY_DOMAIN)
    assert token is not None
    assert notifier.tokens.verify(token, now=notifier.clock()).conversation_id == talk.conversation
    assert sent["Auto-Submitted"] == "auto-generated"
    rows = await notifier.emails(site)
    assert [(r["template"], r["status"], r["attempts"]) for r in rows] == [
        ("transcript", "sent", 1)
    ]
    assert sent["Message-ID"] == rows[0]["message_id"]


async def test_a_replayed_close_after_the_commit_sends_nothing_more(notifier_pool, sink):
    """A second instance (or a replay from an earlier offset) with the events' first delivery
    forgotten still finds the e-mail's key: no second transcript."""
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    _, facts = _talk(site, address)
    await notifier.feed(*facts)
    await notifier.send()
    await notifier_pool.execute("DELETE FROM notifier.processed_events")

    await notifier.feed(*facts)
    await notifier.send()

    assert len(notifier.mail_to(address)) == 1
    assert len(await notifier.emails(site)) == 1


async def test_no_transcript_without_an_address_or_when_the_site_turned_them_off(
    notifier_pool, sink
):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    quiet = Talk(site)
    await notifier.feed(quiet.started(), quiet.says("visitor", "hi"), quiet.closed())
    off, address = unique("site"), f"{unique('buyer')}@example.com"
    await notifier_pool.execute(
        "INSERT INTO notifier.sites (site_id, transcripts) VALUES ($1, false)", off
    )
    _, facts = _talk(off, address)
    await notifier.feed(*facts)
    await notifier.send()

    assert await notifier.emails(site) == []
    assert await notifier.emails(off) == []
    assert notifier.mail_to(address) == []


async def test_the_transcript_goes_to_the_captured_address_only(notifier_pool, sink):
    """A close that names another address than the one captured in the conversation does
    not move the transcript there (no relay to an address the visitor never gave here)."""
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    captured, other = f"{unique('buyer')}@example.com", f"{unique('victim')}@example.com"
    talk = Talk(site)
    await notifier.feed(
        talk.started(), talk.email(captured), talk.says("visitor", "hi"), talk.closed(email=other)
    )
    await notifier.send()

    assert len(notifier.mail_to(captured)) == 1
    assert notifier.mail_to(other) == []


async def test_a_batch_gives_what_one_record_at_a_time_gives(notifier_pool, sink):
    """A partition's records in one unit of work: the same e-mails as one at a time, the
    copies found out within the batch, a poison record left for its dead letter."""
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    _, facts = _talk(site, address)
    junk = SimpleNamespace(topic="chat.events", value=b"{oops", partition=0, offset=99, headers=())
    batch = [record(f) for f in facts] + [junk] + [record(f) for f in facts]

    left = await notifier.handler.handle_batch(batch)

    assert left == [junk]
    assert notifier.handler.outcomes["done"] == len(facts)
    assert notifier.handler.outcomes["duplicate"] == len(facts)
    await notifier.send()
    assert len(notifier.mail_to(address)) == 1


async def test_a_failed_batch_leaves_nothing_and_hands_every_record_back(
    notifier_pool, sink, monkeypatch
):
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    _, facts = _talk(site, address)
    batch = [record(f) for f in facts]

    async def deadlocked(*args, **kwargs):
        raise asyncpg.DeadlockDetectedError("deadlock detected")

    intake = notifier.handler.intake
    monkeypatch.setattr(intake, "conversation_closed", deadlocked)
    assert await notifier.handler.handle_batch(batch) == batch
    assert await notifier.emails(site) == []
    assert (
        await notifier_pool.fetchval(
            "SELECT count(*) FROM notifier.conversations WHERE site_id = $1", site
        )
        == 0
    )


async def test_another_sites_conversation_id_touches_nothing_of_it(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('buyer')}@example.com"
    talk, facts = _talk(site, address)
    await notifier.feed(*facts[:-1])  # all but the close
    intruder = Talk(unique("other"), conversation=talk.conversation)
    await notifier.feed(intruder.says("agent", "not yours"), intruder.closed(email="x@evil.test"))
    await notifier.send()

    lines = await notifier_pool.fetch(
        "SELECT text FROM notifier.messages WHERE conversation_id = $1", talk.conversation
    )
    assert "not yours" not in [r["text"] for r in lines]
    closed = await notifier_pool.fetchval(
        "SELECT closed_at FROM notifier.conversations WHERE conversation_id = $1",
        talk.conversation,
    )
    assert closed is None
    assert notifier.mail_to("x@evil.test") == []
    assert notifier.mail_to(address) == []  # its own close has not come yet
