"""The envelope every record on every Beckon topic is wrapped in."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, TypeGuard
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Ids chosen by stores, browsers and third-party SDKs: anything visible, no spaces or controls.
IDENTIFIER_PATTERN = r"^[^\x00-\x20\x7f]{1,128}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
_identifier = re.compile(IDENTIFIER_PATTERN)


def is_identifier(value: object) -> bool:
    """Whether `value` is a valid visitor/session/product id (same rule as `Identifier`)."""
    return isinstance(value, str) and _identifier.fullmatch(value) is not None


SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"
SiteId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SITE_ID_PATTERN)]
_site_id = re.compile(SITE_ID_PATTERN)


def is_site_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a valid site id (same rule as `SiteId`)."""
    return isinstance(value, str) and len(value) <= 64 and _site_id.fullmatch(value) is not None


def _require_v7(value: UUID) -> UUID:
    if value.version != 7:
        raise ValueError("event_id must be a UUIDv7 (time-ordered); the snippet generates one")
    return value


EventId = Annotated[UUID, AfterValidator(_require_v7)]


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (ISO 8601 with Z or an offset)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]


class Envelope(BaseModel):
    """Fields common to every event; `type` and `payload` are narrowed by each stream's models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId = Field(description="UUIDv7; the consumers' deduplication key")
    type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: AwareDatetime = Field(
        description="When it happened (client clock, skew-corrected)"
    )
    received_at: AwareDatetime | None = Field(
        default=None, description="When Beckon's edge received it (server clock)"
    )
    site_id: SiteId
    visitor_id: Identifier | None = None
    session_id: Identifier | None = None


def record_key(site_id: str, visitor_id: str | None) -> bytes:
    """Partition key that keeps one visitor's events in order on one partition."""
    return f"{site_id}:{visitor_id or '-'}".encode()
