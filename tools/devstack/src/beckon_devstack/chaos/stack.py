"""The chaos stack: the whole system, several instances per service, every part killable, and
the network between chosen instances and Kafka or Postgres under the battery's control.

    with ChaosStack(tmp_path, services={"tracker": 2}) as stack:
        target = stack.target()
        stack.kill("tracker", 0); stack.restart("tracker", 0)
        stack.kill_broker(); stack.start_broker()
        stack.kafka_link("tracker", 0).cut()   # that instance's only way to the broker
        stack.kafka_link("tracker", 0).heal()

What runs, in one directory the caller gives (logs in `<dir>/logs/<name>-<i>.log`):

- Apache Kafka (`KafkaBroker`) on its own log directory, restarted on the same ports and log
  directory by `start_broker()`. Every instance whose Kafka traffic is proxied gets a listener
  of its own on the broker, *advertised as the proxy's port*: Kafka clients connect to the
  addresses the broker advertises in its metadata, so a plain proxy in front of the bootstrap
  address would be bypassed after the first metadata call. The instance's bootstrap is the
  proxy, and the metadata it reads sends it back to the proxy.
- Postgres (an embedded one under `<dir>/pg`, or DATABASE_URL's server) with a fresh database;
  instances whose Postgres traffic is proxied connect to a proxy in front of it.
- The SMTP sink (`python -m beckon_devstack.smtp_sink`) as a process of its own.
- N instances of each service, each a process built from `supervisor.service_specs()` (the
  argv and env `make dev` uses) with its own port and its own TRIGGERS_DATA_DIR. The first
  instance of a service migrates the schema; the others start after it, with migration off.
  Every service also has a round-robin proxy on the port `make dev` would give it: what one
  service calls of another (chat → triggers, the sink → the notifier) goes there, as it would
  go to a load balancer, so one killed instance does not take a dependency away.

Each instance is started with PR_SET_PDEATHSIG, so a test process that dies does not leave
services behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from beckon_devstack.chaos.faults import Rewind, faketime_env, rewind_group, set_clock_offset
from beckon_devstack.chaos.ledger import Killed
from beckon_devstack.chaos.proxy import TcpProxy
from beckon_devstack.chaos.target import Target
from beckon_devstack.config import DevStackSettings
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.ports import free_port
from beckon_devstack.postgres import EmbeddedPostgres
from beckon_devstack.processes import stop_process
from beckon_devstack.supervisor import ServiceSpec, service_specs

SERVICES = ("tracker", "triggers", "chat", "leads", "notifier")
# Every service scales out (ARCHITECTURE.md: tracker stateless, triggers by partitions, chat,
# leads and notifier as replicas), so each runs twice unless asked otherwise.
DEFAULT_INSTANCES = dict.fromkeys(SERVICES, 2)
USES_POSTGRES = frozenset({"chat", "leads", "notifier"})
START_TIMEOUT_S = 120.0
# One load generator on loopback plays thousands of visitors: the tracker's per-client and
# per-visitor limits would make a chaos run measure 429s.
UNLIMITED_TRACKER = {
    "TRACKER_REQUESTS_PER_S_PER_CLIENT": "1e9",
    "TRACKER_REQUEST_BURST_PER_CLIENT": "1000000000",
    "TRACKER_EVENTS_PER_S_PER_VISITOR": "1e9",
    "TRACKER_EVENT_BURST_PER_VISITOR": "1000000000",
}

Say = Callable[[str], None]


def uncapped_rules(source: Path, target: Path) -> Path:
    """The demo rules without their hourly caps (the site's and each rule's): a chaos run's
    traffic spends a rule's 40 an hour in a few minutes, and a run after it would see no
    invitation at all. Everything else (conditions, once-per, cooldowns, load) as the demo's."""
    rules = yaml.safe_load(source.read_text())
    rules.pop("max_invitations_per_hour", None)
    for rule in rules.get("rules", []):
        (rule.get("limits") or {}).pop("max_per_hour", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(rules, sort_keys=False, allow_unicode=True))
    return target


def _prefix(service: str) -> str:
    return f"{service.upper()}_"


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the child if the thread that started it goes away."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: an
# instance restarted from a worker thread (a fault's control under `asyncio.to_thread`) was
# SIGKILLed when `asyncio.run` shut its executor down (a mixed bench run found the SMTP sink
# and every restarted service dead at check time). Every instance is forked by this one
# thread, which lives as long as the process.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-spawner")


