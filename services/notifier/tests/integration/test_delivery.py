"""Sending against a real SMTP server that goes away, refuses, or accepts while the notifier
dies before writing it down: nothing dropped, nothing twice in effect, each try logged."""

from __future__ import annotations

import pytest
from beckon_devstack.testing import unique
from notifier.emails.store import EmailStore
from notifier_testing import Talk, make_notifier

pytestmark = pytest.mark.integration


async def _closed_talks(notifier, site: str, count: int) -> list[str]:
    addresses = []
    for _ in range(count):
        address = f"{unique('buyer')}@example.com"
        talk = Talk(site)
        await notifier.feed(
            talk.started(), talk.email(address), talk.says("visitor", "hi"), talk.closed()
        )
        addresses.append(address)
    return addresses


async def _tries(pool, site: str) -> list[tuple[str, int, str]]:
    rows = await pool.fetch(
        """SELECT e.recipient, a.attempt, a.outcome FROM notifier.attempts a
           JOIN notifier.emails e USING (email_id) WHERE e.site_id = $1
           ORDER BY e.recipient, a.attempt""",
        site,
    )
    return [(r["recipient"], r["attempt"], r["outcome"]) for r in rows]


async def test_smtp_down_for_a_while_then_up_every_email_arrives_once(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    await sink.stop()
    addresses = await _closed_talks(notifier, site, 5)

    await notifier.send()  # the server is away: each e-mail waits for its next try
    rows = await notifier.emails(site)
    assert {r["status"] for r in rows} == {"pending"}
    assert all(r["due_at"] > notifier.clock() for r in rows)
    await notifier.send()  # not due yet: nothing is tried again
    assert {r["attempts"] for r in await notifier.emails(site)} == {1}

    await sink.start()
    notifier.clock.advance(seconds=31)
    await notifier.send()

    assert [len(notifier.mail_to(a)) for a in addresses] == [1] * 5
    assert {r["status"] for r in await notifier.emails(site)} == {"sent"}
    assert await _tries(notifier_pool, site) == sorted(
        [(a, 1, "retry") for a in addresses] + [(a, 2, "sent") for a in addresses]
    )


async def test_a_permanent_refusal_stops_the_tries(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    [refused, fine] = await _closed_talks(notifier, site, 2)
    sink.rejecting.add(refused)

    await notifier.send()
    notifier.clock.advance(hours=3)
    await notifier.send()

    statuses = {r["recipient"]: (r["status"], r["attempts"]) for r in await notifier.emails(site)}
    assert statuses == {refused: ("failed", 1), fine: ("sent", 1)}
    assert len(notifier.mail_to(fine)) == 1
    tries = await notifier_pool.fetch(
        """SELECT a.smtp_code FROM notifier.attempts a JOIN notifier.emails e USING (email_id)
           WHERE e.recipient = $1""",
        refused,
    )
    assert [t["smtp_code"] for t in tries] == [550]


async def test_out_of_tries_is_failed_not_forever(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)  # five tries at most (notifier_testing)
    site = unique("site")
    await sink.stop()
    await _closed_talks(notifier, site, 1)
    for _ in range(6):
        await notifier.send()
        notifier.clock.advance(hours=2)
    [row] = await notifier.emails(site)
    assert (row["status"], row["attempts"]) == ("failed", 5)


async def test_a_crash_between_the_servers_250_and_the_write_repeats_the_same_message_id(
    notifier_pool, sink, monkeypatch
):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    [address] = await _closed_talks(notifier, site, 1)
    record = EmailStore.record

    async def crash(*args, **kwargs):
        raise ConnectionResetError("the instance died before writing the result")

    monkeypatch.setattr(EmailStore, "record", crash)
    with pytest.raises(ConnectionResetError):
        await notifier.sender.send_due()
    monkeypatch.setattr(EmailStore, "record", record)
    await notifier.send()  # still held by the dead claim: nobody sends it
    assert len(notifier.mail_to(address)) == 1

    notifier.clock.advance(seconds=61)  # the claim's lease ran out
    await notifier.send()

    copies = notifier.mail_to(address)
    assert len(copies) == 2
    assert copies[0].parsed.message_id == copies[1].parsed.message_id
    [row] = await notifier.emails(site)
    assert (row["status"], row["attempts"]) == ("sent", 2)
