"""Site configuration on the compacted `sites.config` topic (key `site_id`).

The chat service's admin owns sites: their keys, the page origins that may send events and
open the widget, the timezone, business hours and widget settings. It publishes a whole
`SiteConfigured` record per site on every change (through its outbox) and every site's
current record at start-up, so a fresh topic fills itself. The topic is compacted: the latest
record per site is the site's configuration. A record wins when its `version` is at least the
one held, so a replayed older record never rolls a site back. A tombstone (no value) removes
the site. The tracker follows it for keys and origins, the triggers workers for timezone and
business hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from beckon_contracts.envelope import Envelope, SiteId
from beckon_contracts.ids import uuid7
from beckon_contracts.rules import BusinessHours, _check_timezone

MAX_ORIGINS = 50
MAX_SETTINGS = 50
MAX_IDENTITY_SECRETS = 2  # the current one and, during a rotation, the previous one


def normalize_origin(value: str) -> str:
    """`https://Shop.example/` → `https://shop.example`; only scheme, host and port."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin; write it like https://shop.example")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} has more than an origin; drop the path (https://host:port)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


Origin = Annotated[
    str, StringConstraints(min_length=1, max_length=2048), AfterValidator(normalize_origin)
]
Key = Annotated[str, StringConstraints(min_length=8, max_length=128, pattern=r"^\S+$")]


class IdentitySecret(BaseModel):
    """A secret the store's server signs its logged-in user's id with (see docs/identity.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{8,32}$")]
    secret: Annotated[str, StringConstraints(min_length=32, max_length=128, pattern=r"^\S+$")]
    created_at: datetime


class SiteConfig(BaseModel):
    """One store as its admins configured it in the console."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: SiteId
    version: int = Field(ge=1, description="Grows with every change; followers keep the highest")
    site_key: Key = Field(description="The public key the snippet and the widget send")
    write_key: Key | None = Field(default=None, description="Segment-compatible calls' key")
    allowed_origins: list[Origin] = Field(default_factory=list, max_length=MAX_ORIGINS)
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="None: the rules document's own timezone applies"
    )
    business_hours: BusinessHours | None = Field(
        default=None, description="None: the rules document's own business hours apply"
    )
    settings: dict[str, JsonValue] = Field(
        default_factory=dict,
        max_length=MAX_SETTINGS,
        description="Widget settings (greeting, color, language, offline_message, ...)",
    )
    identity_secrets: list[IdentitySecret] = Field(
        default_factory=list,
        max_length=MAX_IDENTITY_SECRETS,
        description="Valid identity secrets, newest first (two while one rotates)",
    )
    # False when absent: a record from before identity verification (its site never had a
    # secret) keeps working as it did; the admin creates new sites with it on.
    identity_verification: bool = Field(
        default=False,
        description="Identified traits count only with a valid user hash",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str | None) -> str | None:
        return _check_timezone(name) if name is not None else None

    @model_validator(mode="after")
    def _distinct_keys(self) -> SiteConfig:
        if self.write_key is not None and self.write_key == self.site_key:
            raise ValueError("the write key must differ from the site key")
        return self


class SiteConfigured(Envelope):
    type: Literal["site.configured"] = "site.configured"
    payload: SiteConfig

    @model_validator(mode="after")
    def _same_site(self) -> SiteConfigured:
        if self.payload.site_id != self.site_id:
            raise ValueError(
                f"payload.site_id {self.payload.site_id!r} differs from site_id {self.site_id!r}"
            )
        return self


def config_key(site_id: str) -> bytes:
    """The record key: one compacted record per site."""
    return site_id.encode()


def site_record(config: SiteConfig) -> SiteConfigured:
    return SiteConfigured(
        event_id=uuid7(), occurred_at=datetime.now(UTC), site_id=config.site_id, payload=config
    )


def parse_site_record(data: bytes | str) -> SiteConfig:
    """Validate one `sites.config` record value (raises pydantic's ValidationError)."""
    return SiteConfigured.model_validate_json(data).payload


def newer(held: SiteConfig | None, incoming: SiteConfig) -> bool:
    """Whether `incoming` replaces `held` (the same version again wins: a republish)."""
    return held is None or incoming.version >= held.version