@dataclass
class Instance:
    """One process of a service: the same argv and env every time it is (re)started."""

    service: str
    index: int
    port: int
    argv: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} is running already")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"===== start {self.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = _SPAWNER.submit(
                subprocess.Popen,
                list(self.argv),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
            ).result()
        self.starts += 1

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ChaosStack:
    """The system for one test or bench run, in `directory`. See the module's docstring."""

    directory: Path
    services: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_INSTANCES))
    # (service, instance) whose Kafka / Postgres traffic goes through a proxy the battery holds
    kafka_proxied: Iterable[tuple[str, int]] = ()
    postgres_proxied: Iterable[tuple[str, int]] = ()
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # services whose wall clock `jump_clock` moves (libfaketime preloaded; monotonic untouched)
    fake_clock: Iterable[str] = ()
    database_url: str | None = None  # a server to make a fresh database on; else embedded
    say: Say = lambda _line: None
    settings: DevStackSettings = field(init=False)
    broker: KafkaBroker = field(init=False)
    instances: dict[str, list[Instance]] = field(init=False, default_factory=dict)
    started: bool = field(init=False, default=False)  # every instance was ready once
    killed: list[Killed] = field(init=False, default_factory=list)  # each SIGKILL, in order
    _kafka_links: dict[tuple[str, int], TcpProxy] = field(init=False, default_factory=dict)
    _pg_links: dict[tuple[str, int], TcpProxy] = field(init=False, default_factory=dict)
    _balancers: dict[str, TcpProxy] = field(init=False, default_factory=dict)
    _listener_ports: dict[tuple[str, int], int] = field(init=False, default_factory=dict)
    _postgres: EmbeddedPostgres | None = field(init=False, default=None)
    _pg_direct: str | None = field(init=False, default=None)
    _pg_upstream: tuple[str, int] | str | None = field(init=False, default=None)
    _smtp: Instance | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        unknown = set(self.services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {SERVICES}")
        self.kafka_proxied = tuple(self.kafka_proxied)
        self.postgres_proxied = tuple(self.postgres_proxied)
        self.fake_clock = tuple(self.fake_clock)
        self.directory.mkdir(parents=True, exist_ok=True)
        # every port 0: free ones now (the ports `make dev` would use may be taken by it)
        self.settings = DevStackSettings(
            state_dir=self.directory,
            broker_port=0,
            smtp_port=0,
            smtp_http_port=0,
            tracker_port=0,
            triggers_port=0,
            chat_port=0,
            leads_port=0,
            notifier_port=0,
            store_port=0,
        ).with_free_ports()

    # ---- the whole stack -------------------------------------------------------------------

    @property
    def needs_postgres(self) -> bool:
        return any(name in USES_POSTGRES for name in self.services)

    @property
    def store_origin(self) -> str:
        """The Origin the demo site allows (the demo store's address): the snippet's calls
        carry it, or the tracker answers 403."""
        return f"http://127.0.0.1:{self.settings.store_port}"

    def start(self) -> ChaosStack:
        started = time.monotonic()
        try:
            self._start_broker_first_time()
            if self.needs_postgres:
                self._start_postgres()
            if "notifier" in self.services:
                self._start_smtp()
            self._build_instances()
            for service in SERVICES:
                group = self.instances.get(service, [])
                if not group:
                    continue
                group[0].launch()
                self._wait_ready(group[0])
                for instance in group[1:]:
                    instance.launch()
                for instance in group[1:]:
                    self._wait_ready(instance)
                self.say(f"{service}: {len(group)} instance(s) ready")
        except BaseException:
            self.stop()
            raise
        self.started = True
        self.say(f"chaos stack ready in {time.monotonic() - started:.0f} s ({self.directory})")
        return self

    def stop(self) -> None:
        for group in reversed(list(self.instances.values())):
            for instance in group:
                if instance.process is not None:
                    stop_process(instance.process, timeout_s=10)
        if self._smtp is not None and self._smtp.process is not None:
            stop_process(self._smtp.process)
        for proxy in [*self._kafka_links.values(), *self._pg_links.values()]:
            proxy.stop()
        for proxy in self._balancers.values():
            proxy.stop()
        with contextlib.suppress(Exception):
            self.broker.stop()
        if self._postgres is not None:
            self._postgres.stop()

    def __enter__(self) -> ChaosStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def target(self) -> Target:
        def urls(service: str) -> tuple[str, ...]:
            return tuple(instance.url for instance in self.instances.get(service, []))

        s = self.settings
        return Target(
            tracker_urls=urls("tracker"),
            triggers_urls=urls("triggers"),
            chat_urls=urls("chat"),
            leads_urls=urls("leads"),
            notifier_urls=urls("notifier"),
            smtp_sink_url=f"http://127.0.0.1:{s.smtp_http_port}",
            kafka_bootstrap=self.broker.bootstrap,
            database_url=self._pg_direct or "",
            triggers_token=s.triggers_token,
            reply_domain=s.reply_domain,
            inbound_secret=s.inbound_secret,
        )

    def pids(self) -> dict[str, int]:
        """Every running process by name (instances, broker, smtp): for RSS and CPU figures."""
        found = {
            instance.name: instance.process.pid
            for group in self.instances.values()
            for instance in group
            if instance.process is not None and instance.alive()
        }
        if self.broker.process is not None and self.broker.process.poll() is None:
            found["broker"] = self.broker.process.pid
        if self._smtp is not None and self._smtp.alive() and self._smtp.process is not None:
            found["smtp"] = self._smtp.process.pid
        return found

    # ---- faults ----------------------------------------------------------------------------

    def instance(self, service: str, index: int) -> Instance:
        return self.instances[service][index]

    def kill(self, service: str, index: int) -> None:
        """SIGKILL, as a crash or the OOM killer would: nothing is flushed or closed."""
        instance = self.instance(service, index)
        if instance.process is not None and instance.process.poll() is None:
            self.killed.append(Killed(service, index, time.time()))
            instance.process.send_signal(signal.SIGKILL)
            instance.process.wait()

    def restart(self, service: str, index: int) -> None:
        """Start it again (killing it first if it still runs) and wait until it is ready."""
        instance = self.instance(service, index)
        if instance.alive():
            self.kill(service, index)
        instance.launch()
        self._wait_ready(instance, relaunch=True)

    def kill_broker(self) -> None:
        """SIGKILL the broker; its log directory stays as it was."""
        self.broker.kill()

    def start_broker(self, timeout_s: float = 90.0) -> None:
        """Start it again on the same log directory and ports, and wait until it serves."""
        from beckon_devstack.broker import wait_until_serving

        self.broker.start(timeout_s=timeout_s)
        asyncio.run(wait_until_serving(self.broker.bootstrap, timeout_s=timeout_s))

    def restart_postgres(self) -> None:
        """Stop the embedded Postgres (fast shutdown: sessions are cut) and start it again on
        its data directory. Only for the embedded server: DATABASE_URL's is not ours to stop."""
        if self._postgres is None:
            raise RuntimeError("restart_postgres needs the embedded Postgres (DATABASE_URL is set)")
        self._postgres.stop()
        self._postgres.start()

    def stop_smtp(self) -> None:
        if self._smtp is not None and self._smtp.process is not None:
            self._smtp.process.send_signal(signal.SIGKILL)
            self._smtp.process.wait()

    def start_smtp(self) -> None:
        if self._smtp is None:
            raise RuntimeError("no SMTP sink in this stack (it runs with the notifier)")
        self._smtp.launch()
        self._wait_ready(self._smtp, relaunch=True)

    def jump_clock(self, service: str, seconds: float) -> None:
        """Set the wall clock of every instance of `service` to real time + `seconds` (at
        once, while they run). The service must be listed in `fake_clock`."""
        if service not in self.fake_clock:
            raise KeyError(f"{service}'s clock is the real one; list it in fake_clock")
        set_clock_offset(self._clock_file(service), seconds)

    def _clock_file(self, service: str) -> Path:
        path = self.directory / "clock" / f"{service}.offset"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def rewind(self, service: str, groups: Iterable[str], fraction: float = 0.1) -> list[Rewind]:
        """Deliver `fraction` of what `groups` consumed again: every instance of `service`
        stopped (SIGTERM: they commit what they finished), each group's committed offsets
        moved back, the instances started again and ready."""
        group = self.instances[service]
        for instance in group:
            if instance.process is not None:
                stop_process(instance.process, timeout_s=30)
        moves: list[Rewind] = []
        for name in groups:
            moves += asyncio.run(rewind_group(self.broker.bootstrap, name, fraction))
        for instance in group:
            instance.launch()
        for instance in group:
            self._wait_ready(instance, relaunch=True)
        return moves

    def kafka_link(self, service: str, index: int) -> TcpProxy:
        """The proxy between that instance and the broker (give it in `kafka_proxied`)."""
        try:
            return self._kafka_links[(service, index)]
        except KeyError:
            raise KeyError(f"{service}-{index} talks to Kafka directly; list it") from None

    def postgres_link(self, service: str, index: int) -> TcpProxy:
        """The proxy between that instance and Postgres (give it in `postgres_proxied`)."""
        try:
            return self._pg_links[(service, index)]
        except KeyError:
            raise KeyError(f"{service}-{index} talks to Postgres directly; list it") from None

    # ---- starting the parts ----------------------------------------------------------------

    def _start_broker_first_time(self) -> None:
        from beckon_messaging import ensure_topics

        from beckon_devstack.broker import wait_until_serving

        host = self.settings.host
        port = self.settings.broker_port
        controller = free_port(host)
        listeners = [f"PLAINTEXT://{host}:{port}", f"CONTROLLER://{host}:{controller}"]
        advertised = [f"PLAINTEXT://{host}:{port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        for service, index in self.kafka_proxied:
            name = f"CHAOS_{service.upper()}_{index}"
            inner = free_port(host)
            proxy = TcpProxy([(host, inner)], name=f"kafka-{service}-{index}")
            proxy.port = free_port(host)
            self._listener_ports[(service, index)] = inner
            self._kafka_links[(service, index)] = proxy
            listeners.append(f"{name}://{host}:{inner}")
            advertised.append(f"{name}://{host}:{proxy.port}")
            protocols.append(f"{name}:PLAINTEXT")
        self.broker = KafkaBroker(
            self.directory / "kafka",
            port=port,
            controller_port=controller,
            log_path=self.directory / "logs" / "broker.log",
            progress=self.say,
            settings={
                "listeners": ",".join(listeners),
                "advertised.listeners": ",".join(advertised),
                "listener.security.protocol.map": ",".join(protocols),
            },
        )
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.broker.start(timeout_s=START_TIMEOUT_S)
        asyncio.run(wait_until_serving(self.broker.bootstrap, timeout_s=START_TIMEOUT_S))
        asyncio.run(ensure_topics(self.broker.bootstrap, timeout_s=START_TIMEOUT_S))
        for proxy in self._kafka_links.values():
            proxy.start()
        self.say(f"Kafka on {self.broker.bootstrap}, {len(self._kafka_links)} proxied link(s)")

    def _start_postgres(self) -> None:
        import asyncpg

        server = self.database_url
        if server is None:
            self._postgres = EmbeddedPostgres(data_dir=self.directory / "pg")
            server = self._postgres.start()
        name = f"chaos_{secrets.token_hex(6)}"

        async def create() -> None:
            conn = await asyncpg.connect(server)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        self._pg_direct = _with_database(server, name)
        self._pg_upstream = _postgres_upstream(server)
        for service, index in self.postgres_proxied:
            self._pg_links[(service, index)] = TcpProxy(
                [self._pg_upstream], name=f"pg-{service}-{index}"
            ).start()
        self.say(f"Postgres database {name}, {len(self._pg_links)} proxied link(s)")

    def _start_smtp(self) -> None:
        spec = next(s for s in service_specs(self.settings) if s.name == "smtp")
        self._smtp = Instance(
            service="smtp",
            index=0,
            port=self.settings.smtp_http_port,
            argv=spec.argv,
            env={**os.environ, **spec.env},
            log_path=self.directory / "logs" / "smtp.log",
            health_url=spec.health_url or "",
        )
        self._smtp.launch()
        self._wait_ready(self._smtp)

    def _build_instances(self) -> None:
        specs = {spec.name: spec for spec in service_specs(self.settings)}
        host = self.settings.host
        for service in SERVICES:
            count = self.services.get(service, 0)
            if not count:
                continue
            spec = specs[service]
            group = [self._instance(spec, i) for i in range(count)]
            self.instances[service] = group
            # the port `make dev` gives the service: a round-robin over its instances
            balancer = TcpProxy([(host, instance.port) for instance in group], name=f"lb-{service}")
            balancer.port = getattr(self.settings, f"{service}_port")
            self._balancers[service] = balancer.start()

    def _instance(self, spec: ServiceSpec, index: int) -> Instance:
        service = spec.name
        prefix = _prefix(service)
        host = self.settings.host
        port = free_port(host)
        kafka = self.broker.bootstrap
        if (service, index) in self._kafka_links:
            kafka = self._kafka_links[(service, index)].address
        database = self._pg_direct or ""
        if (service, index) in self._pg_links and self._pg_direct:
            proxy = self._pg_links[(service, index)]
            database = _over_tcp(self._pg_direct, proxy.host, proxy.port)
        env = {
            key: Template(value).safe_substitute(kafka_bootstrap=kafka, database_url=database)
            for key, value in spec.env.items()
        }
        env[f"{prefix}PORT"] = str(port)
        if service == "triggers":
            data_dir = self.directory / "state" / f"triggers-{index}"
            data_dir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last part
            env["TRIGGERS_DATA_DIR"] = str(data_dir)
        if index > 0 and f"{prefix}MIGRATE_ON_START" in env:
            env[f"{prefix}MIGRATE_ON_START"] = "false"  # the first instance migrated
        if service == "tracker":
            env.update(UNLIMITED_TRACKER)
        if service == "triggers" and "TRIGGERS_SEED_RULES_FILE" in env:
            seeded = Path(env["TRIGGERS_SEED_RULES_FILE"])
            env["TRIGGERS_SEED_RULES_FILE"] = str(
                uncapped_rules(seeded, self.directory / "state" / "rules.yaml")
            )
        if service in self.fake_clock:
            env.update(faketime_env(self._clock_file(service)))
        env.update(self.extra_env.get(service, {}))
        return Instance(
            service=service,
            index=index,
            port=port,
            argv=spec.argv,
            env={**os.environ, **env},
            log_path=self.directory / "logs" / f"{service}-{index}.log",
            health_url=f"http://{host}:{port}/readyz",
        )

    def _wait_ready(
        self, instance: Instance, timeout_s: float = START_TIMEOUT_S, *, relaunch: bool = False
    ) -> None:
        """Until `instance` answers its health URL. An instance that exits while starting
        fails the stack's first start; a restarted one (`relaunch`) is started again after a
        growing pause, as an orchestrator does: a service started while the broker is away
        gives up after its own start timeout and exits (a mixed run restarted the notifier
        during a 75 s broker outage)."""
        deadline = time.monotonic() + timeout_s
        pause = 1.0
        with httpx.Client(timeout=5.0) as client:
            while True:
                if not instance.alive():
                    code = instance.process.returncode if instance.process else None
                    if instance.starts < 5 and self._move_if_port_taken(instance):
                        instance.launch()
                        continue
                    if not relaunch or time.monotonic() + pause > deadline:
                        raise RuntimeError(
                            f"{instance.name} exited ({code}) while starting:\n"
                            f"{instance.log_tail()}"
                        )
                    self.say(
                        f"{instance.name} exited ({code}) while starting; again in {pause:.0f} s"
                    )
                    time.sleep(pause)
                    pause = min(pause * 2, 10.0)
                    instance.launch()
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(instance.health_url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{instance.name} not ready:\n{instance.log_tail()}")
                time.sleep(0.2)

    def _move_if_port_taken(self, instance: Instance) -> bool:
        """A port `free_port` gave at build time can be taken before the instance binds it
        (the kernel hands ephemeral ports to outgoing connections too: a CI run's tracker-1
        met "address already in use"). At the stack's first start, before anyone has its
        URL, such an instance moves to a new port, its balancer's upstream with it."""
        if self.started or instance.service not in self.instances:
            return False
        if "address already in use" not in instance.log_tail(10):
            return False
        host, old = self.settings.host, instance.port
        instance.port = free_port(host)
        instance.env[f"{_prefix(instance.service)}PORT"] = str(instance.port)
        instance.health_url = f"http://{host}:{instance.port}/readyz"
        balancer = self._balancers[instance.service]
        balancer.upstreams = [
            (host, instance.port) if upstream == (host, old) else upstream
            for upstream in balancer.upstreams
        ]
        self.say(f"{instance.name}: port {old} was taken; on {instance.port} instead")
        return True

    def wait_ready(self, service: str, index: int, timeout_s: float = START_TIMEOUT_S) -> None:
        self._wait_ready(self.instance(service, index), timeout_s)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _postgres_upstream(url: str) -> tuple[str, int] | str:
    """Where the server listens: host and port, or its unix socket (`?host=/dir`)."""
    parts = urlsplit(url)
    query = dict(part.partition("=")[::2] for part in parts.query.split("&") if part)
    socket_dir = query.get("host")
    port = parts.port or 5432
    if socket_dir and socket_dir.startswith("/"):
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (parts.hostname or "127.0.0.1", port)


def _over_tcp(url: str, host: str, port: int) -> str:
    """The same database and user, reached at host:port (a proxy) instead."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    password = f":{parts.password}" if parts.password else ""
    query = "&".join(
        part for part in parts.query.split("&") if part and not part.startswith("host=")
    )
    netloc = f"{user}{password}@{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
