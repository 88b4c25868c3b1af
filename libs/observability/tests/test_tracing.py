"""Trace context through Kafka headers: copied from a consumed record to what it leads to, a
batch span linked to its records' traces, a stored trace continued, an HTTP request's span."""

from __future__ import annotations

from typing import Any

from beckon_observability import (
    TraceRequests,
    batch_span,
    continued_span,
    extract_context,
    inject_headers,
    trace_carrier,
    trace_headers,
)
from beckon_observability.tracing import MAX_LINKS
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _traceparent(n: int) -> bytes:
    return f"00-{n + 1:032x}-{n + 1:016x}-01".encode()


def _tracer() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_trace_headers_keep_the_w3c_context_and_nothing_else() -> None:
    record = (
        ("event_type", b"page_viewed"),
        ("traceparent", TRACEPARENT.encode()),
        ("tracestate", b"vendor=1"),
    )
    assert trace_headers(record) == [
        ("traceparent", TRACEPARENT.encode()),
        ("tracestate", b"vendor=1"),
    ]
    # a stored carrier (text) comes back as Kafka headers (bytes)
    assert trace_headers({"traceparent": TRACEPARENT}) == [("traceparent", TRACEPARENT.encode())]
    assert trace_headers(None) == []
    assert trace_headers([("event_type", b"x")]) == []


def test_a_batch_span_is_a_root_linked_to_every_records_trace() -> None:
    tracer, exporter = _tracer()
    records = [[("traceparent", _traceparent(n))] for n in range(3)]
    with (
        tracer.start_as_current_span("unrelated outer"),
        batch_span(tracer, "visitors batch", [*records, [], None]),
    ):
        produced = inject_headers()
    batch = next(s for s in exporter.get_finished_spans() if s.name == "visitors batch")
    assert batch.parent is None  # many traces: none of them is its parent
    assert batch.kind is SpanKind.CONSUMER
    assert [f"{link.context.trace_id:032x}" for link in batch.links] == [
        f"{n + 1:032x}" for n in range(3)
    ]
    # what is written inside the batch without a record's context is in the batch's trace
    assert dict(produced)["traceparent"].split(b"-")[1] == f"{batch.context.trace_id:032x}".encode()


def test_a_big_batch_links_its_first_records_only() -> None:
    tracer, exporter = _tracer()
    records = [[("traceparent", _traceparent(n))] for n in range(MAX_LINKS + 10)]
    with batch_span(tracer, "big", records):
        pass
    (span,) = exporter.get_finished_spans()
    assert len(span.links) == MAX_LINKS


def test_a_continued_span_joins_the_stored_trace_and_links_the_request() -> None:
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("request") as request:
        with continued_span(tracer, "invitation.shown", {"traceparent": TRACEPARENT}):
            carrier = trace_carrier()
        with continued_span(tracer, "no stored trace", {}):
            plain = trace_carrier()
    assert carrier["traceparent"].split("-")[1] == TRACE_ID
    shown = next(s for s in exporter.get_finished_spans() if s.name == "invitation.shown")
    assert f"{shown.parent.trace_id:032x}" == TRACE_ID
    assert [link.context.span_id for link in shown.links] == [request.get_span_context().span_id]
    # nothing stored: the request's own trace goes on
    request_trace = f"{request.get_span_context().trace_id:032x}"
    assert plain["traceparent"].split("-")[1] == request_trace


async def _call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_request_gets_a_server_span_in_the_callers_trace() -> None:
    tracer, exporter = _tracer()
    seen: dict[str, str] = {}

    class Route:
        path = "/v1/widget/invitations/{invitation_id}/{outcome}"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(trace_carrier())
        scope["route"] = Route()  # what the router leaves in the scope
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    traced = TraceRequests(app, service="test", tracer=tracer)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/widget/invitations/1/shown",
        "headers": [(b"traceparent", TRACEPARENT.encode())],
    }
    sent = await _call(traced, scope)
    assert sent[0]["status"] == 204
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "POST /v1/widget/invitations/{invitation_id}/{outcome}"
    assert span.attributes["http.response.status_code"] == 204
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    # what the handler writes (an outbox row) is in that trace
    assert seen["traceparent"].split("-")[1] == TRACE_ID


async def test_a_websocket_gets_no_span() -> None:
    tracer, exporter = _tracer()
    seen: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(trace.get_current_span().get_span_context().is_valid)

    await _call(TraceRequests(app, service="test", tracer=tracer), {"type": "websocket"})
    assert seen == [False]
    assert exporter.get_finished_spans() == ()


def test_extract_reads_a_stored_carrier() -> None:
    context = extract_context({"traceparent": TRACEPARENT})
    assert f"{trace.get_current_span(context).get_span_context().trace_id:032x}" == TRACE_ID
