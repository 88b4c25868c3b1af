"""A server span per HTTP request, in the caller's trace when it sent `traceparent`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from beckon_observability.tracing import extract_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TraceRequests:
    """Pure ASGI middleware: what a request writes (outbox rows) carries its trace context.

    HTTP only: a WebSocket lives for hours, and one span for its whole life would be kept
    in memory all that time (the reason the framework's own telemetry is off).
    """

    def __init__(self, app: ASGIApp, *, service: str, tracer: trace.Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer or trace.get_tracer(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(key.decode("latin-1"), value) for key, value in scope.get("headers", ())]
        method = scope.get("method", "GET")
        with self.tracer.start_as_current_span(
            method, context=extract_context(headers), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", scope.get("path", ""))

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:  # the template, not the path: span names stay few
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
