"""Sending against a real SMTP server that goes away, refuses, or accepts while the notifier
dies before writing it down: nothing dropped, nothing twice in effect, each try logged."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest
from beckon_devstack.testing import unique
from notifier.emails.store import EmailStore
from notifier_testing import Talk, make_notifier
from prometheus_client import CollectorRegistry

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


async def test_results_that_cannot_be_written_while_postgres_is_away_are_written_later(
    notifier_pool, sink, monkeypatch
):
    """The server took the e-mail and the write of that fails twice (its connection cut by
    Postgres): written once it holds, not left to the lease and sent a second time."""
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    [address] = await _closed_talks(notifier, site, 1)
    record = EmailStore.record
    cuts = 0

    async def cut_twice(self, *args, **kwargs):
        nonlocal cuts
        if cuts < 2:
            cuts += 1
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await self.conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return await record(self, *args, **kwargs)

    monkeypatch.setattr(EmailStore, "record", cut_twice)
    await notifier.sender.send_due()

    assert cuts == 2
    [row] = await notifier.emails(site)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    notifier.clock.advance(seconds=61)  # past the lease: nothing left claimed to send again
    await notifier.send()
    assert len(notifier.mail_to(address)) == 1
    assert await _tries(notifier_pool, site) == [(address, 1, "sent")]


async def test_each_result_is_written_as_its_send_ends_not_after_the_whole_round(
    notifier_pool, sink, monkeypatch
):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    slow, quick = await _closed_talks(notifier, site, 2)
    send = notifier.sender._send
    held = asyncio.Event()

    async def hold_one(email, letter):
        if email.recipient == slow:
            await held.wait()
        return await send(email, letter)

    monkeypatch.setattr(notifier.sender, "_send", hold_one)
    round_ = asyncio.create_task(notifier.sender.send_due())
    statuses: dict[str, str] = {}
    for _ in range(200):  # the quick one's result is written while the slow one is out
        statuses = {r["recipient"]: r["status"] for r in await notifier.emails(site)}
        if statuses[quick] == "sent":
            break
        await asyncio.sleep(0.05)
    assert statuses == {slow: "sending", quick: "sent"}

    held.set()
    await round_
    assert {r["status"] for r in await notifier.emails(site)} == {"sent"}
    assert [len(notifier.mail_to(a)) for a in (slow, quick)] == [1, 1]


async def test_a_result_is_written_by_one_statement_outside_a_transaction(
    notifier_pool, sink, monkeypatch
):
    """A sent e-mail's result is in effect the moment Postgres has its one statement: no
    BEGIN before it and no COMMIT after it for a crash to fall between."""
    registry = CollectorRegistry()
    notifier = make_notifier(notifier_pool, sink, registry=registry)
    site = unique("site")
    await _closed_talks(notifier, site, 3)
    record = EmailStore.record
    writes: list[tuple[bool, list[str]]] = []

    async def watched(self, *args, **kwargs):
        statements: list[str] = []
        log = lambda query: statements.append(query.query)  # noqa: E731
        self.conn.add_query_logger(log)
        try:
            in_transaction = self.conn.is_in_transaction()
            await record(self, *args, **kwargs)
        finally:
            self.conn.remove_query_logger(log)
        writes.append((in_transaction, statements))

    monkeypatch.setattr(EmailStore, "record", watched)
    await notifier.send()

    assert writes
    for in_transaction, statements in writes:  # asyncpg's own type lookups read, write nothing
        assert not in_transaction
        assert len([q for q in statements if "notifier." in q]) == 1
    assert {r["status"] for r in await notifier.emails(site)} == {"sent"}
    assert len(await _tries(notifier_pool, site)) == 3
    assert registry.get_sample_value("notifier_result_unwritten_seconds_count") == 3


async def test_a_crash_between_the_servers_250_and_the_write_repeats_the_same_message_id(
    notifier_pool, sink, monkeypatch
):
    registry = CollectorRegistry()
    notifier = make_notifier(notifier_pool, sink, registry=registry)
    site = unique("site")
    [address] = await _closed_talks(notifier, site, 1)
    writing = asyncio.Event()

    async def die_while_writing(*args, **kwargs):
        writing.set()
        await asyncio.Event().wait()  # the process is killed here

    monkeypatch.setattr(EmailStore, "record", die_while_writing)
    round_ = asyncio.create_task(notifier.sender.send_due())
    await asyncio.wait_for(writing.wait(), 30)
    round_.cancel()  # the instance died before writing the result
    with contextlib.suppress(asyncio.CancelledError):
        await round_
    monkeypatch.undo()
    assert len(notifier.mail_to(address)) == 1
    await notifier.send()  # still held by the dead claim: nobody sends it
    assert len(notifier.mail_to(address)) == 1

    assert registry.get_sample_value("notifier_lapsed_claims_total") == 0
    notifier.clock.advance(seconds=61)  # the claim's lease ran out
    await notifier.send()

    assert registry.get_sample_value("notifier_lapsed_claims_total") == 1
    copies = notifier.mail_to(address)
    assert len(copies) == 2
    assert copies[0].parsed.message_id == copies[1].parsed.message_id
    [row] = await notifier.emails(site)
    assert (row["status"], row["attempts"]) == ("sent", 2)
