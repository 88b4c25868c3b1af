"""The Faust worker: thin agents that feed batches of records to the pure engine.

Four stages, each a Faust agent with its table(s), all restart-safe and idempotent:

1. visitors    tracking.events + triggers.feedback (co-partitioned by site:visitor)
               → table `visitors` (one write per visitor per batch), visitors.state,
                 visitors.events, triggers.candidates, triggers.outcomes
2. admission   triggers.candidates (key site) → tables `admission-sites`, `admission-visitors`,
               chat.invitations, triggers.feedback, triggers.outcomes
3. stats       triggers.outcomes (key site:rule) → table `rule-stats`, rules.stats
4. chat-events chat.events → triggers.feedback (re-keyed by visitor) and triggers.candidates
               (invitation outcomes free admission's budget)
5. privacy     privacy.requests → triggers.feedback (`privacy.forget_visitor` per visitor:
               stage 1 deletes its table key and tombstones visitors.state),
               triggers.candidates (a `forget` record: stage 2 deletes the visitors'
               `admission-visitors` keys and renames them in `admission-sites`), privacy.erased

Rules (`rules.config`), sites (`sites.config`: timezone and business hours), presence
(`agents.presence`) and published stats (`rules.stats`) are small compacted topics every worker
follows whole (`beckon_messaging.CompactedTopicFollower`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson
from beckon_contracts import topics
from beckon_contracts.presence import parse_team_presence
from beckon_contracts.rules_config import parse_rules_record, rules_record
from beckon_contracts.sites import parse_site_record
from beckon_messaging import CompactedTopicFollower
from beckon_messaging.progress import ConsumerProgress, Watchdog
from beckon_observability import KafkaHeaders, batch_span
from opentelemetry import trace

from triggers import backtest_http, stages
from triggers.adapters.diagnose import consumer_state
from triggers.adapters.faust_consumer import App
from triggers.adapters.outputs import Outputs
from triggers.config import Settings
from triggers.domain.admission import TeamCapacity
from triggers.domain.engine import Sites
from triggers.metrics import METRICS
from triggers.rules_file import load_rules_file
from triggers.tables import IdleSweep
from triggers.web_guard import require_token
from triggers.web_tracing import trace_requests

log = logging.getLogger("triggers")
tracer = trace.get_tracer("triggers")


@dataclass
class Runtime:
    """What the agents share inside one worker process."""

    settings: Settings
    sites: Sites = field(default_factory=Sites)
    presence: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: Outputs | None = None
    followers: list[CompactedTopicFollower] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # visitor key -> (due at, visitors.state record, trace headers of the latest change)
    pending_snapshots: dict[str, tuple[float, bytes, KafkaHeaders]] = field(default_factory=dict)
    # admission state per site, as last written to its table (dropped on a rebalance)
    deciders: dict[str, Any] = field(default_factory=dict)
    sites_saved_at: dict[str, float] = field(default_factory=dict)
    # each table's sweep of idle keys (tables.IdleSweep), by table name
    sweeps: dict[str, IdleSweep] = field(default_factory=dict)
    # the stages report their progress here (/healthz asks it)
    watchdog: Watchdog = field(default_factory=Watchdog)

    @property
    def out(self) -> Outputs:
        assert self.outputs is not None, "outputs start with the worker"
        return self.outputs


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    runtime = Runtime(settings=settings, watchdog=Watchdog(settings.stall_after_s))
    app = App(
        settings.app_id,
        **settings.kafka_security.faust_options(settings.kafka_bootstrap),
        store="memory://",
        datadir=str(settings.data_dir),
        value_serializer="raw",
        key_serializer="raw",
        producer_acks=-1,
        consumer_auto_offset_reset=settings.start_from,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        # Faust's own pages serve table contents (/table: visitors' names, e-mails, orders),
        # the cluster's addresses (/router) and its internals (/, /graph): none of them here.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_application_options={
            # traced first, so a refused call is seen too
            "middlewares": [trace_requests(tracer), require_token(settings.bearer_token)],
            "client_max_size": backtest_http.MAX_BODY_BYTES,
        },
        stream_buffer_maxsize=4 * settings.batch_size,
        # Faust creates its changelog topics itself: the same durability as the registry's
        topic_replication_factor=settings.kafka_replication_factor,
        # ... unless topics are made for it (Strimzi KafkaTopics; a user without Create)
        topic_allow_declare=settings.create_topics,
    )

    def source(name: str, *more: str) -> faust.TopicT:
        return app.topic(name, *more, key_type=bytes, value_type=bytes)

    def table(name: str, partitions: int) -> Any:
        # Faust stores str keys as JSON strings and bytes values raw (see tables.py)
        return app.Table(
            name,
            key_type=str,
            value_type=bytes,
            partitions=partitions,
            extra_topic_configs={"min.insync.replicas": str(settings.kafka_min_insync_replicas)},
        )

    def stage(name: str, *read: str) -> ConsumerProgress:
        progress = runtime.watchdog.track(f"{settings.app_id}:{name}")
        app.stage_progress = {**app.stage_progress, **dict.fromkeys(read, progress)}
        return progress

    visitors_progress = stage(
        "visitors", topics.TRACKING_EVENTS.name, topics.TRIGGERS_FEEDBACK.name
    )
    admission_progress = stage("admission", topics.TRIGGERS_CANDIDATES.name)
    stats_progress = stage("stats", topics.TRIGGERS_OUTCOMES.name)
    chat_progress = stage("chat-events", topics.CHAT_EVENTS.name)
    privacy_progress = stage("privacy", topics.PRIVACY_REQUESTS.name)

    visitors = table("visitors", topics.TRACKING_EVENTS.partitions)
    admission_sites = table("admission-sites", topics.TRIGGERS_CANDIDATES.partitions)
    admission_visitors = table("admission-visitors", topics.TRIGGERS_CANDIDATES.partitions)
    rule_stats = table("rule-stats", topics.TRIGGERS_OUTCOMES.partitions)
    outcomes_seen = table("outcomes-seen", topics.TRIGGERS_OUTCOMES.partitions)

    def actives(kept: Any, source: str) -> Callable[[], set[int]]:
        """The table's partitions this worker owns now (not its standby replicas)."""
        names = {source, kept.changelog_topic.get_topic_name()}
        return lambda: {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in names}

    runtime.sweeps = {
        kept.name: IdleSweep(
            kept,
            idle_s=idle_s,
            every_s=settings.idle_sweep_every_s,
            last_active=when,
            owned=actives(kept, source),
        )
        for kept, source, idle_s, when in (
            (
                visitors,
                topics.TRACKING_EVENTS.name,
                settings.visitor_idle_s,
                stages.visitor_last_active,
            ),
            (
                admission_visitors,
                topics.TRIGGERS_CANDIDATES.name,
                settings.visitor_idle_s,
                stages.marks_last_active,
            ),
            (
                outcomes_seen,
                topics.TRIGGERS_OUTCOMES.name,
                settings.outcome_ids_keep_s,
                stages.outcome_seen_at,
            ),
        )
    }

    # ---- stage 1: visitors ------------------------------------------------------------------
    @app.agent(source(topics.TRACKING_EVENTS.name, topics.TRIGGERS_FEEDBACK.name), name="visitors")
    async def visitor_stage(stream: Any) -> None:
        with visitors_progress.running():
            async for events in stream.take_events(
                settings.batch_size, within=settings.batch_within_s
            ):
                started = time.perf_counter()
                with batch_span(tracer, "visitors batch", _headers(events)):
                    await stages.visitor_batch(runtime, visitors, events)
                visitors_progress.handled()
                METRICS.observe_batch("visitors", len(events), time.perf_counter() - started)

    # ---- stage 2: admission -----------------------------------------------------------------
    @app.agent(source(topics.TRIGGERS_CANDIDATES.name), name="admission")
    async def admission_stage(stream: Any) -> None:
        with admission_progress.running():
            async for events in stream.take_events(
                settings.batch_size, within=settings.batch_within_s
            ):
                started = time.perf_counter()
                with batch_span(tracer, "admission batch", _headers(events)):
                    await stages.admission_batch(
                        runtime, admission_sites, admission_visitors, events
                    )
                admission_progress.handled()
                METRICS.observe_batch("admission", len(events), time.perf_counter() - started)

    # ---- stage 3: stats ---------------------------------------------------------------------
    @app.agent(source(topics.TRIGGERS_OUTCOMES.name), name="stats")
    async def stats_stage(stream: Any) -> None:
        with stats_progress.running():
            async for events in stream.take_events(settings.batch_size, within=0.2):
                with batch_span(tracer, "stats batch", _headers(events)):
                    await stages.stats_batch(runtime, rule_stats, outcomes_seen, events)
                stats_progress.handled()

    # ---- stage 4: chat events ---------------------------------------------------------------
    @app.agent(source(topics.CHAT_EVENTS.name), name="chat-events")
    async def chat_stage(stream: Any) -> None:
        with chat_progress.running():
            async for events in stream.take_events(
                settings.batch_size, within=settings.batch_within_s
            ):
                with batch_span(tracer, "chat-events batch", _headers(events)):
                    await stages.chat_batch(runtime, events)
                chat_progress.handled()

    # ---- stage 5: a visitor's erasure (docs/privacy.md) -------------------------------------
    @app.agent(source(topics.PRIVACY_REQUESTS.name), name="privacy")
    async def privacy_stage(stream: Any) -> None:
        with privacy_progress.running():
            async for events in stream.take_events(settings.batch_size, within=0.2):
                with batch_span(tracer, "privacy batch", _headers(events)):
                    await stages.privacy_batch(runtime, events)
                privacy_progress.handled()

    @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator, arg-type]
    async def forget_cached_sites(app: Any, revoked: Any, **kwargs: Any) -> None:
        # another worker may own (and change) these sites' admission state now
        runtime.deciders.clear()
        runtime.sites_saved_at.clear()

    @app.timer(interval=settings.snapshot_interval_s)  # type: ignore[untyped-decorator]
    async def flush_snapshots() -> None:
        # Trailing snapshots (changes that came < 1 s after the previous record) wait in
        # `pending`; they are sent from here so the live list never misses a last change.
        await stages.flush_pending_snapshots(runtime)

    # ---- lifecycle and HTTP -----------------------------------------------------------------
    @app.task(on_leader=False)  # type: ignore[untyped-decorator]
    async def start_followers() -> None:
        await _start_followers(runtime)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        """Live unless a stage holds records it has not handled for TRIGGERS_STALL_AFTER_S,
        or its agent ended (from memory, no I/O)."""
        status, body = runtime.watchdog.health()
        return web.json(body, status=status)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        # ready once the followed topics are loaded and Faust has recovered its tables and
        # resumed the stream partitions (before that, records wait for the worker)
        followed = bool(runtime.followers) and all(f.caught_up.is_set() for f in runtime.followers)
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        ready = followed and recovered
        body = {"ready": ready, "sites": len(runtime.sites), "tables_recovered": recovered}
        return web.json(body, status=200 if ready else 503)

    @app.page("/v1/stats/{site_id}")
    async def site_stats(web: Any, request: Any, site_id: str) -> Any:
        rows = [
            value for key, value in sorted(runtime.stats.items()) if key.startswith(f"{site_id}:")
        ]
        return web.json({"site_id": site_id, "rules": rows})

    @app.page("/v1/sites/{site_id}")
    async def site_view(web: Any, request: Any, site_id: str) -> Any:
        """What this worker currently applies for a site: rules version, timezone (the site's
        own over the rules'), the site configuration's version and team capacity."""
        site = runtime.sites.known(site_id)
        config = runtime.sites.config(site_id)
        teams = {}
        for team, presence in runtime.presence.get(site_id, {}).items():
            capacity = TeamCapacity.of(presence)
            teams[team] = {
                "online_agents": capacity.online_agents,
                "free_slots": capacity.free_slots,
                "open_chats": capacity.open_chats,
                "load_ratio": round(capacity.load_ratio, 3),
            }
        return web.json(
            {
                "site_id": site_id,
                "rules_version": site.rules.version if site else None,
                "timezone": site.rules.timezone if site else None,
                "site_config_version": config.version if config else None,
                "rules": [rule.id for rule in site.rules.rules if rule.enabled] if site else [],
                "teams": teams,
            }
        )

    # the console's rules editor: what a rule set would have done on recent traffic
    backtest_http.register(app, settings.kafka_bootstrap, security=settings.kafka_security)

    @app.page("/v1/worker")
    async def worker_view(web: Any, request: Any) -> Any:
        """The partitions this worker owns now (two workers split them between them)."""
        owned: dict[str, list[int]] = defaultdict(list)
        for tp in app.consumer.assignment():
            owned[tp.topic].append(tp.partition)
        return web.json(
            {"app_id": settings.app_id, "partitions": {t: sorted(p) for t, p in owned.items()}}
        )

    if settings.serves_debug:  # source paths and stacks: dev (or TRIGGERS_DEBUG_ENDPOINTS) only

        @app.page("/v1/debug/tasks")
        async def debug_tasks(web: Any, request: Any) -> Any:
            """Where every asyncio task of the main loop waits (a stuck worker's 'thread dump')."""
            dump: list[dict[str, Any]] = []
            for task in asyncio.all_tasks():
                where: list[str] = []
                awaited: Any = task.get_coro()
                while awaited is not None and len(where) < 30:  # follow the chain of awaits
                    frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
                    if frame is not None:
                        name = frame.f_code.co_filename.rsplit("/", 2)[-1]
                        where.append(f"{name}:{frame.f_lineno} {frame.f_code.co_name}")
                    awaited = getattr(awaited, "cr_await", None) or getattr(
                        awaited, "ag_await", None
                    )
                dump.append({"task": task.get_name(), "stack": where})
            return web.json({"tasks": sorted(dump, key=lambda t: str(t["task"]))})

        @app.page("/v1/debug/consumer")
        async def debug_consumer(web: Any, request: Any) -> Any:
            """Faust's and aiokafka's consumer state: is an idle worker starved or blocked?"""
            return web.json(consumer_state(app))

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        body, content_type = METRICS.render(runtime.watchdog)
        # aiohttp wants the charset apart from the content type
        return web.bytes(body, content_type=content_type.split(";")[0])

    app.triggers_runtime = runtime  # type: ignore[attr-defined]
    return app, runtime


