"""Observability helpers shared by Beckon's services: JSON logs, tracing, metrics."""

from beckon_observability.asgi import TraceRequests
from beckon_observability.http_metrics import HttpMetrics, MeasureRequests
from beckon_observability.logging import configure_logging
from beckon_observability.tracing import (
    KafkaHeaders,
    batch_span,
    configure_tracing,
    continued_span,
    extract_context,
    inject_headers,
    trace_carrier,
    trace_headers,
)

__all__ = [
    "HttpMetrics",
    "KafkaHeaders",
    "MeasureRequests",
    "TraceRequests",
    "batch_span",
    "configure_logging",
    "configure_tracing",
    "continued_span",
    "extract_context",
    "inject_headers",
    "trace_carrier",
    "trace_headers",
]
