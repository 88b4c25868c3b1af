"""The worker's HTTP edge, in process (no broker): the internal token, Faust's own pages, the
debug switch, the backtest's body limit and the API's server spans."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import triggers.app
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from triggers.app import create_app
from triggers.backtest_http import MAX_BODY_BYTES
from triggers.config import DEV_API_TOKEN, Settings
from triggers.web_guard import BodyTooLarge, read_limited

TOKEN = "Zk3v9QwL1mN8pR2sT5uX7yB0cD4eF6gH"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTECTED = [
    ("GET", "/v1/sites/demo"),
    ("GET", "/v1/stats/demo"),
    ("GET", "/v1/worker"),
    ("GET", "/v1/debug/tasks"),
    ("GET", "/v1/debug/consumer"),
    ("POST", "/v1/backtest"),
    ("GET", "/"),
    ("GET", "/table/visitors/"),
]
FAUST_PAGES = [
    "/table/",
    "/table/visitors/",
    "/table/visitors/demo:v1/",
    "/router/",
    "/router/visitors/demo:v1/",
    "/assignment/",
    "/graph/",
    "/performance/",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRIGGERS_"):
            monkeypatch.delenv(name)


@asynccontextmanager
async def worker_web(tmp_path: Path, **settings: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """The worker's web server as `python -m triggers` builds it, without its agents."""
    options = {"api_token": TOKEN, "data_dir": tmp_path, **settings}
    app, _ = create_app(Settings(app_id=f"edge-{tmp_path.name}", **options))
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app)) as client:
        yield client


# ---- settings ------------------------------------------------------------------------------


def test_dev_runs_on_the_dev_token_with_debug_pages() -> None:
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.bearer_token == DEV_API_TOKEN
    assert settings.serves_debug is True
    assert TOKEN not in repr(Settings(api_token=TOKEN))


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_dev_the_token_has_no_default(environment: str) -> None:
    with pytest.raises(ValidationError, match="set TRIGGERS_API_TOKEN"):
        Settings(environment=environment)


@pytest.mark.parametrize(
    "token", [DEV_API_TOKEN, "please-change-me-now-0123", "PLACEHOLDER-PLACEHOLDER"]
)
@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_dev_placeholder_tokens_are_refused(environment: str, token: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(environment=environment, api_token=token)


def test_a_short_token_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(api_token="too-short")


def test_outside_dev_debug_pages_are_off_unless_asked_for() -> None:
    assert Settings(environment="production", api_token=TOKEN).serves_debug is False
    assert Settings(environment="test", api_token=TOKEN, debug_endpoints=True).serves_debug
    assert Settings(environment="dev", debug_endpoints=False).serves_debug is False


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERS_ENVIRONMENT", "production")
    monkeypatch.setenv("TRIGGERS_API_TOKEN", TOKEN)
    assert Settings().bearer_token == TOKEN


# ---- the internal token --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_route_but_the_probes_needs_the_token(
    tmp_path: Path, method: str, path: str
) -> None:
    async with worker_web(tmp_path) as client:
        wrong = [
            {},
            {"Authorization": "Bearer not-the-token-at-all-0123456"},
            {"Authorization": TOKEN},  # without the scheme
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
        ]
        for headers in wrong:
            answer = await client.request(method, path, headers=headers, data=b"{}")
            assert answer.status == 401, (headers, await answer.text())
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await answer.json())["error"] == "unauthorized"


async def test_the_right_token_opens_the_api(tmp_path: Path) -> None:
    async with worker_web(tmp_path, environment="dev") as client:
        sites = await client.get("/v1/sites/demo", headers=AUTH)
        assert sites.status == 200
        assert (await sites.json())["site_id"] == "demo"
        stats = await client.get("/v1/stats/demo", headers=AUTH)
        assert stats.status == 200
        assert (await stats.json()) == {"site_id": "demo", "rules": []}
        tasks = await client.get("/v1/debug/tasks", headers=AUTH)
        assert tasks.status == 200
        assert "tasks" in await tasks.json()
        consumer = await client.get("/v1/debug/consumer", headers=AUTH)
        assert consumer.status == 200
        state = await consumer.json()
        assert state["active"] == []
        assert state["recovery"]["completed"] is False
        assert state["aiokafka"].startswith("unavailable")  # not started: no assignment
        # the body is read and validated once the caller is known
        backtest = await client.post("/v1/backtest", headers=AUTH, data=b"not json")
        assert backtest.status == 422
        assert (await backtest.json())["detail"] == "the body is not JSON"


async def test_probes_and_metrics_stay_open(tmp_path: Path) -> None:
    async with worker_web(tmp_path) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/readyz")).status == 503  # no followers yet: not ready, not 401


# ---- Faust's own pages and the debug switch ------------------------------------------------


@pytest.mark.parametrize("path", FAUST_PAGES)
async def test_fausts_table_router_and_stats_pages_are_gone(tmp_path: Path, path: str) -> None:
    async with worker_web(tmp_path) as client:
        answer = await client.get(path, headers=AUTH)
        assert answer.status == 404, await answer.text()


async def test_the_index_lists_nothing(tmp_path: Path) -> None:
    async with worker_web(tmp_path) as client:
        answer = await client.get("/", headers=AUTH)
        assert await answer.json() == {"status": "OK"}


