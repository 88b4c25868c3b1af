"""Apache Kafka for the dev stack and the tests: a single KRaft node run from Maven Central's jars.

What our users run is Apache Kafka, so that is what we test on. The broker's jars are described by
a pinned `kafka_dist/pom.xml`, resolved once by Maven into a cache outside the repository
(`~/.cache/beckon/kafka-<version>/lib`, or under `$BECKON_CACHE_DIR`), and started with `java`
(17+) from PATH. No tarball scripts: storage is formatted and the broker started from the jars.

    python -m beckon_devstack.kafka fetch   # resolve the jars (make test / make dev do it)
    python -m beckon_devstack.kafka run     # a broker in the foreground, for poking at
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from beckon_devstack.ports import ensure_free, free_port, is_listening
from beckon_devstack.processes import stop_process

KAFKA_VERSION = "3.9.1"
JAVA_MIN = 17
Progress = Callable[[str], None]


class KafkaSetupError(RuntimeError):
    """What is missing to run the embedded broker, and how to get it."""


def _pom() -> bytes:
    return (resources.files("beckon_devstack") / "kafka_dist" / "pom.xml").read_bytes()


def cache_root() -> Path:
    configured = os.environ.get("BECKON_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "beckon"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One fetch at a time on this machine (the dev stack and a test run may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def kafka_libs(progress: Progress = print) -> Path:
    """The folder of the broker's jars, fetched by Maven on first use (progress printed)."""
    pom = _pom()
    digest = hashlib.sha256(pom).hexdigest()
    home = cache_root() / f"kafka-{KAFKA_VERSION}"
    lib = home / "lib"
    marker = home / "complete"
    if marker.is_file() and marker.read_text().strip() == digest:
        return lib
    with _locked(home.parent / f"kafka-{KAFKA_VERSION}.lock"):
        if marker.is_file() and marker.read_text().strip() == digest:
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaSetupError(
                "Maven (`mvn`) is needed once, to fetch Apache Kafka's jars from Maven Central "
                "into " + str(home) + ". Install it (Debian: `apt-get install maven`) and run "
                "again; after that Kafka starts from the cache without Maven."
            )
        progress(f"==> fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {lib}")
        started = time.monotonic()
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        (home / "pom.xml").write_bytes(pom)
        command = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
            raise KafkaSetupError(
                f"Maven could not fetch Apache Kafka {KAFKA_VERSION} (exit {done.returncode}). "
                f"Is Maven Central reachable?\n{tail}"
            )
        jars = sorted(partial.glob("*.jar"))
        if not any(jar.name.startswith("kafka_2.13-") for jar in jars):
            raise KafkaSetupError(f"Maven finished but {partial} holds no kafka_2.13 jar")
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        marker.write_text(digest + "\n")
        progress(
            f"==> Apache Kafka {KAFKA_VERSION}: {len(jars)} jars in "
            f"{time.monotonic() - started:.0f} s (cached for next time)"
        )
        return lib


def java_binary() -> str:
    """`java` from PATH (17 or newer), or a clear word on what to install."""
    java = shutil.which("java")
    if java is None:
        raise KafkaSetupError(
            f"Java {JAVA_MIN}+ is needed to run the embedded Apache Kafka broker and there is no "
            "`java` on PATH. Install a JRE (Debian: `apt-get install openjdk-17-jre-headless`) "
            "and run again."
        )
    shown = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if found is None:
        raise KafkaSetupError(f"could not read the version of {java}: {shown.stderr.strip()}")
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0_..." style
        major = int(found.group(2))
    if major < JAVA_MIN:
        raise KafkaSetupError(
            f"{java} is Java {major}; the embedded Kafka broker needs Java {JAVA_MIN}+ "
            "(Debian: `apt-get install openjdk-17-jre-headless`, then put it first on PATH)."
        )
    return java


