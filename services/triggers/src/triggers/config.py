"""The triggers worker's one settings class; nothing else in the service reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIGGERS_", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    app_id: str = Field(default="triggers", description="Faust app id: consumer group + tables")
    kafka_bootstrap: str = "127.0.0.1:9092"
    broker: Literal["tansu", "kafka"] = Field(
        default="tansu",
        description=(
            "tansu: table recovery reads end offsets from fetches (Tansu's ListOffsets is "
            "wrong after multi-record batches); kafka: Faust's usual end offsets"
        ),
    )
    kafka_idempotent: bool = Field(default=False, description="Only on Apache Kafka")
    create_topics: bool = True

    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535, description="HTTP: stats, health, metrics")
    data_dir: Path = Path(".dev/triggers")

    batch_size: int = Field(default=500, ge=1, le=10_000, description="Events per stream.take")
    batch_within_s: float = Field(default=0.01, gt=0, le=5.0, description="Longest batch wait")
    fetch_max_wait_ms: int = Field(
        default=50, ge=1, le=5000, description="Longest broker-side wait of a stream fetch"
    )
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=300.0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=30.0)
    snapshot_interval_s: float = Field(
        default=1.0, gt=0, description="At most one visitors.state record per visitor this often"
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
