"""The embedded Apache Kafka's set-up: its settings and what it says when a tool is missing."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from beckon_devstack import kafka
from beckon_devstack.kafka import KafkaBroker, KafkaSetupError
from beckon_devstack.ports import PortInUseError, free_port


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_single_kraft_node_on_loopback_with_test_sized_settings(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, port=19092, controller_port=19093, settings={"x.y": "1"})
    props = _properties(broker._properties())
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(tmp_path / "logs")
    # topics come from the registry only, and the first group join does not wait
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["x.y"] == "1"
    assert broker.bootstrap == "127.0.0.1:19092"


def test_without_java_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(KafkaSetupError, match="openjdk-17-jre-headless"):
        kafka.java_binary()


@pytest.mark.parametrize(
    ("printed", "ok"),
    [
        ('openjdk version "17.0.15" 2025-04-15', True),
        ('openjdk version "25" 2025-09-16', True),
        ('java version "1.8.0_412"', False),
        ('openjdk version "11.0.2" 2019-01-15', False),
    ],
)
def test_java_must_be_17_or_newer(monkeypatch: pytest.MonkeyPatch, printed: str, ok: bool) -> None:
    monkeypatch.setattr(kafka.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(
        kafka.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="", stderr=printed),
    )
    if ok:
        assert kafka.java_binary() == "/usr/bin/java"
    else:
        with pytest.raises(KafkaSetupError, match="needs Java 17"):
            kafka.java_binary()


def test_without_maven_the_first_fetch_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BECKON_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)
    with pytest.raises(KafkaSetupError, match="apt-get install maven"):
        kafka.kafka_libs(progress=lambda line: None)


def test_a_completed_fetch_is_reused_without_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BECKON_CACHE_DIR", str(tmp_path))
    home = tmp_path / f"kafka-{kafka.KAFKA_VERSION}"
    (home / "lib").mkdir(parents=True)
    digest = kafka.hashlib.sha256(kafka._pom()).hexdigest()
    (home / "complete").write_text(digest + "\n")
    monkeypatch.setattr(kafka.shutil, "which", lambda name: None)  # no mvn needed now
    assert kafka.kafka_libs(progress=lambda line: None) == home / "lib"


def test_a_cluster_id_never_reads_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """One format in 64 failed with "argument --cluster-id/-t: expected one argument"."""
    import uuid as uuid_module

    dashed = uuid_module.UUID(bytes=b"\xf8" + bytes(15))  # base64url: starts with "-"
    values = iter([dashed, uuid_module.UUID(int=1)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(values))
    found = kafka.cluster_id()
    assert not found.startswith("-")
    assert len(found) == 22


@pytest.mark.parametrize("taken", ["port", "controller_port"])
def test_a_start_again_on_a_port_taken_meanwhile_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken: str
) -> None:
    """After kill() the broker starts again on its own ports; if another process listens on one
    by then, the start must fail clearly instead of taking that process for the broker."""
    monkeypatch.setattr(kafka, "kafka_libs", lambda progress: tmp_path / "lib")
    monkeypatch.setattr(kafka, "java_binary", lambda: "/usr/bin/java")
    started: list[list[str]] = []
    monkeypatch.setattr(kafka.subprocess, "Popen", lambda command, **kw: started.append(command))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports = {"port": free_port(), "controller_port": free_port()}
        ports[taken] = squatter.getsockname()[1]
        broker = KafkaBroker(tmp_path / "kafka", **ports)
        with pytest.raises(PortInUseError, match=f"port {ports[taken]} on 127.0.0.1"):
            broker.start()
    assert started == []  # neither the storage tool nor the broker ran
