"""`beckon_http_requests_total{method,route,code}` and
`beckon_http_request_duration_seconds{method,route}` for every HTTP request, by an ASGI
middleware (WebSockets are not requests: they are left alone).

`route` is the template of the route that matched (`/v1/leads/{lead_id}`), never the raw
path, so the series stay few; a request no route matched is `unmatched`.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from beckon_observability.asgi import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    """The two HTTP metrics, in a service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "beckon_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "beckon_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer",
            ["method", "route"],
            buckets=BUCKETS,
            registry=registry,
        )


def route_template(scope: Scope) -> str:
    """The matched route's template (set in the scope by the router), else `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MeasureRequests:
    """Pure ASGI middleware counting and timing each HTTP request into `metrics`."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that fails before it answers is answered 500 by the server

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        finally:
            method = scope.get("method", "GET")
            route = route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)
