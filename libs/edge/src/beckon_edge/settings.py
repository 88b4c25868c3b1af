"""The settings every public HTTP service shares (tracker, chat, leads, notifier), and those of
the APIs behind the agent console (leads, notifier), declared once.

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


class ConsoleApiSettings(BaseSettings):
    """An API the agent console calls with the agent's session (leads, notifier)."""

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
