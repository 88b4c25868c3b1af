"""The settings every public HTTP service shares (tracker, chat), declared once.

A service's own `Settings` inherits them and keeps its env prefix (`TRACKER_TRUSTED_PROXIES`,
`CHAT_TRUSTED_PROXIES`, ...); it still is the one settings class of that service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from beckon_edge.proxies import IPNetwork, networks_setting


class PublicEdgeSettings(BaseSettings):
    environment: Literal["dev", "test", "production"] = "dev"
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        default=(),
        description="CIDRs of our own reverse proxies (comma-separated): the client IP is the "
        "first X-Forwarded-For address from the right outside them; empty: the header is ignored",
    )
    api_docs: bool | None = Field(
        default=None, description="Serve /docs and /openapi.json; unset: only in dev"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus /metrics on this port (internal only); unset: none",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        return networks_setting(value)

    @property
    def serves_api_docs(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment == "dev"
