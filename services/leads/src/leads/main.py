"""The leads service's app factory and entry point.

`python -m leads` (or `beckon-leads`) serves; `python -m leads migrate` applies the schema
migrations and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import uvicorn
from beckon_edge import BodyLimit
from beckon_edge.answers import answer_refusals
from beckon_edge.console_sessions import ConsoleSessions
from beckon_edge.database import answer_database_outages
from beckon_messaging import ensure_topics, postgres
from beckon_messaging.metrics import REGISTRY as MESSAGING_METRICS
from beckon_messaging.progress import Watchdog
from beckon_observability import (
    HttpMetrics,
    MeasureRequests,
    TraceRequests,
    configure_logging,
    configure_tracing,
)
from beckon_observability.metrics import render_latest
from beckon_observability.metrics_server import MetricsServer
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from leads import seed
from leads.adapters import migrations
from leads.adapters.bus import Bus, outbox_relay
from leads.api.common import MAX_BODY_BYTES, problem
from leads.api.openapi import document_bodies
from leads.apikeys import api as apikeys_api
from leads.assignment.presence import PresenceFollower
from leads.capture.consumer import Capturing
from leads.config import Settings
from leads.inbox import api as inbox_api
from leads.privacy import api as privacy_api
from leads.privacy import privacy_consumer
from leads.reports.api import router as reports_router
from leads.routing import api as routing_api
from leads.runtime import Runtime
from leads.sla import api as sla_api
from leads.sla.scheduler import SlaScheduler
from leads.uow import UnitOfWorkFactory
from leads.webhooks import api as webhooks_api
from leads.webhooks.sender import webhook_sender

log = logging.getLogger("leads")
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def connect_pool(settings: Settings) -> asyncpg.Pool:
    """The service's pool, once Postgres answers; no reset between uses (the service leaves
    no session state behind: its advisory locks are transaction-scoped)."""
    return await postgres.connect_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_tracing("leads", settings.otel_exporter_otlp_endpoint)
    registry = CollectorRegistry()
    relayed = Gauge(
        "leads_outbox_relayed", "Outbox records this instance's relay published", registry=registry
    )
    sla_fire_lag = Histogram(
        "leads_sla_fire_lag_seconds",
        "How late an SLA timer fired after its due time",
        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
        registry=registry,
    )
    watchdog = Watchdog(settings.stall_after_s)
    registry.register(watchdog.collector())
    http_metrics = HttpMetrics(registry)
    holder: dict[str, Runtime] = {}

    def render_metrics() -> bytes:
        runtime = holder.get("runtime")
        relayed.set(runtime.relay.published if runtime else 0)
        return render_latest(registry) + render_latest(MESSAGING_METRICS)

    metrics_server = (
        MetricsServer(settings.host, settings.metrics_port, render_metrics)
        if settings.metrics_port is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each part is stopped in the reverse order of its start, also when a later one fails
        # to start (then the error goes on after the stops).
        async with contextlib.AsyncExitStack() as parts:
            if metrics_server is not None:  # internal only: the public app serves no /metrics
                await metrics_server.start()
                parts.push_async_callback(metrics_server.stop)
            pool = await connect_pool(settings)
            parts.push_async_callback(pool.close)
            await _prepare(settings, pool)
            bus = Bus(
                settings.kafka_bootstrap,
                f"leads-{settings.instance_id}",
                idempotent=settings.kafka_idempotent,
                close_grace_s=settings.kafka_close_grace_s,
                security=settings.kafka_security,
            )
            await bus.start()
            parts.push_async_callback(bus.stop)
            relay = outbox_relay(pool, bus.producer, poll_s=settings.outbox_poll_s)
            # Webhook deliveries are queued in the units' transactions: a commit wakes the
            # sender as it wakes the relay. The API's test sends use its HTTP clients, so it
            # is always built (and closed), and only sends the queue behind its setting.
            sender = webhook_sender(settings, pool)
            app.state.webhooks = sender

            def committed() -> None:
                relay.kick()
                sender.kick()

            uow = UnitOfWorkFactory(pool, on_commit=committed)
            if settings.seed_file is not None:
                seeded = await seed.seed(uow, settings.seed_file)
                log.info("seeded", extra={"file": str(settings.seed_file), "applied": seeded})
            sessions = ConsoleSessions(
                secret=settings.agent_session_secret.get_secret_value(),
                chat_url=settings.chat_url,
                timeout_s=settings.chat_timeout_s,
                cache_s=settings.session_cache_s,
                cache_size=settings.session_cache_size,
            )
            parts.push_async_callback(sessions.aclose)
            runtime = Runtime(
                settings=settings, pool=pool, uow=uow, bus=bus, relay=relay, sessions=sessions
            )
            app.state.leads = holder["runtime"] = runtime
            relay.start()
            parts.push_async_callback(relay.stop)
            relay.kick()  # whatever an earlier run committed but did not publish

            # The background parts, each behind its setting. What takes leads in (capture)
            # starts last, when what handles its work runs, and stops first.
            if settings.webhook_sender:
                sender.start()
            parts.push_async_callback(sender.stop)
            if settings.sla_scheduler:
                sla_scheduler = SlaScheduler(
                    uow,
                    instance=settings.instance_id,
                    poll_s=settings.sla_poll_s,
                    batch=settings.sla_batch,
                    retry_s=settings.sla_retry_s,
                    fire_lag=sla_fire_lag,
                )
                await sla_scheduler.start()
                parts.push_async_callback(sla_scheduler.stop)
            if settings.follow_presence:
                runtime.presence = presence = PresenceFollower(
                    settings.kafka_bootstrap,
                    uow=uow,
                    producer=bus.producer,
                    client_id=f"leads-{settings.instance_id}",
                    security=settings.kafka_security,
                    watchdog=watchdog,
                )
                await presence.start()
                parts.push_async_callback(presence.stop)
            if settings.capture_enabled:
                app.state.capture = capturing = Capturing(settings, uow, watchdog)
                await capturing.start()
                parts.push_async_callback(capturing.stop)

            if settings.capture_enabled:  # erases what capture took in
                erasing = privacy_consumer(settings, uow, bus, watchdog)
                await erasing.start()
                parts.push_async_callback(erasing.stop)

            runtime.ready = True
            log.info("leads ready", extra={"instance": settings.instance_id, "port": settings.port})
            try:
                yield
            finally:
                runtime.ready = False

    app = FastAPI(
        title="Beckon leads",
        version="0.1.0",
        description="Leads captured from chats: dedup, routing, assignment, SLAs, CRM webhooks.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serves_api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serves_api_docs else None,
    )
    # A span per HTTP request (the caller's trace if it sent traceparent): what the request
    # writes to the outbox carries it to leads.events.
    app.add_middleware(TraceRequests, service="leads")
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, message_field="detail")
    app.add_middleware(MeasureRequests, metrics=http_metrics)
    # Starlette answers `/path/` with a redirect to an absolute URL built from the Host
    # header (anyone's); a wrong path is a 404 instead
    app.router.redirect_slashes = False
    # The agent console (served by chat, another origin) calls this API with the agent's
    # session cookie: CORS with credentials for the configured console origins only. Added
    # last, so it is outermost: refusals and 422s carry its headers too.
    if settings.console_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.console_origins),
            allow_credentials=True,
            allow_methods=list(CORS_METHODS),
            allow_headers=["Accept", "Content-Type"],
            expose_headers=["Content-Disposition"],
            max_age=600,
        )

    answer_refusals(app)
    answer_database_outages(app, "leads")  # 503 database_unavailable, not 500

    app.include_router(sla_api.router)
    app.include_router(reports_router)
    app.include_router(routing_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(inbox_api.router)
    app.include_router(inbox_api.api_router)
    app.include_router(apikeys_api.router)
    app.include_router(privacy_api.router)

    document_bodies(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """Live unless a consumer has stopped making progress (from memory: no I/O)."""
        status, body = watchdog.health()
        return JSONResponse(body, status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """Ready when started, Postgres answers and the producer reaches a broker."""
        runtime: Runtime | None = getattr(request.app.state, "leads", None)
        if runtime is None or not runtime.ready:
            return problem(503, "starting", "not ready yet")
        if not await postgres.database_answers(runtime.pool):
            return problem(503, "database_unavailable", "Postgres does not answer")
        if not await runtime.bus.connected():
            return problem(503, "broker_unavailable", "the Kafka producer reaches no broker")
        return JSONResponse({"status": "ready", "instance": settings.instance_id})

    return app


async def _prepare(settings: Settings, pool: asyncpg.Pool) -> None:
    """What start-up does before anything runs: the schema migrations and the topics, each
    behind its setting."""
    if settings.migrate_on_start:
        async with pool.acquire() as conn:
            applied = await migrations.migrate(conn)
        if applied:
            log.info("migrated", extra={"versions": applied})
    if settings.create_topics:
        await ensure_topics(
            settings.kafka_bootstrap,
            replication_factor=settings.kafka_replication_factor,
            min_insync_replicas=settings.kafka_min_insync_replicas,
            security=settings.kafka_security,
        )


async def _migrate(settings: Settings) -> list[str]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await migrations.migrate(conn)
    finally:
        await conn.close()


async def _seed(settings: Settings, path: Path) -> list[str]:
    pool = await connect_pool(settings)
    try:
        return await seed.seed(UnitOfWorkFactory(pool, on_commit=lambda: None), path)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m leads",
        description="Beckon leads service. Settings come from LEADS_* variables (see config.py).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve HTTP (the default)")
    commands.add_parser("migrate", help="apply the Postgres migrations of `leads` and exit")
    seeding = commands.add_parser(
        "seed", help="apply a YAML of sites' teams, routing, hours and SLAs (where none yet)"
    )
    seeding.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("leads", settings.log_level, settings.log_json)
    if args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return
    if args.command == "seed":
        try:
            seeded = asyncio.run(_seed(settings, args.file))
        except seed.SeedError as exc:
            raise SystemExit(f"python -m leads seed: {exc}") from None
        print(f"seeded: {'; '.join(seeded) or 'nothing new (every part was there already)'}")
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Only LEADS_TRUSTED_PROXIES decides whom X-Forwarded-For is believed from
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
