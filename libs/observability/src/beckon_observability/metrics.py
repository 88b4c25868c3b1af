"""Prometheus exposition for a service's own registry."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "render_latest"]


def render_latest(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