def cluster_id() -> str:
    """A random cluster id as Kafka writes them (22 URL-safe base64 characters), never starting
    with "-": the storage tool would read such an id as an option (1 format in 64 failed so)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


# Sized for one machine shared with everything else: small thread pools, few internal
# partitions (group joins and transactions are ready sooner), no topic auto-creation (topics are
# created from the registry), no delay before the first rebalance, and a log cleaner that looks
# often, so compacted topics are compacted while a test still runs.
DEFAULT_SETTINGS: dict[str, str] = {
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "5",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "background.threads": "4",
    "log.cleaner.threads": "1",
    "log.cleaner.backoff.ms": "1000",
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    "group.min.session.timeout.ms": "1000",
}


SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class BrokerTls:
    """The broker's TLS files, all PEM: its certificate chain and key in one file, and the CA
    that client certificates must be signed by (an SSL listener requires one: mTLS)."""

    keystore: Path
    truststore: Path


@dataclass
class KafkaBroker:
    """One broker+controller on 127.0.0.1 with its log directory under `data_dir`.

    `start()` after `stop()` or `kill()` starts it again on the same ports and log directory,
    so a test can restart the broker and find its records where they were.
    """

    data_dir: Path
    port: int = 0
    controller_port: int = 0
    host: str = "127.0.0.1"
    heap_mb: int = 512
    settings: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    progress: Progress = print
    # Optional secured listeners beside PLAINTEXT (which the broker and the fixtures keep using):
    # `sasl_users` (name -> password) adds SASL_PLAINTEXT with SCRAM-SHA-512, SCRAM-SHA-256 and
    # PLAIN, the SCRAM credentials written when the storage is formatted; `tls` adds SSL with
    # client certificates required, and SASL_SSL too when there are SASL users.
    sasl_users: dict[str, str] = field(default_factory=dict)
    tls: BrokerTls | None = None
    listener_ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def bootstrap_for(self, protocol: str) -> str:
        """The address of the listener of `protocol` (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL)."""
        if protocol == "PLAINTEXT":
            return self.bootstrap
        if protocol not in self.listener_ports:
            raise KeyError(f"this broker has no {protocol} listener (see sasl_users and tls)")
        return f"{self.host}:{self.listener_ports[protocol]}"

    def _secured_protocols(self) -> list[str]:
        protocols = []
        if self.sasl_users:
            protocols.append("SASL_PLAINTEXT")
        if self.tls is not None:
            protocols.append("SSL")
            if self.sasl_users:
                protocols.append("SASL_SSL")
        return protocols

    def _secured_settings(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        for name, password in self.sasl_users.items():
            if re.fullmatch(r"[A-Za-z0-9_.-]+", name) is None or re.search(
                r'["\\\s,=\]]', password
            ):
                raise ValueError(f"test SASL user {name!r}: plain names and passwords only")
        for protocol in self._secured_protocols():
            listener = f"listener.name.{protocol.lower()}"
            if protocol.startswith("SASL_"):
                settings[f"{listener}.sasl.enabled.mechanisms"] = ",".join(SASL_MECHANISMS)
                for mechanism in ("scram-sha-512", "scram-sha-256"):
                    settings[f"{listener}.{mechanism}.sasl.jaas.config"] = (
                        f"{SCRAM_MODULE} required;"
                    )
                users = " ".join(
                    f'user_{name}="{password}"' for name, password in self.sasl_users.items()
                )
                settings[f"{listener}.plain.sasl.jaas.config"] = f"{PLAIN_MODULE} required {users};"
            if protocol == "SSL":
                settings[f"{listener}.ssl.client.auth"] = "required"
        if self.tls is not None:
            settings.update(
                {
                    "ssl.keystore.type": "PEM",
                    "ssl.keystore.location": str(self.tls.keystore),
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": str(self.tls.truststore),
                }
            )
        return settings

    def _scram_arguments(self) -> list[str]:
        return [
            argument
            for name, password in self.sasl_users.items()
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256")
            for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def _properties(self) -> str:
        secured = [f"{p}://{self.host}:{self.listener_ports[p]}" for p in self._secured_protocols()]
        listeners = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": ",".join(
                [
                    f"PLAINTEXT://{self.host}:{self.port}",
                    f"CONTROLLER://{self.host}:{self.controller_port}",
                    *secured,
                ]
            ),
            "advertised.listeners": ",".join([f"PLAINTEXT://{self.host}:{self.port}", *secured]),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
                + [f"{p}:{p}" for p in self._secured_protocols()]
            ),
            "log.dirs": str(self.logs_dir),
        }
        merged = {**listeners, **DEFAULT_SETTINGS, **self._secured_settings(), **self.settings}
        return "".join(f"{key}={value}\n" for key, value in merged.items())

    def _log4j(self) -> str:
        return (
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.BrokerServer=INFO\n"
        )

    def start(self, timeout_s: float = 90.0) -> KafkaBroker:
        lib = kafka_libs(self.progress)
        java = java_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        if not self.controller_port:
            self.controller_port = free_port(self.host)
        for protocol in self._secured_protocols():
            if not self.listener_ports.get(protocol):
                self.listener_ports[protocol] = free_port(self.host)
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"Kafka on {self.bootstrap} is running already; stop() or kill() it")
        # A start again after stop() or kill() wants the same ports (clients know the address):
        # if something took one meanwhile, say so, rather than mistake it for the broker.
        for what, port in (
            ("Kafka broker", self.port),
            ("Kafka controller", self.controller_port),
            *((f"Kafka {protocol} listener", p) for protocol, p in self.listener_ports.items()),
        ):
            ensure_free(what, self.host, port)
        config = self.data_dir / "server.properties"
        config.write_text(self._properties())
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text(self._log4j())
        classpath = f"{lib}/*"
        jvm = [java, f"-Dlog4j.configuration=file:{log4j}", "-cp", classpath]
        if not (self.logs_dir / "meta.properties").exists():
            formatted = subprocess.run(
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id(),
                    "-c",
                    str(config),
                    *self._scram_arguments(),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise KafkaSetupError(
                    f"formatting {self.logs_dir} failed: {formatted.stderr or formatted.stdout}"
                )
        log_path = self.log_path or self.data_dir / "broker.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child writes to it for its whole life
        try:
            self.process = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.heap_mb}m",
                    f"-Xms{min(self.heap_mb, 256)}m",
                    "-XX:+UseSerialGC",  # two cores: no parallel GC threads fighting the tests
                    "-Djava.awt.headless=true",
                    f"-Dlog4j.configuration=file:{log4j}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while not is_listening(self.host, self.port):
            if self.process.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(
                    f"Kafka exited with {self.process.returncode} during start-up:\n{tail}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Kafka did not listen on {self.bootstrap} in {timeout_s}s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """A controlled shutdown (SIGTERM), SIGKILL if it takes longer than 30 s."""
        if self.process is not None:
            stop_process(self.process, timeout_s=30.0)

    def kill(self) -> None:
        """SIGKILL, as a crash would: the log directory stays as it was."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    what = args[0] if args else "fetch"
    try:
        if what == "fetch":
            kafka_libs()
            java_binary()
            return 0
        if what == "run":
            import tempfile

            with KafkaBroker(Path(tempfile.mkdtemp(prefix="beckon-kafka-"))) as broker:
                print(f"Kafka {KAFKA_VERSION} on {broker.bootstrap}; Ctrl-C stops it", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    assert broker.process is not None
                    broker.process.wait()
            return 0
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m beckon_devstack.kafka [fetch|run]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
