"""OpenTelemetry set-up, and trace context carried in Kafka record headers.

Every hop keeps the trace of what caused it: a consumer reads the W3C context (`traceparent`,
`tracestate`) from the record's headers and writes it on each record it produces from that
record. A stage that handles a batch at once (many traces) gets one span linked to them all
rather than a span per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Union

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Tracer

KafkaHeaders = list[tuple[str, bytes]]
# what records and requests carry: Kafka headers (bytes), HTTP headers or a stored carrier (str)
AnyHeaders = Union[Iterable[tuple[str, bytes | str]], Mapping[str, bytes | str]]  # noqa: UP007
MAX_LINKS = 128  # the SDK's default span limit: a bigger batch links its first 128 records


def configure_tracing(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """Install a tracer provider named after the service; export over OTLP/HTTP when configured.

    Idempotent per process: the global provider can be set only once.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def inject_headers(context: Context | None = None) -> KafkaHeaders:
    """W3C trace context (traceparent, tracestate) of the current span as Kafka headers."""
    return [(key, value.encode()) for key, value in trace_carrier(context).items()]


def trace_carrier(context: Context | None = None) -> dict[str, str]:
    """The current span's trace context as text (for a row that is published later)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def _pairs(headers: AnyHeaders | None) -> Iterable[tuple[str, bytes | str]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def extract_context(headers: AnyHeaders | None) -> Context:
    """The trace context in Kafka record headers (bytes) or HTTP headers (str)."""
    carrier = {
        key.lower(): value.decode("latin-1") if isinstance(value, bytes) else value
        for key, value in _pairs(headers)
    }
    return propagate.extract(carrier)


def trace_headers(headers: AnyHeaders | None) -> KafkaHeaders:
    """The trace context among a consumed record's headers, to write on what it leads to.

    Copied as they are (no parsing: this runs for every record a stage produces); only the
    fields the configured propagator reads (traceparent, tracestate, baggage by default).
    """
    fields = propagate.get_global_textmap().fields
    return [
        (key, value if isinstance(value, bytes) else value.encode("latin-1"))
        for key, value in _pairs(headers)
        if key.lower() in fields
    ]


def _span_context_of(headers: AnyHeaders | None) -> trace.SpanContext:
    return trace.get_current_span(extract_context(headers)).get_span_context()


@contextmanager
def batch_span(
    tracer: Tracer,
    name: str,
    records_headers: Iterable[AnyHeaders | None],
    *,
    kind: SpanKind = SpanKind.CONSUMER,
) -> Iterator[Span]:
    """One span for a batch of records from many traces, linked to each record's context.

    A root span of its own (a batch has no one parent); the links are parsed only when the
    span is recorded.
    """
    with tracer.start_as_current_span(name, context=Context(), kind=kind) as span:
        if span.is_recording():
            linked = 0
            for headers in records_headers:
                if linked >= MAX_LINKS:
                    break
                span_context = _span_context_of(headers)
                if span_context.is_valid:
                    span.add_link(span_context)
                    linked += 1
        yield span


@contextmanager
def continued_span(
    tracer: Tracer,
    name: str,
    headers: AnyHeaders | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A span in the trace `headers` carry (a consumed record's, a stored row's), linked to
    the current span (the request that acted on it); a child of the current span when
    `headers` hold no trace."""
    context = extract_context(headers)
    if not trace.get_current_span(context).get_span_context().is_valid:
        with tracer.start_as_current_span(name, kind=kind) as span:
            yield span
        return
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    with tracer.start_as_current_span(name, context=context, kind=kind, links=links) as span:
        yield span
