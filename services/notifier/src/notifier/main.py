"""The notifier's app factory and entry point.

`python -m notifier` (or `beckon-notifier`) serves; `python -m notifier migrate` applies the
schema migrations and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import uvicorn
from beckon_edge import BodyLimit
from beckon_edge.answers import answer_refusals, problem
from beckon_edge.console_sessions import ConsoleSessions
from beckon_edge.database import answer_database_outages
from beckon_messaging import ensure_topics, postgres
from beckon_messaging.bus import Bus
from beckon_messaging.consumer import Backoff
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
from prometheus_client import CollectorRegistry, Gauge
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from notifier.adapters import migrations
from notifier.adapters.bus import outbox_relay
from notifier.adapters.directory import Directory, DirectoryFollowers
from notifier.adapters.smtp import SmtpConfig, SmtpPool
from notifier.admin import api as admin_api
from notifier.config import Settings
from notifier.delivery.letters import Letters
from notifier.delivery.sender import DeliveryMetrics, Sender, SendPolicy
from notifier.domain.render import Renderer
from notifier.domain.tokens import ReplyTokens
from notifier.emails.service import Limits
from notifier.inbound import api as inbound_api
from notifier.intake.consumer import IntakeConsumer, IntakeHandler
from notifier.intake.service import Intake, Policy
from notifier.privacy import api as privacy_api
from notifier.privacy import privacy_consumer
from notifier.runtime import Runtime
from notifier.unsubscribe import UnsubscribeLinks
from notifier.uow import UnitOfWorkFactory

log = logging.getLogger("notifier")
CORS_METHODS = ("GET", "POST", "PUT", "DELETE")
# the inbound endpoint reads its own (larger) limit; every other body stays small
INBOUND_PATH = "/v1/inbound/mail"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_tracing("notifier", settings.otel_exporter_otlp_endpoint)
    registry = CollectorRegistry()
    sent = Gauge("notifier_emails_sent", "E-mails this instance sent", registry=registry)
    delivery_metrics = DeliveryMetrics(registry)
    watchdog = Watchdog(settings.stall_after_s)
    registry.register(watchdog.collector())
    http_metrics = HttpMetrics(registry)
    holder: dict[str, Runtime | Sender] = {}

    def render_metrics() -> bytes:
        sender = holder.get("sender")
        sent.set(sender.sent if isinstance(sender, Sender) else 0)
        return render_latest(registry) + render_latest(MESSAGING_METRICS)

    metrics_server = (
        MetricsServer(settings.host, settings.metrics_port, render_metrics)
        if settings.metrics_port is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as parts:
            if metrics_server is not None:
                await metrics_server.start()
                parts.push_async_callback(metrics_server.stop)
            pool = await postgres.connect_pool(
                settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            )
            parts.push_async_callback(pool.close)
            await _prepare(settings, pool)
            bus = Bus(
                settings.kafka_bootstrap,
                f"notifier-{settings.instance_id}",
                idempotent=settings.kafka_idempotent,
                close_grace_s=settings.kafka_close_grace_s,
                security=settings.kafka_security,
            )
            await bus.start()
            parts.push_async_callback(bus.stop)
            relay = outbox_relay(pool, bus.producer, poll_s=settings.outbox_poll_s)
            uow = UnitOfWorkFactory(pool, on_records=relay.kick)
            directory = Directory()
            followers = DirectoryFollowers(
                directory,
                settings.kafka_bootstrap,
                f"notifier-{settings.instance_id}",
                security=settings.kafka_security,
                watchdog=watchdog,
            )
            secrets = [secret.get_secret_value() for secret in settings.reply_secrets]
            tokens = ReplyTokens(secrets, ttl=timedelta(days=settings.reply_token_days))
            unsubscribe = UnsubscribeLinks(secrets, settings.public_url)
            renderer = Renderer()
            limits = Limits(
                settings.per_recipient_hour, settings.per_visitor_hour, settings.per_site_hour
            )
            sessions = ConsoleSessions(
                secret=settings.agent_session_secret.get_secret_value(),
                chat_url=settings.chat_url,
                timeout_s=settings.chat_timeout_s,
                cache_s=settings.session_cache_s,
                cache_size=settings.session_cache_size,
            )
            parts.push_async_callback(sessions.aclose)
            runtime = Runtime(
                settings=settings,
                pool=pool,
                uow=uow,
                bus=bus,
                relay=relay,
                directory=directory,
                renderer=renderer,
                tokens=tokens,
                unsubscribe=unsubscribe,
                limits=limits,
                sessions=sessions,
            )
            app.state.notifier = holder["runtime"] = runtime
            relay.start()
            parts.push_async_callback(relay.stop)
            relay.kick()  # whatever an earlier run committed but did not publish
            await followers.start()
            parts.push_async_callback(followers.stop)

            smtp = SmtpPool(
                SmtpConfig(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    username=settings.smtp_username,
                    password=(
                        settings.smtp_password.get_secret_value()
                        if settings.smtp_password
                        else None
                    ),
                    use_tls=settings.smtp_tls,
                    start_tls=settings.smtp_starttls,
                    timeout_s=settings.smtp_timeout_s,
                    connections=settings.smtp_connections,
                )
            )
            parts.push_async_callback(smtp.close)
            sender = Sender(
                uow,
                smtp,
                Letters(
                    renderer,
                    tokens,
                    unsubscribe,
                    from_address=settings.from_address,
                    reply_domain=settings.reply_domain,
                    reply_local=settings.reply_local,
                ),
                SendPolicy(
                    instance=settings.instance_id,
                    batch=settings.send_batch,
                    lease_s=settings.send_lease_s,
                    poll_s=settings.send_poll_s,
                    retry_initial_s=settings.retry_initial_s,
                    retry_max_s=settings.retry_max_s,
                    max_attempts=settings.max_attempts,
                ),
                limits=limits,
                metrics=delivery_metrics,
            )
            holder["sender"] = sender
            uow.on_emails = sender.kick
            if settings.sender:
                sender.start()
            parts.push_async_callback(sender.stop)

            if settings.intake:
                intake = Intake(
                    directory,
                    Policy(
                        reply_domain=settings.reply_domain,
                        console_url=settings.console_url,
                        unread_after_s=settings.unread_after_s,
                        offline_answer_gather_s=settings.offline_answer_gather_s,
                        limits=limits,
                    ),
                )

                async def directory_read() -> None:
                    if not await followers.wait_caught_up(settings.directory_wait_s):
                        log.warning("agents.directory / sites.config not read to the end yet")

                consumer = IntakeConsumer(
                    IntakeHandler(uow, intake),
                    bootstrap=settings.kafka_bootstrap,
                    group_id=settings.consumer_group,
                    client_id=f"notifier-{settings.instance_id}-intake",
                    backoff=Backoff(
                        initial_s=settings.intake_retry_initial_s,
                        max_s=settings.intake_retry_max_s,
                        max_attempts=settings.intake_max_attempts,
                    ),
                    before=directory_read,
                    security=settings.kafka_security,
                    batch_records=settings.intake_batch_records,
                    progress=watchdog.track(settings.consumer_group),
                )
                app.state.intake = consumer
                await consumer.start()
                parts.push_async_callback(consumer.stop)

            if settings.intake:  # erases what intake took in
                erasing = privacy_consumer(settings, uow, bus.producer, watchdog)
                await erasing.start()
                parts.push_async_callback(erasing.stop)

            runtime.ready = True
            log.info(
                "notifier ready", extra={"instance": settings.instance_id, "port": settings.port}
            )
            try:
                yield
            finally:
                runtime.ready = False

    app = FastAPI(
        title="Beckon notifier",
        version="0.1.0",
        description="E-mail as a channel of the conversation: transcripts, offline answers, "
        "replies by e-mail, lead alerts; each e-mail once.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serves_api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serves_api_docs else None,
    )
    app.add_middleware(TraceRequests, service="notifier")
    app.add_middleware(BodyLimit, limit=inbound_api.MAX_MAIL_BYTES, message_field="detail")
    app.add_middleware(MeasureRequests, metrics=http_metrics)
    app.router.redirect_slashes = False
    if settings.console_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.console_origins),
            allow_credentials=True,
            allow_methods=list(CORS_METHODS),
            allow_headers=["Accept", "Content-Type"],
            max_age=600,
        )

    answer_refusals(app)
    answer_database_outages(app, "notifier")  # 503 database_unavailable, not 500

    app.include_router(inbound_api.router)
    app.include_router(admin_api.router)
    app.include_router(privacy_api.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """Live unless a consumer has stopped making progress (from memory: no I/O)."""
        status, body = watchdog.health()
        return JSONResponse(body, status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """Ready when started, Postgres answers and the producer reaches a broker."""
        runtime: Runtime | None = getattr(request.app.state, "notifier", None)
        if runtime is None or not runtime.ready:
            return problem(503, "starting", "not ready yet")
        if not await postgres.database_answers(runtime.pool):
            return problem(503, "database_unavailable", "Postgres does not answer")
        if not await runtime.bus.connected():
            return problem(503, "broker_unavailable", "the Kafka producer reaches no broker")
        return JSONResponse({"status": "ready", "instance": settings.instance_id})

    return app


async def _prepare(settings: Settings, pool: asyncpg.Pool) -> None:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m notifier",
        description="Beckon notifier. Settings come from NOTIFIER_* variables (see config.py).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve HTTP (the default)")
    commands.add_parser("migrate", help="apply the Postgres migrations of `notifier` and exit")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("notifier", settings.log_level, settings.log_json)
    if args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
