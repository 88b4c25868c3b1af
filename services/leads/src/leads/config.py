"""The leads service's one settings class (LEADS_*); nothing else in the service reads the
environment."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

from beckon_edge.settings import PublicEdgeSettings
from beckon_messaging import KafkaClientSettings, ProducerSettings, TopicSettings
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

# Dev-only secrets: refused in production, so a deployment must set its own.
DEV_SECRET = "dev-only-insecure-leads-secret-change-me"  # noqa: S105
# chat's dev secret (chat.config.DEV_SECRET): in dev the console's agent session works here
DEV_AGENT_SESSION_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _placeholder(secret: str) -> bool:
    return secret in (DEV_SECRET, DEV_AGENT_SESSION_SECRET) or "change" in secret.lower()


class Settings(PublicEdgeSettings, KafkaClientSettings, ProducerSettings, TopicSettings):
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

    # --- api ---
    chat_url: str = Field(
        default="http://127.0.0.1:8003",
        pattern=r"^https?://[^/\s]+(/[^\s]*)?$",
        description="chat's base URL: a console session is confirmed with its /v1/console/me",
    )
    chat_timeout_s: float = Field(default=3.0, gt=0, le=30)
    session_cache_s: float = Field(
        default=15.0,
        ge=0,
        le=300,
        description="How long chat's answer about one session cookie is trusted (0: ask each "
        "time); a logout or role change shows here after at most this long",
    )
    session_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)
    console_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Origins (comma-separated, e.g. https://console.example.com) besides the "
        "API's own whose pages may send the session cookie with a call that changes something",
    )
    # --- end api ---

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEADS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @field_validator("console_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            origins = tuple(str(origin).rstrip("/").lower() for origin in value)
            for origin in origins:
                if not origin.startswith(("http://", "https://")) or "/" in origin.split("//")[1]:
                    raise ValueError(f"{origin!r} is not an origin like https://host[:port]")
            return origins
        return value

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
