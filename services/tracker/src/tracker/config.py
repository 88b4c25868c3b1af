"""The tracker's one settings class; nothing else in the service reads the environment."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from beckon_contracts.envelope import SiteId
from beckon_edge.settings import PublicEdgeSettings
from beckon_messaging import (
    MAX_REQUEST_SIZE,
    KafkaClientSettings,
    ProducerSettings,
    TopicSettings,
)
from beckon_messaging.progress import ProgressSettings
from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

# A key containing one of these (any case) is a placeholder, refused in production: the demo
# store's keys and what .env.example and the docs ship (`pk_live_CHANGE`, `change-me`, ...).
PLACEHOLDER_MARKERS = ("demo", "change", "example", "placeholder", "dev-only")


class SiteConfig(BaseModel):
    """A store that may send events: its public site key, Segment write key and page origins."""

    site_id: SiteId
    site_key: str = Field(min_length=8, max_length=128)
    write_key: str | None = Field(default=None, min_length=8, max_length=128)
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("allowed_origins")
    @classmethod
    def _normalise_origins(cls, origins: list[str]) -> list[str]:
        return [origin.rstrip("/").lower() for origin in origins]


class Settings(
    PublicEdgeSettings, KafkaClientSettings, ProducerSettings, TopicSettings, ProgressSettings
):
    # hide_input_in_errors: a refused setting's error does not print the sites' (secret) write keys
    model_config = SettingsConfigDict(
        env_prefix="TRACKER_", extra="ignore", hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client: Literal["confluent", "aiokafka"] = Field(
        default="confluent",
        description="librdkafka (confluent-kafka) or aiokafka; both keep acks=all",
    )
    kafka_linger_ms: int = Field(default=2, ge=0, le=1000)
    kafka_compression: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    ack_timeout_s: float = Field(default=10.0, gt=0, description="Longest wait for broker acks")

    sites: list[SiteConfig] = Field(
        default_factory=list,
        description="Seed for a fresh install: used until sites.config has the site",
    )
    sites_file: Path | None = Field(default=None, description="YAML or JSON list of sites")
    follow_sites: bool = Field(
        default=True, description="Follow sites.config (chat's site admin), applied live"
    )

    max_body_bytes: int = Field(default=524_288, ge=1024, le=MAX_REQUEST_SIZE)
    max_event_bytes: int = Field(default=32_768, ge=1024, le=MAX_REQUEST_SIZE)
    max_events_per_request: int = Field(default=100, ge=1, le=2000)
    requests_per_s_per_client: float = Field(
        default=20.0, gt=0, description="Sustained rate per (IP, site key)"
    )
    request_burst_per_client: int = Field(default=200, ge=1)
    events_per_s_per_visitor: float = Field(
        default=10.0, gt=0, description="Sustained rate per visitor; runaway clients get 429"
    )
    event_burst_per_visitor: int = Field(default=300, ge=1)
    browser_order_max_value: Decimal = Field(
        default=Decimal(10_000),
        gt=0,
        description="A browser-reported order worth more (in its own currency) is flagged "
        "over the cap: kept, counted in no figure",
    )
    browser_orders_per_visitor_per_day: int = Field(
        default=5,
        ge=1,
        description="Browser-reported orders one visitor may claim per UTC day (per replica); "
        "later ones are flagged over the cap",
    )

    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TRACKER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @model_validator(mode="after")
    def _load_sites_file(self) -> Settings:
        if self.sites_file is not None:
            text = self.sites_file.read_text()
            loaded = json.loads(text) if self.sites_file.suffix == ".json" else yaml.safe_load(text)
            self.sites = [*self.sites, *(SiteConfig.model_validate(site) for site in loaded or [])]
        if self.environment == "production":
            for site in self.sites:
                for field, key in (("site_key", site.site_key), ("write_key", site.write_key)):
                    marker = placeholder_marker(key)
                    if marker is not None:  # the key itself is not repeated: a write key is secret
                        raise ValueError(
                            f"site {site.site_id!r}: its {field} looks like a placeholder (it "
                            f"contains {marker!r}); production needs the site's real keys in "
                            "TRACKER_SITES (or TRACKER_SITES_FILE), e.g. pk_live_ + "
                            "`python -c 'import secrets; print(secrets.token_hex(16))'`"
                        )
        return self


def placeholder_marker(key: str | None) -> str | None:
    """The placeholder marker a key contains (case-insensitive), if any."""
    lowered = (key or "").lower()
    return next((marker for marker in PLACEHOLDER_MARKERS if marker in lowered), None)
