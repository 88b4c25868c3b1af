"""A server span per call to the worker's HTTP API, as chat, leads and the notifier have
(`beckon_observability.TraceRequests`, ASGI); this worker's web server is Faust's aiohttp.

The span continues the caller's trace (`traceparent`), so a backtest the console asks chat for
shows up under chat's request. The probes and `/metrics` are left out: they are polled every
few seconds and would bury the calls that matter.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from beckon_observability import extract_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from triggers.web_guard import OPEN_PATHS, Handler


def trace_requests(tracer: trace.Tracer) -> Any:
    """aiohttp middleware: one SERVER span per request but the probes' and `/metrics`."""

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        name = f"{request.method} {route}" if route else request.method  # templates: few names
        context = extract_context(request.headers.items())
        with tracer.start_as_current_span(name, context=context, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.path", request.path)
            if route:
                span.set_attribute("http.route", route)
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # aiohttp's answers raised as exceptions (404)
                span.set_attribute("http.response.status_code", exc.status)
                raise
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(StatusCode.ERROR)
            return response

    return traced
