"""The tracker's app factory and entry point (`python -m tracker`, `beckon-tracker`)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from beckon_edge import BodyLimit, RateLimiter
from beckon_messaging.metrics import REGISTRY as MESSAGING_METRICS
from beckon_messaging.progress import Watchdog
from beckon_observability import HttpMetrics, MeasureRequests, configure_logging, configure_tracing
from beckon_observability.metrics import render_latest
from beckon_observability.metrics_server import MetricsServer
from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Route

from tracker.adapters.kafka import make_publisher
from tracker.adapters.sites_feed import SitesFeed
from tracker.api.problems import json_response
from tracker.api.routes import EdgeState, collect, mount_scripts, router
from tracker.config import Settings
from tracker.domain.enrichment import warm_up
from tracker.domain.sites import Site, SiteRegistry
from tracker.ingest import Ingest
from tracker.metrics import TrackerMetrics

log = logging.getLogger("tracker")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_tracing("tracker", settings.otel_exporter_otlp_endpoint)
    metrics = TrackerMetrics()
    watchdog = Watchdog(settings.stall_after_s)
    metrics.registry.register(watchdog.collector())
    http_metrics = HttpMetrics(metrics.registry)
    publisher = make_publisher(settings, watchdog.track("tracker-producer"))
    # TRACKER_SITES seeds a fresh install; chat's site admin (`sites.config`) takes over each
    # site it publishes
    sites = SiteRegistry(
        Site(s.site_id, s.site_key, s.write_key, frozenset(s.allowed_origins))
        for s in settings.sites
    )
    feed = (
        SitesFeed(
            settings.kafka_bootstrap,
            sites,
            security=settings.kafka_security,
            progress=watchdog.track("follow:sites.config"),
        )
        if settings.follow_sites
        else None
    )
    if not len(sites) and feed is None:
        log.warning(
            "no sites configured (TRACKER_SITES / TRACKER_SITES_FILE); every request gets 401"
        )

    metrics_server = (
        MetricsServer(
            settings.host,
            settings.metrics_port,
            lambda: render_latest(metrics.registry) + render_latest(MESSAGING_METRICS),
        )
        if settings.metrics_port is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm_up()
        # What start-up built lives as long as the process: out of the collector's sight, a
        # full collection no longer walks it (60-75 ms pauses at load, seen at p99).
        gc.collect()
        gc.freeze()
        await publisher.start()
        if metrics_server is not None:
            await metrics_server.start()
        if feed is not None:
            await feed.start()
        try:
            yield
        finally:
            if feed is not None:
                await feed.stop()
            if metrics_server is not None:
                await metrics_server.stop()
            await publisher.stop()

    docs = settings.serves_api_docs

    app = FastAPI(
        title="Beckon tracker",
        version="0.1.0",
        description="Clickstream ingest: the snippet's batches and Segment-compatible calls.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # The routes open their own server span; FastAPI's would double the tracing cost.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.edge = EdgeState(
        sites=sites,
        ingest=Ingest(settings, publisher, metrics),
        metrics=metrics,
        client_limiter=RateLimiter(
            settings.requests_per_s_per_client, settings.request_burst_per_client
        ),
        trusted_proxies=settings.trusted_proxies,
        max_body_bytes=settings.max_body_bytes,
        max_event_bytes=settings.max_event_bytes,
    )
    app.include_router(router)
    # Starlette answers `/path/` with a redirect to an absolute URL built from the Host header
    # (anyone's): a wrong path is a 404 instead
    app.router.redirect_slashes = False
    # No body past the largest limit is ever buffered; routes hold tighter ones of their own.
    app.add_middleware(
        BodyLimit,
        limit=max(settings.max_body_bytes, settings.max_event_bytes),
        extra={"success": False, "code": "too_large"},  # Segment's SDKs read these
    )
    # The hot path as a plain Starlette route, matched first; FastAPI's still documents it.
    app.router.routes.insert(0, Route("/v1/collect", collect, methods=["POST"]))
    mount_scripts(app)
    # beckon_http_* beside the tracker's own tracker_http_* (each counted once, by its owner)
    app.add_middleware(MeasureRequests, metrics=http_metrics)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """Live unless the producer is wedged (records wait, no delivery report arrives) or
        the sites follower stopped: from memory, no I/O."""
        status, body = watchdog.health()
        return json_response(body, status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if not await publisher.is_ready():
            return json_response({"status": "not_ready", "broker": "unreachable"}, 503)
        if feed is not None and not feed.caught_up:
            return json_response({"status": "not_ready", "sites": "loading"}, 503)
        return json_response({"status": "ready", "broker": "reachable"})

    return app


def main() -> None:
    settings = Settings()
    configure_logging("tracker", settings.log_level, settings.log_json)
    uvicorn.run(
        "tracker.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        # Only TRACKER_TRUSTED_PROXIES decides whom X-Forwarded-For is believed from (uvicorn
        # would otherwise rewrite the client address for any request from loopback).
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
