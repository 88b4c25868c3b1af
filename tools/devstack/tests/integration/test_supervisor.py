"""`beckon-dev` as a person runs it: start, use, Ctrl-C, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import time
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from beckon_devstack.ports import ensure_free, free_port
from beckon_devstack.supervisor import STOPPED_MARKER, _mask_password

from .stack import Supervisor, alive, clean_env, postmaster_pid

pytestmark = pytest.mark.integration


def infra_args(state_dir: Path) -> tuple[list[str], dict[str, int]]:
    ports = {"broker": free_port(), "smtp": free_port(), "smtp_http": free_port()}
    args = [
        "--only",
        "broker,postgres,smtp",
        "--broker-port",
        str(ports["broker"]),
        "--smtp-port",
        str(ports["smtp"]),
        "--smtp-http-port",
        str(ports["smtp_http"]),
        "--state-dir",
        str(state_dir),
    ]
    return args, ports


def send_mail(port: int) -> None:
    message = EmailMessage()
    message["From"] = "notifier@beckon.test"
    message["To"] = "agent@example.com"
    message["Subject"] = "Lead waiting"
    message.set_content("A lead is waiting for you.")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


async def test_infra_comes_up_answers_and_goes_away_on_ctrl_c(tmp_path: Path) -> None:
    state_dir = tmp_path / ".dev"
    args, ports = infra_args(state_dir)
    supervisor = await Supervisor.start(*args)
    try:
        await supervisor.wait_ready()
        bootstrap = f"127.0.0.1:{ports['broker']}"
        assert supervisor.table_value("Kafka broker") == bootstrap
        assert "[1/3] broker" in supervisor.output
        # people are told where the broker keeps its data
        assert f"offsets in {state_dir / 'kafka'} across restarts" in supervisor.output
        # the children's own output is in their logs, not between the progress lines
        assert "Apache Kafka 3.9.1 on" in (state_dir / "logs" / "broker.log").read_text()
        assert "Apache Kafka 3.9.1 on" not in supervisor.output
        assert f"output goes to {state_dir / 'logs'}/<service>.log" in supervisor.output

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            assert "tracking.events" in await admin.list_topics()
        finally:
            await admin.close()

        database_url = supervisor.table_value("Postgres")
        connection = await asyncpg.connect(database_url)
        try:
            assert await connection.fetchval("select 1") == 1
        finally:
            await connection.close()

        await asyncio.to_thread(send_mail, ports["smtp"])
        async with httpx.AsyncClient(trust_env=False) as client:
            mail_ui = f"http://127.0.0.1:{ports['smtp_http']}"
            assert supervisor.table_value("mail UI / API") == mail_ui
            [mail] = (await client.get(f"{mail_ui}/api/messages")).json()
            assert mail["subject"] == "Lead waiting"
        assert list((state_dir / "mail").glob("*.eml"))
        assert (state_dir / "logs" / "smtp.log").read_text()

        children = supervisor.descendants()
        postgres = postmaster_pid(state_dir / "pg")
        assert children
        assert alive(postgres)

        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()

    assert STOPPED_MARKER in supervisor.output
    assert "Traceback" not in supervisor.output
    assert [pid for pid in [*children, postgres] if alive(pid)] == []
    for port in ports.values():
        ensure_free("after the stack stopped", "127.0.0.1", port)


async def test_the_broker_keeps_records_and_offsets_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    args = ("--only", "broker", "--broker-port", str(port), "--state-dir", str(tmp_path))
    supervisor = await Supervisor.start(*args)
    try:
        await supervisor.wait_ready()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("tracking.events", b"kept", key=b"demo:v1", partition=0)
        finally:
            await producer.stop()
        await _commit(bootstrap, offset=1)
        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert "Kafka exited" not in (tmp_path / "logs" / "broker.log").read_text()

    supervisor = await Supervisor.start(*args)
    try:
        await supervisor.wait_ready()
        assert "0 topics created" in supervisor.output
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id="kept-offsets", enable_auto_commit=False
        )
        await consumer.start()
        try:
            partition = TopicPartition("tracking.events", 0)
            # right after a restart the group coordinator may still be loading its offsets
            # (aiokafka then answers None): wait for it, then it must be what was committed
            deadline = time.monotonic() + 60
            committed = await consumer.committed(partition)
            while committed is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                committed = await consumer.committed(partition)
            assert committed == 1
            consumer.assign([partition])
            consumer.seek(partition, 0)
            [record] = (await consumer.getmany(partition, timeout_ms=10_000))[partition]
            assert (record.key, record.value) == (b"demo:v1", b"kept")
        finally:
            await consumer.stop()
        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert "with the records of earlier runs" in (tmp_path / "logs" / "broker.log").read_text()


async def _commit(bootstrap: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id="kept-offsets", enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition("tracking.events", 0)
        consumer.assign([partition])
        await consumer.commit({partition: offset})
    finally:
        await consumer.stop()


async def test_sigterm_stops_it_cleanly_too(tmp_path: Path) -> None:
    supervisor = await Supervisor.start(
        "--only",
        "smtp",
        "--smtp-port",
        "0",
        "--smtp-http-port",
        "0",
        "--state-dir",
        str(tmp_path),
    )
    try:
        await supervisor.wait_ready()
        children = supervisor.descendants()
        supervisor.send(signal.SIGTERM)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert [pid for pid in children if alive(pid)] == []


async def test_ctrl_c_during_start_up_stops_what_was_started(tmp_path: Path) -> None:
    args, _ports = infra_args(tmp_path / ".dev")
    supervisor = await Supervisor.start(*args)
    try:
        await supervisor.wait_for_line(lambda line: line.startswith("[1/3] broker"))
        children = supervisor.descendants()
        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert STOPPED_MARKER in supervisor.output
    assert [pid for pid in children if alive(pid)] == []
    pid_file = tmp_path / ".dev" / "pg" / "postmaster.pid"
    if pid_file.exists():  # Postgres had started before the signal arrived
        assert not alive(postmaster_pid(tmp_path / ".dev" / "pg"))


async def test_a_dying_child_is_reported_loudly_and_stops_the_stack(tmp_path: Path) -> None:
    supervisor = await Supervisor.start(
        "--only",
        "broker,smtp",
        "--broker-port",
        "0",
        "--smtp-port",
        "0",
        "--smtp-http-port",
        "0",
        "--state-dir",
        str(tmp_path),
    )
    try:
        await supervisor.wait_ready()
        children = supervisor.descendants()
        sink = next(
            pid
            for pid in children
            if "beckon_devstack.smtp_sink" in " ".join(psutil.Process(pid).cmdline())
        )
        os.kill(sink, signal.SIGKILL)
        assert await supervisor.wait_exit() == 1
    finally:
        await supervisor.kill()
    assert "!!! smtp was killed by SIGKILL" in supervisor.output
    assert "never restarts services silently" in supervisor.output
    # what it printed went only to its log until then: its last lines come to the terminal
    death = supervisor.output[supervisor.output.index("!!! smtp was killed") :]
    assert f"!!! Its last line (the whole output is in {tmp_path / 'logs' / 'smtp.log'}):" in death
    assert "smtp   | SMTP sink: smtp://127.0.0.1:" in death
    assert [pid for pid in children if alive(pid)] == []


async def test_a_taken_port_is_a_clear_message_and_exit_code_1(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        supervisor = await Supervisor.start(
            "--only", "broker", "--broker-port", str(port), "--state-dir", str(tmp_path)
        )
        code = await supervisor.wait_exit()
    assert code == 1
    assert f"Kafka broker: port {port} on 127.0.0.1 is already in use" in supervisor.output
    assert "Traceback" not in supervisor.output


async def test_database_url_is_used_as_given_and_left_running(
    tmp_path: Path, database_url: str
) -> None:
    supervisor = await Supervisor.start(
        "--only", "postgres", "--state-dir", str(tmp_path), env=clean_env(DATABASE_URL=database_url)
    )
    try:
        await supervisor.wait_ready()
        assert supervisor.table_value("Postgres") == _mask_password(database_url)
        assert "(DATABASE_URL)" in supervisor.output
        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert "left running (DATABASE_URL is not ours)" in supervisor.output
    assert not (tmp_path / "pg").exists()
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("select 1") == 1
    finally:
        await connection.close()
