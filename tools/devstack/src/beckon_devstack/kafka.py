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

from beckon_devstack.ports import free_port, is_listening
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


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them; never one starting with "-", which the storage
    tool's command line would take for an option (Kafka's own `Uuid.randomUuid` skips those)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


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
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def _properties(self) -> str:
        listeners = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.logs_dir),
        }
        merged = {**listeners, **DEFAULT_SETTINGS, **self.settings}
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
        config = self.data_dir / "server.properties"
        config.write_text(self._properties())
        log4j = self.data_dir / "log4j.properties"
        log4j.write_text(self._log4j())
        classpath = f"{lib}/*"
        jvm = [java, f"-Dlog4j.configuration=file:{log4j}", "-cp", classpath]
        if not (self.logs_dir / "meta.properties").exists():
            formatted = subprocess.run(
                [*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)],
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
