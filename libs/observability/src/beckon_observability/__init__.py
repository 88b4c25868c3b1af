"""Observability helpers shared by Beckon's services: JSON logs, tracing, metrics."""

from beckon_observability.logging import configure_logging
from beckon_observability.tracing import configure_tracing, extract_context, inject_headers

__all__ = ["configure_logging", "configure_tracing", "extract_context", "inject_headers"]
