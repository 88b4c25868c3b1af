"""One tracking event reduced to the facts the engine uses, read fast from the record's JSON.

The tracker has already validated every record on `tracking.events` with the contracts'
pydantic models; re-validating each one here would cost more than everything else the worker
does. Instead `observe` reads the decoded JSON, checks exactly the fields it uses, and raises
`BadRecord` (with the field and the reason) for anything it cannot trust, so the record goes
to the dead-letter topic instead of into a visitor's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from beckon_contracts.envelope import is_identifier
from beckon_contracts.tracking import TRACKING_EVENT_TYPES

_TYPES = frozenset(TRACKING_EVENT_TYPES)
_PAGE_TYPES_BY_EVENT = {
    "product_viewed": "product",
    "checkout_started": "checkout",
    "order_completed": "confirmation",
}
_EMAIL_MEDIA = frozenset({"email", "e-mail", "newsletter", "mail"})


class BadRecord(ValueError):
    """A record the engine cannot use; `field` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str | None  # Segment's spec makes name and price optional; the tracker passes them on
    category: str | None
    price: float | None
    currency: str


@dataclass(frozen=True, slots=True)
class Observation:
    """What one event tells the engine. Times are epoch seconds (float)."""

    event_id: str
    type: str
    site_id: str
    visitor_id: str
    session_id: str | None
    at: float
    url: str | None = None
    path: str | None = None
    title: str | None = None
    referrer: str | None = None
    page_type: str | None = None
    campaign_source: str | None = None
    campaign_medium: str | None = None
    campaign_name: str | None = None
    product: Product | None = None
    cart_value: float | None = None
    cart_items: int | None = None
    currency: str | None = None
    order_id: str | None = None
    order_value: float | None = None
    # the tracker's word on who reported an order: only the store's server is revenue
    order_by_server: bool = False
    traits: dict[str, Any] | None = None
    custom_event: str | None = None
    is_bot: bool = False
    # what the tracker made of the user agent (kept for the live list)
    device: str | None = None
    browser: str | None = None
    os: str | None = None

    @property
    def key(self) -> str:
        return f"{self.site_id}:{self.visitor_id}"

    @property
    def is_page_change(self) -> bool:
        return self.type in ("page_viewed", "product_viewed") and self.url is not None

    @property
    def from_email(self) -> bool:
        medium = (self.campaign_medium or "").lower()
        source = (self.campaign_source or "").lower()
        return medium in _EMAIL_MEDIA or source in _EMAIL_MEDIA

    @property
    def referrer_host(self) -> str | None:
        return host_of(self.referrer)


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def _text(data: dict[str, Any], field: str, where: str, *, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise BadRecord(f"{where}{field}", "is required")
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{where}{field}", "must be a string")
    return value


def _number(data: dict[str, Any], field: str, where: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{where}{field}", "must be a number")
    return float(value)


def _dict(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRecord(field, "must be an object")
    return value


def parse_time(value: object, field: str = "occurred_at") -> float:
    if not isinstance(value, str):
        raise BadRecord(field, "must be an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord(field, "must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise BadRecord(field, "must carry a timezone")
    return moment.timestamp()


def iso(epoch_s: float) -> str:
    """ISO 8601 in UTC with a Z, as every Beckon record writes times (parse_time's inverse)."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def observe(data: object) -> Observation:
    """Read one decoded `tracking.events` record; raise `BadRecord` if it is unusable."""
    if not isinstance(data, dict):
        raise BadRecord("$", "record must be a JSON object")
    kind = data.get("type")
    if kind not in _TYPES:
        raise BadRecord("type", f"unknown event type {kind!r}")
    event_id = _text(data, "event_id", "", required=True)
    site_id = _text(data, "site_id", "", required=True)
    visitor_id = data.get("visitor_id")
    if not is_identifier(visitor_id):
        raise BadRecord("visitor_id", "must be a visible identifier of 1-128 characters")
    session_id = data.get("session_id")
    if session_id is not None and not is_identifier(session_id):
        raise BadRecord("session_id", "must be a visible identifier of 1-128 characters")
    assert event_id is not None
    assert site_id is not None
    assert isinstance(visitor_id, str)
    context = _dict(data, "context")
    payload = _dict(data, "payload")
    page = context.get("page") or {}
    campaign = context.get("campaign") or {}
    agent = context.get("user_agent_info") or {}
    if not isinstance(page, dict) or not isinstance(campaign, dict) or not isinstance(agent, dict):
        raise BadRecord("context", "page, campaign and user_agent_info must be objects")
    fields: dict[str, Any] = {
        "url": _text(page, "url", "context.page."),
        "path": _text(page, "path", "context.page."),
        "title": _text(page, "title", "context.page."),
        "referrer": _text(page, "referrer", "context.page."),
        "campaign_source": _text(campaign, "source", "context.campaign."),
        "campaign_medium": _text(campaign, "medium", "context.campaign."),
        "campaign_name": _text(campaign, "name", "context.campaign."),
        "is_bot": context.get("is_bot") is True,
        "device": _text(agent, "device", "context.user_agent_info."),
        "browser": _text(agent, "browser", "context.user_agent_info."),
        "os": _text(agent, "os", "context.user_agent_info."),
        "page_type": _PAGE_TYPES_BY_EVENT.get(kind),
    }
    if fields["path"] is None and fields["url"]:
        try:
            fields["path"] = urlsplit(fields["url"]).path or "/"
        except ValueError:
            raise BadRecord("context.page.url", "is not a URL") from None
    if kind == "page_viewed":
        fields["page_type"] = _text(payload, "page_type", "payload.")
    elif kind == "product_viewed":
        fields["product"] = Product(
            product_id=_text(payload, "product_id", "payload.", required=True) or "",
            name=_text(payload, "name", "payload."),
            category=_text(payload, "category", "payload."),
            price=None if payload.get("price") is None else _number(payload, "price", "payload."),
            currency=_text(payload, "currency", "payload.", required=True) or "",
        )
        fields["currency"] = fields["product"].currency
    elif kind in ("cart_updated", "checkout_started"):
        fields["cart_value"] = _number(payload, "value", "payload.")
        fields["currency"] = _text(payload, "currency", "payload.", required=True)
        items = payload.get("items") or []
        if not isinstance(items, list):
            raise BadRecord("payload.items", "must be a list")
        fields["cart_items"] = sum(
            int(item.get("quantity", 1)) if isinstance(item, dict) else 1 for item in items
        )
    elif kind == "order_completed":
        fields["order_id"] = _text(payload, "order_id", "payload.")
        fields["order_value"] = _number(payload, "value", "payload.")
        fields["order_by_server"] = context.get("reported_by") == "server"
        fields["currency"] = _text(payload, "currency", "payload.", required=True)
    elif kind == "identified":
        traits = payload.get("traits") or {}
        if not isinstance(traits, dict):
            raise BadRecord("payload.traits", "must be an object")
        fields["traits"] = traits
    elif kind == "custom":
        fields["custom_event"] = _text(payload, "event", "payload.", required=True)
    return Observation(
        event_id=event_id,
        type=kind,
        site_id=site_id,
        visitor_id=visitor_id,
        session_id=session_id,
        at=parse_time(data.get("occurred_at")),
        **fields,
    )