async def test_debug_pages_are_off_outside_dev(tmp_path: Path) -> None:
    async with worker_web(tmp_path, environment="production") as client:
        assert (await client.get("/v1/debug/tasks", headers=AUTH)).status == 404
        assert (await client.get("/v1/debug/consumer", headers=AUTH)).status == 404
        assert (await client.get("/v1/sites/demo", headers=AUTH)).status == 200


async def test_debug_pages_can_be_turned_on_outside_dev(tmp_path: Path) -> None:
    async with worker_web(tmp_path, environment="test", debug_endpoints=True) as client:
        assert (await client.get("/v1/debug/tasks", headers=AUTH)).status == 200
        assert (await client.get("/v1/debug/tasks")).status == 401


# ---- the backtest's body limit -------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused(tmp_path: Path) -> None:
    async with worker_web(tmp_path) as client:
        answer = await client.post("/v1/backtest", headers=AUTH, data=b" " * (MAX_BODY_BYTES + 1))
        assert answer.status == 413
        assert (await answer.json())["error"] == "too_large"


async def test_a_streamed_body_is_refused_before_its_end(tmp_path: Path) -> None:
    """A chunked body (no Content-Length) longer than the limit, whose end never comes: the
    worker answers 413 while it is still being sent (one that read it whole would wait)."""
    sent = 0
    never = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent <= MAX_BODY_BYTES:
            sent += 65_536
            yield b" " * 65_536
        await never.wait()  # the body's end never comes
        yield b""

    async with worker_web(tmp_path) as client:
        async with asyncio.timeout(60):  # a hang guard: without the limit this never answers
            answer = await client.post("/v1/backtest", headers=AUTH, data=endless())
        assert answer.status == 413
        assert answer.headers.get("Connection", "").lower() == "close"


class CountingStream:
    """`request.content` that hands out `total` bytes and counts what was taken."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.taken = 0

    async def read(self, n: int = -1) -> bytes:
        size = self.left if n < 0 else min(n, self.left)
        self.left -= size
        self.taken += size
        return b"x" * size


class FakeRequest:
    def __init__(self, total: int, declared: int | None) -> None:
        self.content = CountingStream(total)
        self.content_length = declared


async def test_the_reader_stops_one_byte_past_the_limit() -> None:
    request = FakeRequest(total=10 * 1024 * 1024, declared=None)
    with pytest.raises(BodyTooLarge):
        await read_limited(request, 1000)  # type: ignore[arg-type]
    assert request.content.taken == 1001


async def test_the_reader_refuses_a_declared_length_without_reading() -> None:
    request = FakeRequest(total=5000, declared=5000)
    with pytest.raises(BodyTooLarge):
        await read_limited(request, 1000)  # type: ignore[arg-type]
    assert request.content.taken == 0


async def test_the_reader_returns_a_body_within_the_limit() -> None:
    request = FakeRequest(total=1000, declared=1000)
    assert await read_limited(request, 1000) == b"x" * 1000  # type: ignore[arg-type]
    assert request.content.taken == 1000


def test_the_faust_app_takes_the_kafka_security_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "TRIGGERS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TRIGGERS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TRIGGERS_KAFKA_SASL_USERNAME": "beckon-triggers",
        "TRIGGERS_KAFKA_SASL_PASSWORD": "from-the-kafkauser-secret",
        "TRIGGERS_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(app_id=f"sasl-{tmp_path.name}", data_dir=tmp_path)
    assert "from-the-kafkauser-secret" not in repr(settings)
    app, _ = create_app(settings)
    credentials = app.conf.broker_credentials
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == (
        "beckon-triggers",
        "from-the-kafkauser-secret",
    )
    assert [str(url) for url in app.conf.broker] == ["kafka://k1:9092", "kafka://k2:9092"]


# ---- traces --------------------------------------------------------------------------------

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = {"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"}


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The worker's tracer, recording to memory (the process' global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(triggers.app, "tracer", provider.get_tracer("triggers"))
    return exporter


async def test_an_api_call_is_a_server_span_in_the_callers_trace(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with worker_web(tmp_path) as client:
        answer = await client.get("/v1/sites/demo", headers={**AUTH, **CALLER})
        assert answer.status == 200
    [span] = spans.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET /v1/sites/{site_id}"  # the route's template, not the path
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None
    assert span.parent.span_id == int("00f067aa0ba902b7", 16)
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/sites/{site_id}"
    assert span.attributes["http.response.status_code"] == 200


async def test_a_refused_backtest_is_traced_too(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with worker_web(tmp_path) as client:
        answer = await client.post("/v1/backtest", headers=CALLER, data=b"{}")
        assert answer.status == 401
        missing = await client.get("/table/visitors/", headers=AUTH)
        assert missing.status == 404
    backtest, table = spans.get_finished_spans()
    assert backtest.name == "POST /v1/backtest"
    assert backtest.attributes is not None
    assert backtest.attributes["http.response.status_code"] == 401
    assert format(backtest.context.trace_id, "032x") == CALLER_TRACE
    assert table.name == "GET"  # no route: no path in the span's name
    assert table.attributes is not None
    assert table.attributes["http.response.status_code"] == 404


async def test_probes_and_metrics_make_no_spans(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with worker_web(tmp_path) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            await client.get(path)
    assert spans.get_finished_spans() == ()
