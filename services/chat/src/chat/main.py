"""The chat service's app factory and entry point.

`python -m chat` (or `beckon-chat`) serves; `python -m chat migrate` applies the schema
migrations and exits; `python -m chat seed FILE` upserts sites, teams and agents.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

import asyncpg
import uvicorn
from beckon_contracts.chat_signals import AgentsChangedSignal
from beckon_edge import BodyLimit, RateLimiter
from beckon_edge.answers import document_problem_answers
from beckon_edge.database import answer_database_outages
from beckon_edge.tokens import Signer
from beckon_messaging import postgres
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
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry, Gauge
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import JSONResponse, Response

from chat.activity import ActivityFeature
from chat.adapters import migrations
from chat.adapters.bus import Bus, Feed, InvitationConsumer, OutboxRelay
from chat.adapters.sites import SiteCache
from chat.admin import AdminFeature
from chat.admin.rules_api import MAX_DOCUMENT_BYTES
from chat.agents import service as agents
from chat.agents.domain import LoginThrottle
from chat.agents.sessions import Sessions
from chat.api import console, widget
from chat.api.common import MAX_BODY_BYTES, error_response, problem
from chat.api.console import console_csp
from chat.config import Settings
from chat.conversations import service as conversations
from chat.errors import ChatError
from chat.features import Feature
from chat.hub import Hub
from chat.inbound import InboundFeature
from chat.live import METRICS as LIVE_METRICS
from chat.live import LiveFeature
from chat.privacy import PrivacyFeature
from chat.refs import AgentRef
from chat.reports import ReportsFeature
from chat.runtime import Runtime
from chat.seed import apply_seed, load_seed
from chat.text import InvalidInput
from chat.toolkit import ToolkitFeature
from chat.uow import UnitOfWorkFactory

log = logging.getLogger("chat")
# WebSocket close code "service restart": the widget and the console reconnect (to another
# instance, once this one is out of the load balancer)
CLOSE_SERVICE_RESTART = 1012
WIDGET_JS = resources.files("chat") / "static" / "widget.js"


async def connect_pool(settings: Settings) -> asyncpg.Pool:
    """The service's pool, once Postgres answers; no reset between uses (chat never leaves
    session state behind: its advisory locks are transaction-scoped)."""
    return await postgres.connect_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )


class WidgetCors(BaseHTTPMiddleware):
    """The widget calls from store pages: answer preflights, echo the Origin on answers.

    Whether that origin may act for the site is decided per call (it needs the site); the
    widget authenticates with a bearer token, never cookies, so no credentials are allowed.
    """

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not request.url.path.startswith("/v1/widget/"):
            return await call_next(request)
        origin = request.headers.get("origin")
        if request.method == "OPTIONS":
            answer = Response(status_code=204)
        else:
            answer = await call_next(request)
        if origin:
            answer.headers["Access-Control-Allow-Origin"] = origin
            answer.headers["Vary"] = "Origin"
            answer.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            answer.headers["Access-Control-Allow-Headers"] = "authorization, content-type"
            answer.headers["Access-Control-Max-Age"] = "600"
        return answer


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_tracing("chat", settings.otel_exporter_otlp_endpoint)
    registry = CollectorRegistry()
    sockets = Gauge("chat_sockets", "WebSockets held by this instance", registry=registry)
    watchdog = Watchdog(settings.stall_after_s)
    registry.register(watchdog.collector())
    http_metrics = HttpMetrics(registry)
    holder: dict[str, Runtime] = {}
    live = LiveFeature()
    admin = AdminFeature()
    # the console's features in start order (chat/features.py says how one plugs in)
    features: tuple[Feature, ...] = (
        live,
        ActivityFeature(),
        ToolkitFeature(),
        admin,
        ReportsFeature(),
        InboundFeature(),
        PrivacyFeature(),
    )

    def render_metrics() -> bytes:
        runtime = holder.get("runtime")
        sockets.set(runtime.hub.socket_count if runtime else 0)
        return (
            render_latest(registry) + render_latest(LIVE_METRICS) + render_latest(MESSAGING_METRICS)
        )

    metrics_server = (
        MetricsServer(settings.host, settings.metrics_port, render_metrics)
        if settings.metrics_port is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if metrics_server is not None:  # internal only: the public app serves no /metrics
            await metrics_server.start()
        pool = await connect_pool(settings)
        tasks: list[asyncio.Task[None]] = []
        started: list[Feature] = []
        try:
            if settings.migrate_on_start:
                async with pool.acquire() as conn:
                    applied = await migrations.migrate(conn)
                if applied:
                    log.info("migrated", extra={"versions": applied})
            if settings.seed_file is not None:
                seed = load_seed(settings.seed_file)
                origins = [origin.rstrip("/").lower() for origin in settings.seed_origins]
                for site in seed.sites if origins else ():
                    site.allowed_origins = origins
                async with pool.acquire() as conn:
                    seeded = await apply_seed(conn, seed)
                log.info("seeded", extra={"file": str(settings.seed_file), "agents": seeded})
            if settings.create_topics:
                from beckon_messaging import ensure_topics

                await ensure_topics(
                    settings.kafka_bootstrap,
                    replication_factor=settings.kafka_replication_factor,
                    min_insync_replicas=settings.kafka_min_insync_replicas,
                    security=settings.kafka_security,
                )
            client_id = f"chat-{settings.instance_id}"
            bus = Bus(
                settings.kafka_bootstrap,
                client_id,
                idempotent=settings.kafka_idempotent,
                close_grace_s=settings.kafka_close_grace_s,
                security=settings.kafka_security,
            )
            await bus.start()
            relay = OutboxRelay(pool, bus.producer, settings.outbox_poll_s)

            async def agents_changed(site_id: str, agent_ids: Iterable[str]) -> None:
                await bus.signal(AgentsChangedSignal(site_id=site_id, agent_ids=sorted(agent_ids)))

            uow = UnitOfWorkFactory(pool, on_commit=relay.kick, on_agents_changed=agents_changed)

            async def agent_view(site_id: str, agent_id: str) -> dict[str, Any]:
                return await agents.profile(uow=uow, agent=AgentRef(site_id, agent_id))

            async def conversation_row(site_id: str, conversation_id: UUID) -> Any:
                return await conversations.conversation_row(
                    uow=uow, site_id=site_id, conversation_id=conversation_id
                )

            async def conversation_rows(site_id: str, conversation_ids: list[UUID]) -> list[Any]:
                return await conversations.conversation_rows(
                    uow=uow, site_id=site_id, conversation_ids=conversation_ids
                )

            async def last_message(site_id: str, conversation_id: UUID) -> Any:
                return await conversations.last_message(
                    uow=uow, site_id=site_id, conversation_id=conversation_id
                )

            async def message_row(site_id: str, conversation_id: UUID, message_id: UUID) -> Any:
                return await conversations.message_row(
                    uow=uow, site_id=site_id, conversation_id=conversation_id, message_id=message_id
                )

            async def record_invitation(values: dict[str, Any]) -> bool:
                return await conversations.record_invitation(uow=uow, values=values)

            hub = Hub(conversation_row, conversation_rows, agent_view, last_message, message_row)
            feed = Feed(
                settings.kafka_bootstrap,
                client_id,
                hub.handle,
                settings.fetch_max_wait_ms,
                batch_end=hub.batch_end,
                security=settings.kafka_security,
                progress=watchdog.track("chat-feed"),
            )
            invitations = InvitationConsumer(
                settings.kafka_bootstrap,
                client_id,
                record=record_invitation,
                bus=bus,
                group_id=settings.consumer_group,
                security=settings.kafka_security,
                progress=watchdog.track(settings.consumer_group),
            )
            runtime = Runtime(
                settings=settings,
                uow=uow,
                sessions=Sessions(uow),
                sites=SiteCache(uow),
                features=features,
                visitors=live,
                rules=admin,
                hub=hub,
                bus=bus,
                relay=relay,
                feed=feed,
                watchdog=watchdog,
                signer=Signer(settings.secret_key),
                widget_limiter=RateLimiter(
                    settings.widget_requests_per_s, settings.widget_request_burst
                ),
                login_throttle=LoginThrottle(
                    per_address=RateLimiter(
                        settings.login_address_failures_per_s,
                        settings.login_address_failure_burst,
                    ),
                    per_account=RateLimiter(
                        settings.login_attempts_per_s, settings.login_attempt_burst
                    ),
                ),
            )
            app.state.chat = holder["runtime"] = runtime
            await feed.start()
            relay.start()
            relay.kick()  # whatever an earlier run committed but did not publish
            await invitations.start()
            tasks.append(asyncio.create_task(_housekeeping(uow, settings), name="housekeeping"))
            for feature in features:
                started.append(feature)
                await feature.start(runtime)
            # What start-up built lives as long as the process: out of the collector's sight
            gc.collect()
            gc.freeze()
            runtime.ready = True
            log.info("chat ready", extra={"instance": settings.instance_id, "port": settings.port})
            try:
                yield
            finally:
                runtime.ready = False
                for feature in reversed(started):
                    try:
                        await feature.stop()
                    except Exception:
                        log.exception("a console feature failed to stop")
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await invitations.stop()
                await feed.stop()
                await relay.stop()
                await bus.stop()
        finally:
            await pool.close()
            if metrics_server is not None:
                await metrics_server.stop()

    app = FastAPI(
        title="Beckon chat",
        version="0.1.0",
        description="Visitor widget, agent console, conversations and real-time delivery.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serves_api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serves_api_docs else None,
        # FastAPI's own spans would stay open for a socket's whole life (~13 KiB per socket)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.console_csp = console_csp(settings.leads_url, settings.notifier_url)
    # A span per HTTP request (the caller's trace if it sent traceparent): what the request
    # writes to the outbox carries it to chat.events. Sockets get none (they live for hours).
    app.add_middleware(TraceRequests, service="chat")
    app.add_middleware(WidgetCors)
    # Outermost: no body past the largest any route takes is buffered (routes hold their own,
    # smaller limits while reading).
    app.add_middleware(
        BodyLimit, limit=max(MAX_BODY_BYTES, MAX_DOCUMENT_BYTES), message_field="detail"
    )
    # Around everything: refusals by the body limit are counted too (it buffers nothing)
    app.add_middleware(MeasureRequests, metrics=http_metrics)
    # Starlette answers `/path/` with a redirect to an absolute URL built from the Host
    # header (anyone's); a wrong path is a 404 instead
    app.router.redirect_slashes = False

    @app.exception_handler(ChatError)
    async def _chat_error(request: Request, exc: ChatError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"]) or "request"
        return problem(422, "invalid", f"{where}: {first['msg']}")

    document_problem_answers(app)  # the OpenAPI document says 422 is that `problem`

    answer_database_outages(app, "chat")  # 503 database_unavailable, not 500

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        return error_response(exc)

    app.include_router(widget.router)
    app.include_router(console.router)
    app.include_router(console.pages)
    for feature in features:
        app.include_router(feature.router)

    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> Response:
        return Response(
            WIDGET_JS.read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """Live unless a consumer has stopped making progress (from memory: no I/O)."""
        status, body = watchdog.health()
        return JSONResponse(body, status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        runtime = holder.get("runtime")
        if runtime is not None and runtime.draining:
            return problem(503, "draining", "shutting down: sockets go to other instances")
        if runtime is None or not runtime.ready:
            return problem(503, "starting", "not ready yet")
        return JSONResponse({"status": "ready", "sockets": runtime.hub.socket_count})

    async def drain() -> None:
        """Shutting down: out of the load balancer (/readyz 503), every socket closed with
        1012 so its client reconnects elsewhere (and each new one at once)."""
        runtime = holder.get("runtime")
        if runtime is None:
            return
        runtime.draining = True
        closed = await runtime.hub.close_all(CLOSE_SERVICE_RESTART, "service restart")
        log.info("draining", extra={"sockets_closed": closed, "drain_s": settings.drain_s})

    app.state.drain = drain
    return app


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain before its shutdown: the first SIGTERM/SIGINT runs `drain`, then
    serves HTTP for `drain_s` more (the load balancer sees /readyz 503 and stops sending)
    before uvicorn's own graceful shutdown; a second signal shuts down at once."""

    def __init__(
        self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]], drain_s: float
    ) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._draining is not None or self.should_exit:
            if self._draining is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._draining.cancel)
            super().handle_exit(sig, frame)
            return
        # a signal handler runs between two bytecodes of the loop: the drain starts on it
        self._loop.call_soon_threadsafe(self._start_drain, sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is None and not self.should_exit:
            self._draining = asyncio.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self.drain()
            await asyncio.sleep(self.drain_s)
        except Exception:
            log.exception("draining failed; shutting down")
        finally:
            super().handle_exit(sig, frame)


async def _housekeeping(uow: UnitOfWorkFactory, settings: Settings) -> None:
    """Agents whose console went quiet go offline (and their teams' presence says so)."""
    while True:
        await asyncio.sleep(min(15.0, settings.agent_offline_after_s / 2))
        try:
            await agents.sweep_absent_agents(uow=uow, older_than_s=settings.agent_offline_after_s)
        except Exception:
            log.exception("presence sweep failed")


async def _migrate(settings: Settings) -> list[str]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await migrations.migrate(conn)
    finally:
        await conn.close()


async def _seed(settings: Settings, path: Path) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await apply_seed(conn, load_seed(path))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chat",
        description="Beckon chat service. Settings come from CHAT_* variables (see config.py).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve HTTP and WebSockets (the default)")
    commands.add_parser("migrate", help="apply the Postgres migrations and exit")
    seed = commands.add_parser("seed", help="upsert sites, teams and agents from a YAML file")
    seed.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("chat", settings.log_level, settings.log_json)
    if args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'up to date'}")
        return
    if args.command == "seed":
        if not args.file.is_file():
            sys.exit(f"no such seed file: {args.file}")
        print(f"seeded {asyncio.run(_seed(settings, args.file))} agent(s) from {args.file}")
        return
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_ws_frame_bytes,
        # chat frames are small: compression would cost ~38 KiB and CPU per socket
        ws_per_message_deflate=False,
        # Only CHAT_TRUSTED_PROXIES decides whom X-Forwarded-For is believed from (uvicorn
        # would otherwise rewrite the client address for any request from loopback).
        proxy_headers=False,
    )
    DrainingServer(config, app.state.drain, settings.drain_s).run()


if __name__ == "__main__":
    main()
