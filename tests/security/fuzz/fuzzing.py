"""What every service's fuzz test shares: schemathesis against the service's own OpenAPI
document, in process (ASGI), the app's real lifespan on the session's Postgres and broker.

Bounded for `make test`: BECKON_FUZZ_EXAMPLES examples per operation (default 6), valid and
invalid inputs alike, derandomized (the same inputs on every run, no example database), so CI
is deterministic. A longer run: `BECKON_FUZZ_EXAMPLES=200 BECKON_FUZZ_SEED=random uv run pytest
tests/security/fuzz` (any other seed value is an integer; "random" draws new inputs each run).

The checks: no 5xx on any input (`not_a_server_error`), and an answer of a status the operation
declares conforms to its declared schema (`response_schema_conformance`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import schemathesis
from api_testing import Agent, ChatStub, chat_stub
from chat_testing import create_database
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = int(os.environ.get("BECKON_FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("BECKON_FUZZ_SEED", "derandomize")
CHECKS = [not_a_server_error, response_schema_conformance]


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=SEED == "derandomize",
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    print_blob=True,
)
if SEED not in ("derandomize", "random"):
    FUZZ_SETTINGS = settings(FUZZ_SETTINGS, derandomize=False)


def operations(app: Any) -> list[str]:
    """The app's operations as "METHOD /path" labels (read at collection: no lifespan)."""
    document = app.openapi()
    return [
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
        if method in ("get", "put", "post", "delete", "patch")
    ]


Prepare = Callable[[Case], dict[str, Any]]


def fuzz(running: RunningApp, label: str, *, prepare: Prepare | None = None) -> int:
    """Fuzz one operation with valid and invalid inputs; `prepare(case)` gives the call's
    extra headers/cookies (the caller's credentials). Returns how many cases were sent."""
    method, _, path = label.partition(" ")
    operation = running.schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    sent = 0

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Case) -> None:
        nonlocal sent
        sent += 1
        extra = prepare(case) if prepare is not None else {}
        # the running app's client: a client of schemathesis' own would start (and its
        # pytest plugin end) another lifespan of the same app
        case.call_and_validate(session=running.client, checks=CHECKS, **extra)

    if SEED not in ("derandomize", "random"):
        run = seed(int(SEED))(run)
    run()
    return sent


class RunningApp:
    """The app with its lifespan running (pools, producers, consumers), in the event loop of
    schemathesis' ASGI transport, for a whole module's tests. Started here rather than by
    `schemathesis.openapi.from_asgi`: schemathesis' pytest plugin ends the lifespans it
    started after every test, and a service's start-up takes seconds."""

    def __init__(self, app: Any, *, start_timeout_s: float = 120.0) -> None:
        self.app = app
        # the document first, before the app's thread runs: Python 3.11's parser is not safe
        # when pytest rewrites a module lazily imported here while another thread parses
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.schema.app = app
        self.schema.location = "/openapi.json"
        self.schema.config.update(base_url="http://testserver")
        self.schema.config.generation.update(modes=["positive", "negative"], max_examples=EXAMPLES)
        self.headers: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self.portal = asgi._get_portal()
        self._started = threading.Event()
        self._stop: anyio.Event | None = None
        self._task = self.portal.start_task_soon(self._run)
        while not self._started.wait(0.1):
            if self._task.done():
                self._task.result()  # raises what stopped the start-up
            start_timeout_s -= 0.1
            if start_timeout_s <= 0:
                raise AssertionError("the app did not start")
        self.client = asgi.get_client(app)  # not entered: it starts no lifespan of its own

    async def _run(self) -> None:
        self._stop = anyio.Event()
        async with self.app.router.lifespan_context(self.app):
            self._started.set()
            await self._stop.wait()

    def call(self, coroutine_function: Callable[[], Any]) -> Any:
        """Run `await coroutine_function()` in the app's event loop (its pools belong to it)."""
        return self.portal.call(coroutine_function)

    def close(self) -> None:
        if self._stop is not None:
            self.portal.call(self._stop.set)
        self._task.result(timeout=60)


def new_database(server_url: str, prefix: str) -> str:
    """The URL of a new empty database on the session's Postgres."""
    _name, url = asyncio.run(create_database(server_url, prefix))
    return url


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(
    running: RunningApp, call: Callable[[Any], Any], what: str, timeout_s: float = 90.0
) -> None:
    """Wait until `call(client)` answers 2xx: a 503 while the broker is still warming up (a
    fresh broker loads its coordinators on the first produce) is an honest answer, not a
    finding, and must not be what the fuzzing sees."""
    deadline = time.monotonic() + timeout_s
    while not 200 <= call(running.client).status_code < 300:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not succeed within {timeout_s:g} s")
        time.sleep(0.2)


def wait_ready(running: RunningApp, path: str = "/readyz") -> None:
    wait_until(running, lambda client: client.get(path), f"GET {path}")


@contextmanager
def chat_sessions() -> Iterator[ChatStub]:
    """chat's `/v1/console/me` for leads and notifier (`api_testing.chat_stub`: it checks a
    cookie with chat's token code, and each agent's session version and role), served from
    the event loop the apps run in, for a whole module's fuzzing."""
    with asgi._get_portal().wrap_async_context_manager(chat_stub()) as stub:
        yield stub


def admin_session(chat: ChatStub, site_id: str) -> dict[str, str]:
    """The cookies of a new admin of the site, whose session chat confirms."""
    admin = chat.add(Agent(site_id, unique("fuzz-admin"), role="admin", teams=("sales",)))
    return {"beckon_agent": admin.cookie(ttl_s=24 * 3600)}
