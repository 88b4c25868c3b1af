"""`python -m notifier` on the real broker, Postgres and SMTP server: conversations closed on
`chat.events` (each record delivered twice) yield one transcript each, also when the
notifier is SIGKILLed mid-batch and restarted; a reply handed over by the SMTP sink reaches
`chat.inbound`; a forged one is refused at SMTP."""

from __future__ import annotations

import asyncio
import contextlib

import aiosmtplib
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from beckon_contracts.inbound import parse_inbound_command
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from beckon_devstack.smtp_sink import Handoff, SmtpSink
from beckon_devstack.testing import unique
from notifier.domain.tokens import ReplyTokens, reply_address
from notifier_testing import (
    CHAT,
    REPLY_DOMAIN,
    SECRET,
    Talk,
    eventually,
    notifier_env,
    start_notifier,
)

pytestmark = pytest.mark.integration
INBOUND_SECRET = "test-inbound-secret-0123456789"


async def _produce(bootstrap: str, talks: list[Talk], addresses: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for talk, address in zip(talks, addresses, strict=True):
            facts = [
                talk.started(),
                talk.email(address),
                talk.says("visitor", "Do you ship to Åland?"),
                talk.says("agent", "Yes, in 2-3 days."),
                talk.closed(),
            ]
            key = str(talk.conversation).encode()
            for fact in facts:
                value = fact.model_dump_json().encode()
                await producer.send(CHAT, value, key=key)
                await producer.send(CHAT, value, key=key)  # delivered twice
        await producer.flush()
    finally:
        await producer.stop()


async def test_one_transcript_each_across_a_kill_and_duplicate_records(
    kafka_bootstrap, notifier_database, tmp_path
):
    site = unique("site")
    talks = [Talk(site, visitor=f"v-{i}") for i in range(60)]
    addresses = [f"{unique('buyer')}@example.com" for _ in talks]
    async with SmtpSink(smtp_port=0, http_port=0) as sink:
        env = notifier_env(
            notifier_database,
            kafka_bootstrap,
            free_port(),
            unique("notifier"),
            smtp_port=sink.smtp_port,
            NOTIFIER_SMTP_CONNECTIONS="2",
            NOTIFIER_SEND_BATCH="5",
            NOTIFIER_SEND_LEASE_S="40",
            NOTIFIER_SMTP_TIMEOUT_S="10",
        )
        first = await start_notifier(tmp_path, "first", env)
        try:
            await _produce(kafka_bootstrap, talks, addresses)

            def arrived() -> int:
                return sum(1 for a in addresses if sink.store.all(to=a))

            async def some() -> bool:
                return arrived() >= 10

            await eventually(some, timeout_s=60, what="the first transcripts")
            first.process.kill()  # mid-batch: SIGKILL, nothing tidied up
            first.process.wait()
            assert arrived() < len(addresses), "the kill came too late to test anything"
            second = await start_notifier(tmp_path, "second", env)
            try:

                async def every() -> bool:
                    return arrived() == len(addresses)

                await eventually(every, timeout_s=120, what="a transcript for every conversation")
                pool = await asyncpg.connect(notifier_database)
                try:

                    async def settled() -> bool:
                        waiting = await pool.fetchval(
                            """SELECT count(*) FROM notifier.emails WHERE site_id = $1
                               AND status IN ('pending', 'sending')""",
                            site,
                        )
                        return waiting == 0

                    # a claim the kill left behind is sent again once its lease ends
                    await eventually(settled, timeout_s=120, what="every e-mail sent")
                    rows = await pool.fetch(
                        """SELECT recipient, template, status FROM notifier.emails
                           WHERE site_id = $1 AND template = 'transcript'""",
                        site,
                    )
                    # the agent's line scheduled an unread-messages e-mail; the close, whose
                    # transcript says it all, cancelled it
                    unread = await pool.fetch(
                        """SELECT DISTINCT status FROM notifier.emails
                           WHERE site_id = $1 AND template = 'unread_messages'""",
                        site,
                    )
                finally:
                    await pool.close()
            finally:
                stop_process(second.process)
        finally:
            if first.process.poll() is None:
                stop_process(first.process)

    assert sorted(r["recipient"] for r in rows) == sorted(addresses)
    assert {r["status"] for r in rows} == {"sent"}
    assert [r["status"] for r in unread] == ["cancelled"]
    for address in addresses:
        copies = sink.store.all(to=address)
        # one e-mail each: a kill between the server's 250 and the write may deliver it again,
        # always as the same message (the same Message-ID)
        assert len({copy.parsed.message_id for copy in copies}) == 1, address


async def test_a_reply_through_the_sink_reaches_chat_inbound_and_a_forged_one_bounces(
    kafka_bootstrap, notifier_database, tmp_path
):
    port = free_port()
    handoff = Handoff(REPLY_DOMAIN, f"http://127.0.0.1:{port}/v1/inbound/mail", INBOUND_SECRET)
    site = unique("site")
    talk = Talk(site)
    async with SmtpSink(smtp_port=0, http_port=0, handoff=handoff) as sink:
        env = notifier_env(
            notifier_database,
            kafka_bootstrap,
            port,
            unique("notifier"),
            smtp_port=sink.smtp_port,
            NOTIFIER_INBOUND_SECRET=INBOUND_SECRET,
        )
        notifier = await start_notifier(tmp_path, "notifier", env)
        consumer = AIOKafkaConsumer(
            "chat.inbound",
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="latest",
            group_id=unique("reader"),
        )
        await consumer.start()
        try:
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            await consumer.seek_to_end()
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                for fact in (talk.started(), talk.email("buyer@example.com")):
                    await producer.send_and_wait(
                        CHAT, fact.model_dump_json().encode(), key=str(talk.conversation).encode()
                    )
            finally:
                await producer.stop()
            tokens = ReplyTokens([SECRET])

            async def known() -> bool:
                async with httpx.AsyncClient() as client:
                    answer = await client.post(
                        f"{notifier.url}/v1/inbound/mail",
                        content=b"From: a@b.c\r\nTo: x@y.z\r\n\r\nhi\r\n",
                        headers={"authorization": "Bearer wrong"},
                    )
                    assert answer.status_code == 401
                conn = await asyncpg.connect(notifier_database)
                try:
                    return bool(
                        await conn.fetchval(
                            "SELECT 1 FROM notifier.conversations WHERE conversation_id = $1",
                            talk.conversation,
                        )
                    )
                finally:
                    await conn.close()

            await eventually(known, timeout_s=60, what="the conversation to be known")
            good = reply_address(
                "reply", tokens.issue(talk.conversation, now=talk.at), REPLY_DOMAIN
            )
            await aiosmtplib.send(
                f"From: buyer@example.com\r\nTo: {good}\r\nSubject: Re: hi\r\n"
                "Message-ID: <reply-1@example.com>\r\n\r\nThe blue one, please.\r\n",
                sender="buyer@example.com",
                recipients=[good],
                hostname=sink.host,
                port=sink.smtp_port,
            )
            token = good.split("@")[0].split("+")[1]
            forged = good.replace(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await aiosmtplib.send(
                    f"From: buyer@example.com\r\nTo: {forged}\r\nSubject: Re: hi\r\n\r\n"
                    "Let me in\r\n",
                    sender="buyer@example.com",
                    recipients=[forged],
                    hostname=sink.host,
                    port=sink.smtp_port,
                )
            assert refused.value.code == 550

            found = []

            async def command() -> bool:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for one in records:
                        parsed = parse_inbound_command(one.value)
                        if parsed.payload.conversation_id == talk.conversation:
                            found.append(parsed)
                return bool(found)

            await eventually(command, timeout_s=60, what="the reply on chat.inbound")
            assert found[0].payload.text == "The blue one, please."
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            stop_process(notifier.process)