def _headers(events: list[Any]) -> Iterator[Any]:
    """Each record's headers, for the batch span's links (read only while it is recorded)."""
    return (event.message.headers for event in events)


async def _seed_rules(runtime: Runtime, path: Path) -> None:
    """Publish the file's rules for each site that has none on `rules.config` yet."""
    for site_rules in load_rules_file(path):
        if runtime.sites.known(site_rules.site_id) is None:
            record = rules_record(site_rules).model_dump_json().encode()
            await runtime.out.send(topics.RULES_CONFIG.name, site_rules.site_id, record)
            runtime.sites.put(site_rules)
            log.info("seeded rules for site %s from %s", site_rules.site_id, path)
    await runtime.out.flush()


async def _start_followers(runtime: Runtime) -> None:
    settings = runtime.settings
    runtime.outputs = Outputs(
        settings.kafka_bootstrap,
        f"{settings.app_id}-outputs",
        idempotent=settings.kafka_idempotent,
        close_grace_s=settings.kafka_close_grace_s,
        security=settings.kafka_security,
    )
    await runtime.outputs.start()

    def on_rules(record: Any) -> None:
        if record.value is None:
            return
        try:
            site_rules = parse_rules_record(record.value)
        except Exception as exc:
            log.error("rules.config offset %s rejected: %s", record.offset, exc)
            return
        runtime.sites.put(site_rules)
        log.info(
            "rules for site %s v%s: %d rules",
            site_rules.site_id,
            site_rules.version,
            len(site_rules.rules),
        )

    def on_site(record: Any) -> None:
        if record.value is None:  # a tombstone: the site is gone
            if record.key is not None:
                runtime.sites.unconfigure(record.key.decode())
            return
        try:
            config = parse_site_record(record.value)
        except Exception as exc:
            log.error("sites.config offset %s rejected: %s", record.offset, exc)
            return
        if runtime.sites.configure(config):
            log.info("site %s configured (v%s)", config.site_id, config.version)

    def on_presence(record: Any) -> None:
        if record.value is None:
            return
        presence = parse_team_presence(record.value)
        runtime.presence[presence.site_id][presence.team] = presence

    def on_stats(record: Any) -> None:
        if record.value is None or record.key is None:
            return
        runtime.stats[record.key.decode()] = orjson.loads(record.value)

    for topic, handler in (
        (topics.RULES_CONFIG, on_rules),
        (topics.SITES_CONFIG, on_site),
        (topics.AGENTS_PRESENCE, on_presence),
        (topics.RULES_STATS, on_stats),
    ):
        follower = CompactedTopicFollower(
            settings.kafka_bootstrap,
            topic,
            handler,
            client_id=settings.app_id,
            security=settings.kafka_security,
        )
        await follower.start()
        runtime.followers.append(follower)
    waits = [asyncio.wait_for(f.caught_up.wait(), timeout=30) for f in runtime.followers]
    await asyncio.gather(*waits)
    if settings.seed_rules_file is not None:
        await _seed_rules(runtime, settings.seed_rules_file)
    # Everything loaded so far lives as long as the worker: keep it out of the collector's
    # generations, and collect less often, so full collections don't stall the stream.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    runtime.ready.set()
    log.info("triggers ready: %d sites with rules", len(runtime.sites))
