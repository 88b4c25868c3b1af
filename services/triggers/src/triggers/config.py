"""The triggers worker's one settings class; nothing else in the service reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from beckon_messaging import KafkaClientSettings, ProducerSettings, TopicSettings
from beckon_messaging.progress import ProgressSettings
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

# The dev-only token of the worker's HTTP API: refused outside dev, where TRIGGERS_API_TOKEN must
# be set (chat sends the same value, CHAT_TRIGGERS_TOKEN).
DEV_API_TOKEN = "dev-only-triggers-token-change-me"  # noqa: S105
PLACEHOLDER_MARKERS = ("change", "dev-only", "placeholder", "example", "secret")
MIN_TOKEN_CHARS = 16


class Settings(KafkaClientSettings, ProducerSettings, TopicSettings, ProgressSettings):
    model_config = SettingsConfigDict(env_prefix="TRIGGERS_", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    app_id: str = Field(default="triggers", description="Faust app id: consumer group + tables")
    kafka_bootstrap: str = "127.0.0.1:9092"

    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535, description="HTTP: stats, health, metrics")
    api_token: str | None = Field(
        default=None,
        repr=False,
        description="Bearer token of every HTTP route but /healthz, /readyz and /metrics (chat "
        "holds it as CHAT_TRIGGERS_TOKEN); required outside dev",
    )
    debug_endpoints: bool | None = Field(
        default=None, description="Serve /v1/debug/* (task stacks); by default only in dev"
    )
    data_dir: Path = Path(".dev/triggers")

    batch_size: int = Field(default=500, ge=1, le=10_000, description="Events per stream.take")
    batch_within_s: float = Field(default=0.01, gt=0, le=5.0, description="Longest batch wait")
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=30.0)
    snapshot_interval_s: float = Field(
        default=1.0, gt=0, description="At most one visitors.state record per visitor this often"
    )
    visitor_idle_s: float = Field(
        default=30 * 86_400,
        ge=60,
        description="A visitor not seen this long is forgotten (state, admission marks, a "
        "tombstone on visitors.state): a return starts a new history. Keeps a worker's memory "
        "to the visitors of this period",
    )
    outcome_ids_keep_s: float = Field(
        default=8 * 86_400,
        ge=60,
        description="How long an outcome's id is kept to count it once (longer than the "
        "source topics' 7-day retention, so no replay can bring it back)",
    )
    idle_sweep_every_s: float = Field(
        default=3_600.0,
        ge=0,
        description="How often each table is looked through for idle keys (in slices "
        "between batches)",
    )
    start_from: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="Where a new consumer group (a new app_id) starts in its topics; a worker "
        "with committed offsets always resumes from them",
    )
    seed_rules_file: Path | None = Field(
        default=None,
        description="Dev convenience: publish this rules file for sites that have no rules yet",
    )
    log_level: str = "info"
    log_json: bool = False
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TRIGGERS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP endpoint for the stages' spans (none: trace context is still "
        "carried in record headers)",
    )

    @property
    def bearer_token(self) -> str:
        """The token callers must send (the dev default only in dev, see the check below)."""
        return self.api_token or DEV_API_TOKEN

    @property
    def serves_debug(self) -> bool:
        return self.environment == "dev" if self.debug_endpoints is None else self.debug_endpoints

    @model_validator(mode="after")
    def _refuse_placeholder_token(self) -> Settings:
        token = self.api_token
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"TRIGGERS_API_TOKEN must be at least {MIN_TOKEN_CHARS} characters")
        if self.environment != "dev":
            if token is None:
                raise ValueError(
                    f"set TRIGGERS_API_TOKEN outside dev ({self.environment}): the bearer token "
                    "chat sends as CHAT_TRIGGERS_TOKEN, e.g. "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            if any(marker in token.lower() for marker in PLACEHOLDER_MARKERS):
                raise ValueError(
                    f"TRIGGERS_API_TOKEN looks like a placeholder; set a random one outside dev "
                    f"({self.environment})"
                )
        return self
