"""`python -m notifier` tells its liveness probe when intake stops making progress: a record
whose handling blocks (here on a table lock) turns /healthz to 503 once
NOTIFIER_STALL_AFTER_S has passed, and back to 200 when it goes on. The metrics port shows
the dead letter it wrote, the transcript's SMTP attempt, the probes by route and the gauges."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from beckon_devstack.smtp_sink import SmtpSink
from beckon_devstack.testing import unique
from notifier_testing import CHAT, Talk, eventually, notifier_env, start_notifier

pytestmark = pytest.mark.integration
DEADLINE_S = 120


async def test_a_blocked_intake_turns_healthz_to_503_until_it_goes_on(
    kafka_bootstrap, notifier_database, tmp_path
):
    group = unique("notifier-live")
    metrics_port = free_port()
    address = f"{unique('buyer')}@example.com"
    talk = Talk(unique("site"))
    async with SmtpSink(smtp_port=0, http_port=0) as sink:
        env = notifier_env(
            notifier_database,
            kafka_bootstrap,
            free_port(),
            group,
            smtp_port=sink.smtp_port,
            NOTIFIER_STALL_AFTER_S="1",
            NOTIFIER_METRICS_PORT=str(metrics_port),
        )
        instance = await start_notifier(tmp_path, "live", env)
        blocker = await asyncpg.connect(notifier_database)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            async with httpx.AsyncClient(base_url=instance.url, timeout=10.0) as http:
                assert (await http.get("/healthz")).status_code == 200

                # the dead letter of an unreadable record waits for this lock
                locked = blocker.transaction()
                await locked.start()
                await blocker.execute("LOCK TABLE notifier.dead_letters IN ACCESS EXCLUSIVE MODE")
                await producer.send_and_wait(CHAT, b"{not json", key=b"live")

                async def stalled():
                    answer = await http.get("/healthz")
                    return answer if answer.status_code == 503 else None

                answer = await eventually(stalled, timeout_s=DEADLINE_S, what="/healthz 503")
                body = answer.json()
                assert (body["status"], body["consumer"], body["reason"]) == (
                    "stalled",
                    group,
                    "no_progress",
                )

                await locked.rollback()

                async def live():
                    return (await http.get("/healthz")).status_code == 200

                await eventually(live, timeout_s=DEADLINE_S, what="/healthz 200 again")

            # a conversation closed with a visitor's address: its transcript goes out by SMTP
            key = str(talk.conversation).encode()
            for fact in (
                talk.started(),
                talk.email(address),
                talk.says("visitor", "Hello?"),
                talk.says("agent", "Hi!"),
                talk.closed(),
            ):
                await producer.send_and_wait(CHAT, fact.model_dump_json().encode(), key=key)
            await eventually(
                lambda: _async(sink.store.all(to=address)),
                timeout_s=DEADLINE_S,
                what="the transcript",
            )

            async with httpx.AsyncClient(timeout=10.0) as scrape:

                async def counted():
                    text = (await scrape.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                    wanted = 'notifier_smtp_attempts_total{outcome="sent"}'
                    return text if wanted in text else None

                text = await eventually(counted, timeout_s=DEADLINE_S, what="an SMTP attempt")
            # at least this test's record: a new group reads chat.events from its start, where
            # other tests left unreadable records of their own (counted too)
            dead = 'beckon_dead_letters_total{reason="malformed_json",topic="chat.events.dlq"} '
            [count] = [
                line.removeprefix(dead) for line in text.splitlines() if line.startswith(dead)
            ]
            assert float(count) >= 1
            assert 'beckon_http_requests_total{code="503",method="GET",route="/healthz"}' in text
            assert f'beckon_consumer_last_progress_timestamp_seconds{{group="{group}"}}' in text
            assert "notifier_emails_due " in text
            assert 'beckon_outbox_oldest_age_seconds{outbox="notifier.outbox"}' in text
        finally:
            await producer.stop()
            await blocker.close()
            stop_process(instance.process)


async def _async(value):
    return value
