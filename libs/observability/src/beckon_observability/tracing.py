"""OpenTelemetry set-up, and trace context carried in Kafka record headers."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

KafkaHeaders = list[tuple[str, bytes]]


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
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return [(key, value.encode()) for key, value in carrier.items()]


def extract_context(headers: Iterable[tuple[str, bytes | str]] | None) -> Context:
    """The trace context in Kafka record headers (bytes) or HTTP headers (str)."""
    carrier = {
        key.lower(): value.decode("latin-1") if isinstance(value, bytes) else value
        for key, value in headers or ()
    }
    return propagate.extract(carrier)
