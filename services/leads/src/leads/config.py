"""The leads service's one settings class (LEADS_*); nothing else in the service reads the
environment."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from beckon_edge.settings import ConsoleApiSettings, PublicEdgeSettings
from beckon_messaging import KafkaClientSettings, ProducerSettings, TopicSettings
from beckon_messaging.progress import ProgressSettings
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

# Dev-only secrets: refused in production, so a deployment must set its own.
DEV_SECRET = "dev-only-insecure-leads-secret-change-me"  # noqa: S105
# chat's dev secret (chat.config.DEV_SECRET): in dev the console's agent session works here
DEV_AGENT_SESSION_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _placeholder(secret: str) -> bool:
    return secret in (DEV_SECRET, DEV_AGENT_SESSION_SECRET) or "change" in secret.lower()


class Settings(
    PublicEdgeSettings,
    ConsoleApiSettings,
    KafkaClientSettings,
    ProducerSettings,
    TopicSettings,
    ProgressSettings,
):
    model_config = SettingsConfigDict(env_prefix="LEADS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8004, ge=1, le=65535)
    instance_id: str = Field(
        default_factory=_default_instance,
        min_length=1,
        max_length=100,
        description="This instance's name: its Kafka client id, who claimed a timer or delivery",
    )

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("LEADS_DATABASE_URL", "DATABASE_URL"),
    )
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=20, ge=1, le=200)
    migrate_on_start: bool = Field(
        default=False, description="Run migrations at start-up (dev); production runs `migrate`"
    )
    seed_file: Path | None = Field(
        default=None,
        description="YAML of sites' teams, routing rules, hours and SLAs to apply at start-up "
        "where a site has none yet (the dev stack's demo store)",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    consumer_group: str = Field(
        default="leads",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="This deployment's Kafka consumer group: two deployments on one cluster "
        "(one per database) need their own",
    )
    outbox_poll_s: float = Field(
        default=1.0, gt=0, description="The relay looks for unpublished rows this often"
    )

    secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        min_length=16,
        description="The service's own secret (e.g. to seal stored webhook secrets)",
    )
    agent_session_secret: SecretStr = Field(
        default=SecretStr(DEV_AGENT_SESSION_SECRET),
        min_length=16,
        description="chat's CHAT_SECRET_KEY: the console's agent session is checked with it",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Deliver webhooks to private, loopback and link-local addresses (dev and "
        "tests only; refused in production)",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    webhook_allow_http: bool = Field(
        default=False,
        description="Accept http:// webhook URLs (dev and tests only; refused in production)",
    )
    webhook_sender: bool = Field(
        default=True, description="Run a webhook sender in this instance (every instance may)"
    )
    webhook_concurrency: int = Field(
        default=50, ge=1, le=1000, description="Webhook requests in flight per instance at most"
    )
    webhook_poll_s: float = Field(
        default=0.25, gt=0, le=60, description="The sender looks for due deliveries this often"
    )
    webhook_lease_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long a claimed delivery is held; a crashed instance's claims are "
        "retried by another once it ends (must exceed the timeout)",
    )

    # SLA timers
    sla_scheduler: bool = Field(
        default=True,
        description="Fire SLA timers in this instance (every instance may: they share the work)",
    )
    sla_poll_s: float = Field(
        default=5.0,
        gt=0,
        le=60,  # a timer due sooner than 60 s wakes the schedulers itself (sla.NOTIFY_WITHIN)
        description="The scheduler looks for timers stored elsewhere at least this often",
    )
    sla_batch: int = Field(
        default=500, ge=1, le=10_000, description="Due timers claimed per transaction"
    )
    sla_retry_s: float = Field(
        default=30.0, gt=0, le=3600, description="A timer whose firing failed is retried after"
    )
    # assignment
    follow_presence: bool = Field(
        default=True,
        description="Follow agents.presence into leads.presence and drain a team's queue when "
        "its agents come online",
    )
    # capture
    capture_enabled: bool = Field(
        default=True,
        description="Consume chat.events and tracking.events into leads (off: an API-only "
        "instance)",
    )
    capture_visitor_states: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="How many recently updated visitors' visitors.state capture keeps",
    )
    capture_visitor_states_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="At start-up, capture waits this long at most for visitors.state to be read",
    )
    capture_retry_initial_s: float = Field(default=0.2, gt=0, le=60)
    capture_retry_max_s: float = Field(
        default=10.0, gt=0, le=600, description="The longest pause between tries of one record"
    )
    capture_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Unexpected failures of one record before it is dead-lettered",
    )
    capture_batches: bool = Field(
        default=True,
        description="Handle each partition's fetched records in one transaction per site, "
        "draining each team's queue once per batch (off: one transaction per record)",
    )
    capture_batch_records: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Records of one partition handled in one transaction at most",
    )

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEADS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment == "production":
            if _placeholder(self.secret_key.get_secret_value()):
                raise ValueError("set LEADS_SECRET_KEY to a real secret in production")
            if _placeholder(self.agent_session_secret.get_secret_value()):
                raise ValueError(
                    "set LEADS_AGENT_SESSION_SECRET to chat's CHAT_SECRET_KEY in production"
                )
            if self.webhook_allow_private_targets:
                raise ValueError(
                    "LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS must be false in production (SSRF guard)"
                )
        return self

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        if self.environment == "production" and self.webhook_allow_http:
            raise ValueError(
                "LEADS_WEBHOOK_ALLOW_HTTP must be false in production (webhooks go over https)"
            )
        if self.webhook_lease_s <= self.webhook_timeout_s:
            raise ValueError(
                "LEADS_WEBHOOK_LEASE_S must be longer than LEADS_WEBHOOK_TIMEOUT_S, or a slow "
                "attempt's delivery is claimed again while it is still being sent"
            )
        return self
