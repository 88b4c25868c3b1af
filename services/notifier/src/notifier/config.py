"""The notifier's one settings class (NOTIFIER_*); nothing else in the service reads the
environment."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

from beckon_edge.settings import ConsoleApiSettings, PublicEdgeSettings
from beckon_messaging import KafkaClientSettings, ProducerSettings, TopicSettings
from beckon_messaging.progress import ProgressSettings
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

# Dev-only secrets: refused in production, so a deployment must set its own.
DEV_REPLY_SECRET = "dev-only-insecure-reply-secret-change-me"  # noqa: S105
DEV_INBOUND_SECRET = "dev-only-insecure-inbound-secret-change-me"  # noqa: S105
# chat's dev secret (chat.config.DEV_SECRET): in dev the console's agent session works here
DEV_AGENT_SESSION_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _placeholder(secret: str) -> bool:
    return "change" in secret.lower() or secret.startswith("dev-only")


class Settings(
    PublicEdgeSettings,
    ConsoleApiSettings,
    KafkaClientSettings,
    ProducerSettings,
    TopicSettings,
    ProgressSettings,
):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8005, ge=1, le=65535)
    instance_id: str = Field(
        default_factory=_default_instance,
        min_length=1,
        max_length=100,
        description="This instance's name: its Kafka client id, who claimed an e-mail",
    )

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("NOTIFIER_DATABASE_URL", "DATABASE_URL"),
    )
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=20, ge=1, le=200)
    migrate_on_start: bool = Field(
        default=False, description="Run migrations at start-up (dev); production runs `migrate`"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    consumer_group: str = Field(
        default="notifier",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="This deployment's Kafka consumer group",
    )
    outbox_poll_s: float = Field(
        default=1.0, gt=0, description="The relay looks for unpublished rows this often"
    )
    intake: bool = Field(
        default=True,
        description="Consume chat.events and leads.events into e-mails (off: an API-only instance)",
    )
    intake_batch_records: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="A partition's records handled in one transaction at most (1: one each)",
    )
    intake_retry_initial_s: float = Field(default=0.2, gt=0, le=60)
    intake_retry_max_s: float = Field(default=10.0, gt=0, le=600)
    intake_max_attempts: int = Field(default=5, ge=1, le=100)
    directory_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="At start-up, the intake waits this long at most for agents.directory "
        "and sites.config to be read (staff e-mails need the directory)",
    )

    # sending
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = Field(default=False, description="Implicit TLS (SMTPS, usually port 465)")
    smtp_starttls: bool = Field(
        default=False, description="Upgrade with STARTTLS (usually port 587); required then"
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300)
    smtp_connections: int = Field(
        default=8, ge=1, le=100, description="SMTP connections per instance, each reused"
    )
    sender: bool = Field(
        default=True, description="Send due e-mails from this instance (every instance may)"
    )
    send_poll_s: float = Field(
        default=0.5, gt=0, le=60, description="The sender looks for due e-mails this often"
    )
    send_batch: int = Field(default=200, ge=1, le=5000, description="E-mails claimed at once")
    send_lease_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long a claimed e-mail is held; a crashed instance's claims are sent "
        "again (with the same Message-ID) once it ends",
    )
    retry_initial_s: float = Field(default=30.0, gt=0, le=3600)
    retry_max_s: float = Field(default=3600.0, gt=0, le=86_400)
    max_attempts: int = Field(
        default=20, ge=1, le=200, description="Tries of one e-mail before it is marked failed"
    )

    # addresses
    from_address: str = Field(
        default="chat@beckon.localhost",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="The envelope and From address when a site sets none",
    )
    reply_domain: str = Field(
        default="reply.beckon.localhost",
        pattern=r"^[A-Za-z0-9.-]+$",
        description="The domain of reply addresses when a site sets none (its MX must reach "
        "/v1/inbound/mail)",
    )
    reply_local: str = Field(default="reply", pattern=r"^[A-Za-z0-9._-]{1,20}$")
    reply_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(SecretStr(DEV_REPLY_SECRET),),
        description="Comma-separated; the first signs reply tokens, each verifies (rotation)",
    )
    reply_token_days: int = Field(default=90, ge=1, le=3650)
    inbound_secret: SecretStr = Field(
        default=SecretStr(DEV_INBOUND_SECRET),
        min_length=16,
        description="What the mail provider's inbound webhook (or the dev SMTP sink) sends as "
        "`Authorization: Bearer ...`",
    )
    console_url: str = Field(
        default="http://127.0.0.1:8003/console/",
        description="Where links in staff e-mails point (chat's console)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8005",
        description="This API's public base URL (one-click unsubscribe links)",
    )

    # limits
    per_recipient_hour: int = Field(default=30, ge=1, le=10_000)
    per_visitor_hour: int = Field(default=30, ge=1, le=10_000)
    per_site_hour: int = Field(default=20_000, ge=1, le=10_000_000)
    unread_after_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="An agent's message the visitor has not seen for this long goes out by "
        "e-mail (a site's setting overrides it)",
    )
    offline_answer_gather_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="An answer to an offline message waits this long for the agent's next "
        "lines, then goes out as one e-mail",
    )

    agent_session_secret: SecretStr = Field(
        default=SecretStr(DEV_AGENT_SESSION_SECRET),
        min_length=16,
        description="chat's CHAT_SECRET_KEY: the console's agent session is checked with it",
    )

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NOTIFIER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @field_validator("reply_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.reply_secrets:
            raise ValueError("NOTIFIER_REPLY_SECRETS needs at least one secret")
        if any(len(secret.get_secret_value()) < 16 for secret in self.reply_secrets):
            raise ValueError("each of NOTIFIER_REPLY_SECRETS must be 16 characters or more")
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("set NOTIFIER_SMTP_TLS or NOTIFIER_SMTP_STARTTLS, not both")
        if self.send_lease_s <= self.smtp_timeout_s:
            raise ValueError("NOTIFIER_SEND_LEASE_S must be longer than NOTIFIER_SMTP_TIMEOUT_S")
        if self.environment == "production":
            for name, secret in (
                ("NOTIFIER_REPLY_SECRETS", self.reply_secrets[0]),
                ("NOTIFIER_INBOUND_SECRET", self.inbound_secret),
                ("NOTIFIER_AGENT_SESSION_SECRET", self.agent_session_secret),
            ):
                if _placeholder(secret.get_secret_value()):
                    raise ValueError(f"set {name} to a real secret in production")
        return self
