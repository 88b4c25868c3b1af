"""`make dev`: start the whole system on one machine, watch it, stop it cleanly.

In order: the Apache Kafka broker (then every registry topic; its data in .dev/kafka),
Postgres (DATABASE_URL, or an embedded server with data in .dev/pg), the SMTP sink, the
tracker, triggers, chat (which migrates its schema and seeds the demo agents) and the demo
store. Each is health-checked before the next starts. The terminal shows only the
supervisor's progress lines and, once everything is up, the table of addresses and demo keys:
each child's own output goes to .dev/logs/<name>.log (and to the terminal as well with
--show-output). Nothing is restarted silently: when a child dies, its last lines are shown,
the stack stops and exits non-zero. Ctrl-C or SIGTERM stops everything in reverse order.

A new service plugs in with one `ServiceSpec` entry in `service_specs()`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import IO, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from beckon_devstack.config import (
    DEMO_AGENT_EMAIL,
    DEMO_AGENT_PASSWORD,
    DEMO_CHAT_SEED_FILE,
    DEMO_LEADS_SEED_FILE,
    DEMO_RULES_FILE,
    DEMO_SITE_ID,
    DEMO_SITE_KEY,
    DEMO_WRITE_KEY,
    DevStackSettings,
)
from beckon_devstack.ports import PortInUseError, ensure_free, is_listening
from beckon_devstack.postgres import EmbeddedPostgres, resolve_database_url

READY_MARKER = "Beckon dev stack ready"
STOPPED_MARKER = "Beckon dev stack stopped"
BROKER_KEEPS_DATA = (
    "the Kafka broker keeps topics, events and consumer offsets in {path} across restarts "
    "(`make clean` wipes them with the rest of the state)"
)

# `uv run` passes the terminal's Ctrl-C on to us as well: one keypress, two SIGINTs
DUPLICATE_SIGNAL_WINDOW_S = 1.0
# How many of a child's last output lines are shown when it fails (a traceback fits)
LAST_LINES = 40

Probe = Callable[[], Awaitable[str]]


class StartupError(Exception):
    """A component could not be brought up; the message says why, for a person."""


# --- declaring services ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One child process of the dev stack.

    `env` values may use `${database_url}` and `${kafka_bootstrap}`; they are filled in
    once the components they come from are up. Readiness is a 2xx from `health_url`, or
    `probe` for things that do not speak HTTP. `ports` are checked to be free before
    anything starts; `urls` go in the table printed once everything is ready.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None
    depends_on: tuple[str, ...] = ()
    ports: tuple[tuple[str, int], ...] = ()
    urls: tuple[tuple[str, str], ...] = ()
    probe: Probe | None = None


def service_specs(settings: DevStackSettings) -> list[ServiceSpec]:
    """Every child process of `make dev`, in start order. Add new services here."""
    host = settings.host
    python = sys.executable
    tracker_url = f"http://{host}:{settings.tracker_port}"
    store_url = f"http://{host}:{settings.store_port}"
    chat_url = f"http://{host}:{settings.chat_port}"
    leads_url = f"http://{host}:{settings.leads_port}"
    notifier_url = f"http://{host}:{settings.notifier_port}"
    sink_url = f"http://{host}:{settings.smtp_http_port}"
    store_argv: tuple[str, ...] = (
        *(python, "-m", "beckon_devstack.demo_store"),
        *("--host", host, "--port", str(settings.store_port)),
        *("--tracker-url", tracker_url, "--site-key", DEMO_SITE_KEY),
        *("--chat-url", chat_url),
    )
    store_note = ""
    if settings.allow_automation:
        store_argv = (*store_argv, "--allow-automation")
        store_note = "   (automated browsers are tracked too: --allow-automation)"
    store_origins = [
        f"http://127.0.0.1:{settings.store_port}",
        f"http://localhost:{settings.store_port}",
    ]
    demo_site = json.dumps(
        [
            {
                "site_id": DEMO_SITE_ID,
                "site_key": DEMO_SITE_KEY,
                "write_key": DEMO_WRITE_KEY,
                "allowed_origins": store_origins,
            }
        ]
    )
    return [
        ServiceSpec(
            name="broker",
            argv=(
                *(python, "-m", "beckon_devstack.broker", "--host", host),
                *("--port", str(settings.broker_port), "--data-dir", str(settings.kafka_dir)),
            ),
            ports=(("Kafka broker", settings.broker_port),),
            urls=(
                ("Kafka broker", f"{settings.kafka_bootstrap}   (data in {settings.kafka_dir})"),
            ),
            probe=lambda: _broker_ready(settings.kafka_bootstrap, settings.start_timeout_s),
        ),
        ServiceSpec(
            name="smtp",
            argv=(
                *(python, "-m", "beckon_devstack.smtp_sink", "--host", host),
                *("--smtp-port", str(settings.smtp_port)),
                *("--http-port", str(settings.smtp_http_port)),
                *("--mail-dir", str(settings.mail_dir)),
                # mail for the reply domain goes to the notifier, as a provider's webhook would
                *("--handoff-domain", settings.reply_domain),
                *("--handoff-url", f"{notifier_url}/v1/inbound/mail"),
            ),
            env={"BECKON_SINK_HANDOFF_SECRET": settings.inbound_secret},
            health_url=f"{sink_url}/healthz",
            ports=(
                ("SMTP sink (SMTP)", settings.smtp_port),
                ("SMTP sink (mail UI)", settings.smtp_http_port),
            ),
            urls=(
                ("mail UI / API", f"{sink_url}   (/api/messages: every e-mail Beckon sent)"),
                (
                    "SMTP",
                    f"{host}:{settings.smtp_port}   "
                    f"(mail to *@{settings.reply_domain} goes to the notifier)",
                ),
            ),
        ),
        ServiceSpec(
            name="tracker",
            argv=(python, "-m", "tracker"),
            env={
                "TRACKER_KAFKA_BOOTSTRAP": "${kafka_bootstrap}",
                "TRACKER_HOST": host,
                "TRACKER_PORT": str(settings.tracker_port),
                "TRACKER_SITES": demo_site,
                "TRACKER_LOG_JSON": "true",
            },
            health_url=f"{tracker_url}/readyz",
            depends_on=("broker",),
            ports=(("tracker", settings.tracker_port),),
            urls=(
                ("tracker", tracker_url),
                ("snippet", f"{tracker_url}{settings.snippet_path}   (inline loader: /loader.js)"),
                # the keys the tracker is given for the demo site (TRACKER_SITES above)
                ("demo site key", f"{DEMO_SITE_KEY}   (site_id {DEMO_SITE_ID}: the snippet's key)"),
                (
                    "demo write key",
                    f"{DEMO_WRITE_KEY}   (Segment write key: basic-auth user for /v1/batch)",
                ),
            ),
        ),
        ServiceSpec(
            name="triggers",
            argv=(python, "-m", "triggers"),
            env={
                "TRIGGERS_KAFKA_BOOTSTRAP": "${kafka_bootstrap}",
                "TRIGGERS_HOST": host,
                "TRIGGERS_PORT": str(settings.triggers_port),
                "TRIGGERS_DATA_DIR": str(settings.state_dir / "triggers"),
                "TRIGGERS_SEED_RULES_FILE": str(DEMO_RULES_FILE),
                "TRIGGERS_API_TOKEN": settings.triggers_token,
                "TRIGGERS_LOG_JSON": "true",
            },
            health_url=f"http://{host}:{settings.triggers_port}/readyz",
            depends_on=("broker",),
            ports=(("triggers", settings.triggers_port),),
            urls=(
                (
                    "rule stats (demo)",
                    f"http://{host}:{settings.triggers_port}/v1/stats/demo   (needs the token)",
                ),
                (
                    "triggers API token",
                    f"{settings.triggers_token}   (Authorization: Bearer <token>)",
                ),
            ),
        ),
        ServiceSpec(
            name="chat",
            argv=(python, "-m", "chat"),
            env={
                "CHAT_DATABASE_URL": "${database_url}",
                "CHAT_KAFKA_BOOTSTRAP": "${kafka_bootstrap}",
                "CHAT_HOST": host,
                "CHAT_PORT": str(settings.chat_port),
                "CHAT_MIGRATE_ON_START": "true",
                "CHAT_TRIGGERS_URL": f"http://{host}:{settings.triggers_port}",
                "CHAT_TRIGGERS_TOKEN": settings.triggers_token,
                "CHAT_SEED_FILE": str(DEMO_CHAT_SEED_FILE),
                "CHAT_SEED_ORIGINS": json.dumps(store_origins),
                # the console's leads views call the leads API with the agent's session
                "CHAT_LEADS_URL": leads_url,
                # and its e-mail views (offline inbox, delivery log, settings) the notifier
                "CHAT_NOTIFIER_URL": notifier_url,
                "CHAT_LOG_JSON": "true",
            },
            health_url=f"{chat_url}/readyz",
            depends_on=("broker", "postgres"),
            ports=(("chat", settings.chat_port),),
            urls=(
                (
                    "agent console",
                    f"{chat_url}/console/   ({DEMO_AGENT_EMAIL} / {DEMO_AGENT_PASSWORD})",
                ),
                ("chat widget", f"{chat_url}/widget.js"),
            ),
        ),
        ServiceSpec(
            name="leads",
            argv=(python, "-m", "leads"),
            env={
                "LEADS_DATABASE_URL": "${database_url}",
                "LEADS_KAFKA_BOOTSTRAP": "${kafka_bootstrap}",
                "LEADS_HOST": host,
                "LEADS_PORT": str(settings.leads_port),
                "LEADS_MIGRATE_ON_START": "true",
                "LEADS_SEED_FILE": str(DEMO_LEADS_SEED_FILE),
                "LEADS_CHAT_URL": chat_url,
                # the console (served by chat) may call with the agent's cookie (CORS)
                "LEADS_CONSOLE_ORIGINS": chat_url,
                # the dev stack's CRM receivers run on this machine, over plain HTTP
                "LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "LEADS_WEBHOOK_ALLOW_HTTP": "true",
                "LEADS_LOG_JSON": "true",
            },
            health_url=f"{leads_url}/readyz",
            depends_on=("broker", "postgres"),
            ports=(("leads", settings.leads_port),),
            urls=(("leads API", f"{leads_url}/docs   (the console's session works here)"),),
        ),
        ServiceSpec(
            name="notifier",
            argv=(python, "-m", "notifier"),
            env={
                "NOTIFIER_DATABASE_URL": "${database_url}",
                "NOTIFIER_KAFKA_BOOTSTRAP": "${kafka_bootstrap}",
                "NOTIFIER_HOST": host,
                "NOTIFIER_PORT": str(settings.notifier_port),
                "NOTIFIER_MIGRATE_ON_START": "true",
                "NOTIFIER_SMTP_HOST": host,
                "NOTIFIER_SMTP_PORT": str(settings.smtp_port),
                "NOTIFIER_FROM_ADDRESS": "chat@demo.beckon.dev",
                "NOTIFIER_REPLY_DOMAIN": settings.reply_domain,
                "NOTIFIER_INBOUND_SECRET": settings.inbound_secret,
                "NOTIFIER_PUBLIC_URL": notifier_url,
                "NOTIFIER_CONSOLE_URL": f"{chat_url}/console/",
                "NOTIFIER_CHAT_URL": chat_url,
                # the console (served by chat) may call with the agent's cookie (CORS)
                "NOTIFIER_CONSOLE_ORIGINS": chat_url,
                # the demo answers come by e-mail a minute after the visitor stopped looking
                "NOTIFIER_UNREAD_AFTER_S": "60",
                "NOTIFIER_LOG_JSON": "true",
            },
            health_url=f"{notifier_url}/readyz",
            depends_on=("broker", "postgres", "smtp"),
            ports=(("notifier", settings.notifier_port),),
            urls=(
                ("notifier API", f"{notifier_url}/docs   (the console's session works here)"),
                ("read the mail", f"{sink_url}   (transcripts, answers, lead alerts)"),
            ),
        ),
        ServiceSpec(
            name="store",
            argv=store_argv,
            health_url=f"{store_url}/healthz",
            depends_on=("tracker", "chat"),
            ports=(("demo store", settings.store_port),),
            urls=(("demo store", f"{store_url}{store_note}"),),
        ),
    ]


async def _broker_ready(bootstrap: str, timeout_s: float) -> str:
    from beckon_messaging import ensure_topics

    from beckon_devstack.broker import wait_until_serving

    host, _, port = bootstrap.rpartition(":")
    # a plain TCP connect first: cheap, and it keeps aiokafka's retry noise out of the output
    while True:
        if is_listening(host, int(port)):
            break
        await asyncio.sleep(0.05)
    await wait_until_serving(bootstrap, timeout_s)
    created = await ensure_topics(bootstrap, timeout_s=timeout_s)
    return f"ready on {bootstrap}, {len(created)} topics created"


# --- ordering (pure) ------------------------------------------------------------------------


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...


N = TypeVar("N", bound=Named)


def resolve_order(
    items: Sequence[N], *, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> list[N]:
    """The items to start, dependencies first, otherwise in declaration order.

    `only` keeps those names and whatever they depend on; `exclude` drops names, and it is an
    error to drop something a kept item needs. Unknown names and cycles are errors too.
    """
    by_name = {item.name: item for item in items}
    known = ", ".join(by_name)
    for item in items:
        for dependency in item.depends_on:
            if dependency not in by_name:
                raise ValueError(f"{item.name} depends on {dependency!r}, which is not defined")
    excluded = set(exclude)
    wanted = list(by_name) if only is None else list(dict.fromkeys(only))
    for name in [*wanted, *excluded]:
        if name not in by_name:
            raise ValueError(f"unknown service {name!r}; the services are: {known}")

    ordered: list[N] = []
    visiting: list[str] = []

    def visit(name: str, needed_by: str | None) -> None:
        if any(item.name == name for item in ordered):
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise ValueError(f"services depend on each other in a cycle: {cycle}")
        if name in excluded:
            if needed_by is None:
                return
            raise ValueError(f"{needed_by} needs {name}, which is excluded")
        visiting.append(name)
        for dependency in by_name[name].depends_on:
            visit(dependency, name)
        visiting.pop()
        ordered.append(by_name[name])

    # declaration order decides among independent items, so the start order is predictable
    selected = set(wanted)
    for name in by_name:
        if name in selected:
            visit(name, None)
    return ordered


# --- console --------------------------------------------------------------------------------

# Fields of a JSON log line that only matter to machines; the console shows the rest.
_QUIET_LOG_FIELDS = frozenset(
    {"ts", "level", "msg", "service", "logger", "color_message", "trace_id", "span_id", "exc"}
)


def readable(line: str) -> list[str]:
    """A child's output line for people: JSON log records become `LEVEL msg key=value`.

    The log file keeps the original line; anything that is not a JSON record passes as is.
    """
    if not line.startswith("{"):
        return [line]
    try:
        record = json.loads(line)
    except ValueError:
        return [line]
    if not isinstance(record, dict) or "msg" not in record:
        return [line]
    extras = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in record.items()
        if key not in _QUIET_LOG_FIELDS
    )
    level = str(record.get("level", "")).upper()
    first = " ".join(part for part in (level.ljust(5), str(record["msg"]), extras) if part)
    exception = record.get("exc")
    return [first, *str(exception).splitlines()] if exception else [first]


_COLORS = ("36", "33", "35", "32", "34", "91", "96", "93")


class Console:
    """Everything the supervisor prints goes through here, line by line, flushed."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.width = 8
        self._colors: dict[str, str] = {}

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def say(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def bold(self, text: str) -> str:
        return self._paint(text, "1")

    def alarm(self, text: str) -> None:
        self.say(self._paint(text, "1;31"))

    def child(self, name: str, line: str) -> None:
        code = self._colors.setdefault(name, _COLORS[len(self._colors) % len(_COLORS)])
        self.say(f"{self._paint(name.ljust(self.width), code)} | {line}")


# --- running components ---------------------------------------------------------------------


class Component(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...

    def ports(self) -> list[tuple[str, int]]: ...

    async def start(self, context: dict[str, str]) -> str:
        """Start and wait until healthy; return what to print after "ready"."""
        ...

    async def wait_exit(self) -> str:
        """Return, with the reason, when the component stops on its own."""
        ...

    async def stop(self, timeout_s: float, force: asyncio.Event) -> str: ...

    def urls(self) -> list[tuple[str, str]]: ...

    def last_output(self) -> tuple[list[str], str]:
        """Its last output lines not yet shown on the terminal, and where the rest is."""
        ...


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child if the supervisor itself is killed."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ProcessComponent:
    """A ServiceSpec running as a child in its own process group (Ctrl-C reaches only us)."""

    def __init__(
        self,
        spec: ServiceSpec,
        console: Console,
        log_dir: Path,
        start_timeout_s: float,
        *,
        show_output: bool = False,
    ) -> None:
        self.spec = spec
        self.console = console
        self.start_timeout_s = start_timeout_s
        self.show_output = show_output
        self.log_path = log_dir / f"{spec.name}.log"
        self.recent: deque[str] = deque(maxlen=LAST_LINES)
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._last_health = "no answer yet"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.spec.depends_on

    def ports(self) -> list[tuple[str, int]]:
        return list(self.spec.ports)

    def urls(self) -> list[tuple[str, str]]:
        return list(self.spec.urls)

    def last_output(self) -> tuple[list[str], str]:
        return ([] if self.show_output else list(self.recent)), str(self.log_path)

    async def start(self, context: dict[str, str]) -> str:
        try:
            env = {
                name: Template(value).substitute(context) for name, value in self.spec.env.items()
            }
        except KeyError as missing:
            raise StartupError(f"its env uses ${missing.args[0]}, which nothing provides") from None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("a", encoding="utf-8")
        log.write(f"===== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.spec.argv)}\n")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                limit=1 << 20,
            )
        except OSError as error:
            log.close()
            raise StartupError(f"could not run {self.spec.argv[0]}: {error}") from None
        self._pump = asyncio.create_task(self._copy_output(self.process, log))
        return await self._wait_until_healthy(self.process)

    async def _wait_until_healthy(self, process: asyncio.subprocess.Process) -> str:
        exited = asyncio.create_task(process.wait())
        healthy = asyncio.create_task(self._probe())
        try:
            done, _ = await asyncio.wait(
                {exited, healthy}, timeout=self.start_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (exited, healthy):
                task.cancel()
            await asyncio.gather(exited, healthy, return_exceptions=True)
        if healthy in done and healthy.exception() is None:
            return healthy.result()
        if exited in done:
            await self._drain()
            raise StartupError(f"{_describe_exit(exited.result())} during start-up")
        if healthy in done:
            raise StartupError(f"health check failed: {healthy.exception()}")
        target = self.spec.health_url or "its readiness check"
        raise StartupError(
            f"not healthy after {self.start_timeout_s:.0f}s ({target}: {self._last_health})"
        )

    async def _probe(self) -> str:
        if self.spec.probe is not None:
            return await self.spec.probe()
        if self.spec.health_url is None:
            return "started"
        url = self.spec.health_url
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                try:
                    response = await client.get(url)
                except httpx.HTTPError as error:
                    self._last_health = type(error).__name__
                else:
                    if response.is_success:
                        origin = urlunsplit(urlsplit(url)._replace(path="", query=""))
                        return f"ready on {origin}"
                    self._last_health = f"HTTP {response.status_code}"
                await asyncio.sleep(0.2)

    async def _copy_output(self, process: asyncio.subprocess.Process, log: IO[str]) -> None:
        assert process.stdout is not None
        try:
            while True:
                try:
                    chunk = await process.stdout.readline()
                except ValueError:  # a line longer than the limit: take what is buffered
                    chunk = await process.stdout.read(1 << 20)
                if not chunk:
                    return
                line = chunk.decode("utf-8", errors="replace").rstrip("\r\n")
                log.write(line + "\n")
                log.flush()
                for readable_line in readable(line):
                    self.recent.append(readable_line)
                    if self.show_output:
                        self.console.child(self.name, readable_line)
        finally:
            log.close()

    async def _drain(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), timeout=2.0)

    async def wait_exit(self) -> str:
        assert self.process is not None
        returncode = await self.process.wait()
        await self._drain()
        return _describe_exit(returncode)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def stop(self, timeout_s: float, force: asyncio.Event) -> str:
        process = self.process
        if process is None:
            return "not started"
        if process.returncode is not None:
            self._signal_group(signal.SIGKILL)  # leftovers of a child that already exited
            await self._drain()
            return f"had already {_describe_exit(process.returncode)}"
        self._signal_group(signal.SIGTERM)
        exited = asyncio.create_task(process.wait())
        forced = asyncio.create_task(force.wait())
        await asyncio.wait({exited, forced}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        outcome = "stopped"
        if not exited.done():
            self._signal_group(signal.SIGKILL)
            outcome = f"killed (did not stop within {timeout_s:.0f}s of SIGTERM)"
            if force.is_set():
                outcome = "killed (second Ctrl-C)"
        await exited
        self._signal_group(signal.SIGKILL)  # anything it left behind in its process group
        await self._drain()
        return outcome


class PostgresComponent:
    """Postgres is not our child: pgserver runs it as a daemon, and we stop it on the way out."""

    name = "postgres"
    depends_on: tuple[str, ...] = ()

    def __init__(self, settings: DevStackSettings) -> None:
        self.settings = settings
        self.url: str | None = None
        self.embedded: EmbeddedPostgres | None = None
        self._starting: asyncio.Future[tuple[str, EmbeddedPostgres | None]] | None = None

    def ports(self) -> list[tuple[str, int]]:
        return []  # the embedded server listens on a Unix socket in its data directory

    def urls(self) -> list[tuple[str, str]]:
        return [("Postgres", _mask_password(self.url or ""))]

    def last_output(self) -> tuple[list[str], str]:
        if self.settings.database_url:
            return [], "the log of the server at DATABASE_URL"
        return [], str(self.settings.pg_data_dir / "log")

    async def start(self, context: dict[str, str]) -> str:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            import pgserver  # noqa: F401
        data_dir = self.settings.pg_data_dir.resolve()
        if not self.settings.database_url:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
        # a thread: pgserver blocks while initdb and pg_ctl run; shielded so that a Ctrl-C
        # during start-up still learns about the server and stops it
        self._starting = asyncio.ensure_future(
            asyncio.to_thread(resolve_database_url, self.settings.database_url, data_dir)
        )
        try:
            url, self.embedded = await asyncio.shield(self._starting)
        except Exception as error:
            raise StartupError(f"could not start the embedded Postgres: {error}") from error
        self.url = context["database_url"] = url
        await self._wait_until_answering(url)
        if self.embedded is None:
            return f"ready at {_mask_password(url)} (DATABASE_URL)"
        return f"ready, embedded, data in {self.settings.pg_data_dir}"

    async def _wait_until_answering(self, url: str) -> None:
        import asyncpg

        deadline = time.monotonic() + self.settings.start_timeout_s
        while True:
            try:
                connection = await asyncpg.connect(url, timeout=5)
                try:
                    await connection.fetchval("select 1")
                finally:
                    await connection.close()
                return
            except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as error:
                if time.monotonic() > deadline:  # not up (yet): worth waiting for
                    raise StartupError(
                        f"Postgres at {_mask_password(url)} does not answer: {error}"
                    ) from None
                await asyncio.sleep(0.3)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
                # wrong password, no such database, a malformed URL: waiting will not help
                raise StartupError(
                    f"Postgres at {_mask_password(url)} refused us: {error}"
                ) from None

    async def wait_exit(self) -> str:
        if self.embedded is None:  # someone else's server: not ours to watch
            await asyncio.Event().wait()
        while True:
            if self.embedded is None or not self.embedded.is_running():
                break
            await asyncio.sleep(1.0)
        return "stopped (the embedded Postgres server is gone)"

    async def stop(self, timeout_s: float, force: asyncio.Event) -> str:
        if self._starting is not None and self.embedded is None:
            with contextlib.suppress(Exception):
                self.url, self.embedded = await self._starting
        if self.embedded is None:
            return "left running (DATABASE_URL is not ours)" if self.url else "not started"
        await asyncio.to_thread(self.embedded.stop)
        self.embedded = None
        return f"stopped (data kept in {self.settings.pg_data_dir})"


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- the supervisor -------------------------------------------------------------------------


def plan(
    settings: DevStackSettings,
    console: Console,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    specs: Sequence[ServiceSpec] | None = None,
) -> list[Component]:
    """The components to run, in start order: broker, postgres, then the service specs."""
    specs = list(service_specs(settings) if specs is None else specs)
    processes: list[Component] = [
        ProcessComponent(
            spec,
            console,
            settings.log_dir,
            settings.start_timeout_s,
            show_output=settings.show_output,
        )
        for spec in specs
    ]
    postgres: Component = PostgresComponent(settings)
    broker_first = [c for c in processes if c.name == "broker"]
    others = [c for c in processes if c.name != "broker"]
    return resolve_order([*broker_first, postgres, *others], only=only, exclude=exclude)


def check_ports(components: Iterable[Component], host: str) -> None:
    """Raise PortInUseError for the first wanted port that something else holds."""
    for component in components:
        for what, port in component.ports():
            ensure_free(what, host, port)


class Supervisor:
    def __init__(
        self, settings: DevStackSettings, components: list[Component], console: Console
    ) -> None:
        self.settings = settings
        self.components = components
        self.console = console
        self.started: list[Component] = []
        self.context: dict[str, str] = {"kafka_bootstrap": settings.kafka_bootstrap}
        self.stop_requested = asyncio.Event()
        self.force = asyncio.Event()
        self.stop_reason = ""
        self.first_signal_at = 0.0

    def _on_signal(self, signum: signal.Signals) -> None:
        now = time.monotonic()
        if not self.stop_requested.is_set():
            self.stop_reason = signum.name
            self.first_signal_at = now
            self.stop_requested.set()
        elif now - self.first_signal_at > DUPLICATE_SIGNAL_WINDOW_S and not self.force.is_set():
            self.force.set()
            self.console.alarm(f"{signum.name} again: killing what is left")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await self._run()
        finally:
            await self._stop_all()
            self.console.say(f"{STOPPED_MARKER}.")
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _run(self) -> int:
        names = ", ".join(component.name for component in self.components)
        self.console.say(self.console.bold(f"Beckon dev stack: starting {names}"))
        if any(component.name == "broker" for component in self.components):
            self.console.say(f"Note: {BROKER_KEEPS_DATA.format(path=self.settings.kafka_dir)}.")
        if not self.settings.show_output:
            self.console.say(
                f"Each service's output goes to {self.settings.log_dir}/<service>.log "
                "(--show-output shows it here too)."
            )
        began = time.monotonic()
        starting = asyncio.create_task(self._start_all())
        stopping = asyncio.create_task(self.stop_requested.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            self.console.say(f"{self.stop_reason} during start-up: stopping what was started")
            return 0
        if isinstance(starting.exception(), StartupError):
            stopping.cancel()
            self.console.alarm("The dev stack could not start; stopping what was started.")
            return 1
        starting.result()  # anything else is a bug: let it show its traceback
        self._print_ready(time.monotonic() - began)

        watchers = {asyncio.create_task(c.wait_exit()): c for c in self.started}
        done, _ = await asyncio.wait({stopping, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if stopping in done:
            self.console.say(f"{self.stop_reason}: stopping the dev stack")
            return 0
        for task, component in watchers.items():
            if task in done and not task.cancelled() and task.exception() is None:
                self.console.alarm(
                    f"!!! {component.name} {task.result()}. The dev stack never restarts "
                    "services silently, so it stops now."
                )
                self._show_last_output(component, "!!! ")
        stopping.cancel()
        return 1

    async def _start_all(self) -> None:
        total = len(self.components)
        for index, component in enumerate(self.components, start=1):
            self.started.append(component)
            began = time.monotonic()
            label = f"[{index}/{total}] {component.name.ljust(self.console.width)}"
            try:
                detail = await component.start(self.context)
            except StartupError as error:
                self.console.alarm(f"{label} … FAILED: {error}")
                self._show_last_output(component, "    ")
                raise
            self.console.say(f"{label} … {detail} ({time.monotonic() - began:.1f}s)")

    def _show_last_output(self, component: Component, indent: str) -> None:
        """A failed component's last lines, which went only to its log file until now."""
        lines, log = component.last_output()
        if not lines:
            self.console.say(f"{indent}Its output is in {log}.")
            return
        last = "Its last line" if len(lines) == 1 else f"Its last {len(lines)} lines"
        self.console.say(f"{indent}{last} (the whole output is in {log}):")
        for line in lines:
            self.console.child(component.name, line)

    def _print_ready(self, elapsed: float) -> None:
        rows = [row for component in reversed(self.started) for row in component.urls()]
        rows.append(("logs", f"{self.settings.log_dir}/<service>.log"))
        width = max(len(label) for label, _ in rows)
        self.console.say()
        self.console.say(
            self.console.bold(f"{READY_MARKER} in {elapsed:.1f}s. Ctrl-C stops everything.")
        )
        for label, url in rows:
            self.console.say(f"  {label.ljust(width)}  {url}")
        self.console.say()

    async def _stop_all(self) -> None:
        while self.started:
            component = self.started.pop()
            began = time.monotonic()
            try:
                outcome = await component.stop(self.settings.stop_timeout_s, self.force)
            except Exception as error:  # keep stopping the others whatever happens to one
                outcome = f"could not be stopped cleanly: {error!r}"
            label = component.name.ljust(self.console.width)
            self.console.say(f"  {label} {outcome} ({time.monotonic() - began:.1f}s)")


# --- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beckon-dev",
        description="Start Beckon's embedded dev stack; Ctrl-C stops it. "
        "Every option can also be set as BECKON_DEV_<NAME> in the environment.",
    )
    parser.add_argument("--no-store", action="store_true", help="do not start the demo store")
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated services to start (with what they need), e.g. broker,postgres,smtp",
    )
    parser.add_argument("--host", help="address every service binds to (default 127.0.0.1)")
    for option, what in (
        ("broker-port", "Kafka broker (default 9092)"),
        ("smtp-port", "SMTP sink (default 1025)"),
        ("smtp-http-port", "mail UI/API (default 8025)"),
        ("tracker-port", "tracker (default 8001)"),
        ("triggers-port", "triggers worker HTTP (default 8002)"),
        ("chat-port", "chat service: widget and agent console (default 8003)"),
        ("leads-port", "leads service: leads API (default 8004)"),
        ("notifier-port", "notifier: e-mail API and inbound mail (default 8005)"),
        ("store-port", "demo store (default 8000)"),
    ):
        parser.add_argument(f"--{option}", type=int, metavar="PORT", help=f"{what}; 0 = any free")
    parser.add_argument("--state-dir", type=Path, help="where .dev state goes (default .dev)")
    parser.add_argument(
        "--show-output",
        action="store_true",
        default=None,
        help="also show every service's output here, prefixed with its name "
        "(it always goes to <state-dir>/logs/<name>.log)",
    )
    parser.add_argument(
        "--allow-automation",
        action="store_true",
        default=None,
        help="let the demo store's snippet track browsers driven by automation "
        "(navigator.webdriver: Playwright, Selenium), which it skips as bots otherwise",
    )
    return parser


def load_settings(args: argparse.Namespace) -> DevStackSettings:
    """Environment first, then the flags given on the command line on top."""
    overrides = {
        name: getattr(args, name)
        for name in (
            "host",
            "broker_port",
            "smtp_port",
            "smtp_http_port",
            "tracker_port",
            "triggers_port",
            "chat_port",
            "leads_port",
            "notifier_port",
            "store_port",
            "state_dir",
            "show_output",
            "allow_automation",
        )
        if getattr(args, name) is not None
    }
    return DevStackSettings(**overrides).with_free_ports()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        settings = load_settings(args)
    except ValidationError as error:
        print(f"beckon-dev: invalid settings:\n{error}", file=sys.stderr)
        return 2
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    try:
        components = plan(settings, console, only=only, exclude=["store"] if args.no_store else [])
    except (ValueError, FileNotFoundError) as error:
        print(f"beckon-dev: {error}", file=sys.stderr)
        return 2
    console.width = max(len(component.name) for component in components)
    try:
        check_ports(components, settings.host)
    except PortInUseError as error:
        print(f"beckon-dev: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(Supervisor(settings, components, console).run())
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return 0


if __name__ == "__main__":
    sys.exit(main())
