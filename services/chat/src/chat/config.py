"""The chat service's one settings class; nothing else in the service reads the environment."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from beckon_edge.settings import PublicEdgeSettings
from beckon_messaging import KafkaClientSettings, ProducerSettings, TopicSettings
from beckon_messaging.progress import ProgressSettings
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

# A dev-only secret: refused outside dev, so a deployment must set CHAT_SECRET_KEY.
DEV_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105
# The triggers worker's dev-only API token (its DEV_API_TOKEN), used only in dev: elsewhere
# CHAT_TRIGGERS_TOKEN must be the worker's TRIGGERS_API_TOKEN (production refuses placeholders).
DEV_TRIGGERS_TOKEN = "dev-only-triggers-token-change-me"  # noqa: S105


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(
    PublicEdgeSettings, KafkaClientSettings, ProducerSettings, TopicSettings, ProgressSettings
):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    instance_id: str = Field(default_factory=_default_instance, min_length=1, max_length=100)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("CHAT_DATABASE_URL", "DATABASE_URL"),
    )
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=20, ge=1, le=200)
    migrate_on_start: bool = Field(
        default=False, description="Run migrations at start-up (dev); production runs `migrate`"
    )
    seed_file: Path | None = Field(default=None, description="YAML of sites/teams/agents to upsert")
    seed_origins: list[str] = Field(
        default_factory=list,
        description="When set, the seeded sites' allowed origins (the dev stack's store address)",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    fetch_max_wait_ms: int = Field(
        default=10, ge=0, le=1000, description="The feed's fetch wait: latency against idle CPU"
    )
    consumer_group: str = Field(
        default="chat",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="This deployment's Kafka consumer groups: the invitations consumer uses it "
        "as is, the activity recorder `<group>-activity`, the e-mailed replies' consumer "
        "(chat.inbound) `<group>-inbound`. Two chat deployments on one cluster "
        "(staging beside production, one per database) need their own, or they split the "
        "partitions and each stores only part of the other's invitations",
    )

    secret_key: str = Field(default=DEV_SECRET, min_length=16)
    visitor_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    agent_session_ttl_s: int = Field(default=12 * 3600, ge=60)
    session_check_s: float = Field(
        default=5.0,
        gt=0,
        description="How often an open console socket asks whether its session still stands "
        "(a logout on any instance closes it at once, through chat.signals)",
    )
    cookie_secure: bool = False

    widget_requests_per_s: float = Field(default=5.0, gt=0, description="Per (IP, site)")
    widget_request_burst: int = Field(default=60, ge=1)
    login_attempts_per_s: float = Field(
        default=0.2,
        gt=0,
        description="Failed logins per account and client address: password guessing gets 429",
    )
    login_attempt_burst: int = Field(default=10, ge=1)
    login_address_failures_per_s: float = Field(
        default=0.1,
        gt=0,
        description="Failed logins per client address (IPv6 /64), across accounts: spraying",
    )
    login_address_failure_burst: int = Field(default=20, ge=1)
    socket_messages_per_s: float = Field(default=10.0, gt=0, description="Per visitor socket")
    socket_message_burst: int = Field(default=30, ge=1)
    max_message_chars: int = Field(default=4000, ge=1, le=4000)
    max_ws_frame_bytes: int = Field(default=32_768, ge=1024)
    # --- the public edge ----------------------------------------------------------------

    agent_offline_after_s: float = Field(
        default=60.0, gt=0, description="An agent without a console heartbeat goes offline"
    )
    presence_refresh_s: float = Field(
        default=30.0, gt=0, description="Republish every team's presence this often"
    )
    outbox_poll_s: float = Field(default=1.0, gt=0)
    drain_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="On SIGTERM: /readyz answers 503 and every WebSocket is closed with 1012 "
        "(service restart: clients reconnect to another instance); HTTP is still served this "
        "long before the server stops (a second SIGTERM stops at once)",
    )

    # --- the agent console ---------------------------------------------------------------
    triggers_url: str = Field(
        default="http://127.0.0.1:8002",
        description="The triggers service's HTTP address: rule backtests and stats for admins",
    )
    triggers_token: str | None = Field(
        default=None,
        min_length=16,
        repr=False,
        description="Bearer token of the triggers worker's API (its TRIGGERS_API_TOKEN); "
        "unset, dev sends the dev token and elsewhere backtests answer 503",
    )
    leads_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s?#;,'\"]+/?)?$",
        description="The leads service's base URL (e.g. http://127.0.0.1:8004) that the console's "
        "leads views call with the agent's session; empty: no leads views. The leads service "
        "must list this console's origin in LEADS_CONSOLE_ORIGINS",
    )
    notifier_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s?#;,'\"]+/?)?$",
        description="The notifier's base URL (e.g. http://127.0.0.1:8005) that the console's "
        "e-mail views (offline inbox, delivery log, e-mail settings, template previews) call "
        "with the agent's session; empty: no e-mail views. The notifier must list this "
        "console's origin in NOTIFIER_CONSOLE_ORIGINS",
    )
    leads_api_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s?#;,'\"]+/?)?$",
        description="Where chat itself calls the leads API (a visitor's export bundles leads' "
        "part, asked with the admin's session), e.g. http://leads:8004 inside a cluster; empty: "
        "CHAT_LEADS_URL",
    )
    notifier_api_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s?#;,'\"]+/?)?$",
        description="Where chat itself calls the notifier's API (a visitor's export bundles the "
        "notifier's part); empty: CHAT_NOTIFIER_URL",
    )
    privacy_export_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long an export waits for leads' or the notifier's part; a part not "
        "given by then is named missing in the document",
    )
    live_idle_after_s: float = Field(
        default=600.0, gt=0, description="A visitor not seen for this long leaves the live list"
    )
    live_push_interval_s: float = Field(
        default=0.25, gt=0, le=5, description="Live-list deltas are batched this long per site"
    )
    activity_retention_days: int = Field(
        default=90, ge=1, description="Visitors' recorded activity (card, reports) is kept so long"
    )
    retention_sweep_s: float = Field(
        default=3600.0, gt=0, description="How often each site's retention (days) is applied"
    )
    attribution_window_days: int = Field(
        default=7, ge=1, le=90, description="An order this soon after a chat counts as assisted"
    )

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHAT_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == DEV_SECRET or "change" in self.secret_key.lower():
                raise ValueError("set CHAT_SECRET_KEY to a real secret in production")
            token = self.triggers_token
            if token is not None and (token == DEV_TRIGGERS_TOKEN or "change" in token.lower()):
                raise ValueError("set CHAT_TRIGGERS_TOKEN to the triggers worker's API token")
            if not self.cookie_secure:
                raise ValueError("CHAT_COOKIE_SECURE must be true in production (HTTPS)")
        return self
