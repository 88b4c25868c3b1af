"""Segment Tracking API compatibility: Segment's calls mapped onto Beckon's tracking events.

A store already sending with a Segment or RudderStack SDK points its data plane URL at the
tracker. Semantic e-commerce events (Segment's E-commerce spec v2) become Beckon's typed
events; every other call is kept as a `custom` event, so nothing a store sends is lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from beckon_contracts.ids import derived_uuid7, uuid7

from tracker.domain.admission import Candidate, Edge
from tracker.domain.enrichment import clock_offset

SEGMENT_TYPES = frozenset({"track", "page", "identify", "screen", "group", "alias"})
PAGE_TYPES = frozenset(
    {"home", "category", "product", "search", "cart", "checkout", "confirmation", "content"}
)
DEFAULT_CURRENCY = "USD"  # Segment's spec default when a call names none


def event_id_for(site_id: str, message_id: object, occurred_at: object) -> uuid.UUID:
    """A UUIDv7 that is the same for every retry of one Segment message (dedup downstream)."""
    if not isinstance(message_id, str | int) or message_id == "":
        return uuid7()
    return derived_uuid7(f"{site_id}\0{message_id}", _millis(occurred_at))


def _millis(value: object) -> int:
    parsed = _parse_time(value)
    return int(parsed.timestamp() * 1000) if parsed else 0


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _as_id(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _context(segment_context: dict[str, Any], edge: Edge) -> dict[str, Any]:
    page = _dict(segment_context.get("page"))
    campaign = _dict(segment_context.get("campaign"))
    screen = _dict(segment_context.get("screen"))
    library = _dict(segment_context.get("library"))
    context: dict[str, Any] = {
        "locale": segment_context.get("locale"),
        "timezone": segment_context.get("timezone"),
        "screen_width": screen.get("width"),
        "screen_height": screen.get("height"),
    }
    if page.get("url"):
        context["page"] = {k: page.get(k) for k in ("url", "path", "title", "referrer")}
    if campaign:
        context["campaign"] = {
            k: campaign.get(k) for k in ("source", "medium", "name", "term", "content")
        }
    if library.get("name"):
        context["library"] = f"{library['name']}/{library.get('version', '')}".rstrip("/")
    # Server-side SDKs send the visitor's address and browser in the context; the request's
    # own would be the store's server.
    visitor_edge = Edge(
        received_at=edge.received_at,
        ip=segment_context.get("ip") if isinstance(segment_context.get("ip"), str) else edge.ip,
        user_agent=segment_context.get("userAgent")
        if isinstance(segment_context.get("userAgent"), str)
        else edge.user_agent,
        reported_by=edge.reported_by,
    )
    return {k: v for k, v in context.items() if v is not None} | visitor_edge.server_context(
        "segment"
    )


def _line_items(products: object) -> list[dict[str, Any]]:
    if not isinstance(products, list):
        return []
    return [
        {
            "product_id": _as_id(_first(p, "product_id", "sku", "id")),
            "name": p.get("name"),
            "category": p.get("category"),
            "price": p.get("price"),
            "quantity": _first(p, "quantity") or 1,
        }
        for p in products
        if isinstance(p, dict)
    ]


def _items_value(items: list[dict[str, Any]]) -> Decimal:
    """What the priced items add up to (money in Decimal: 0.1 + 0.2 must be 0.3)."""
    return sum(
        (
            Decimal(str(i["price"])) * i["quantity"]
            for i in items
            if _is_number(i["price"]) and _is_number(i["quantity"])
        ),
        Decimal(0),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first(props: dict[str, Any], *names: str) -> Any:
    for name in names:
        if props.get(name) is not None:
            return props[name]
    return None


def _track_payload(name: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Segment's spec makes every e-commerce property optional: what a Beckon event needs and
    the call lacks is derived (value from the products, currency USD); only a product view
    without any product id cannot be one (views are counted per product), so it stays the
    custom event it was sent as."""
    currency = props.get("currency") or DEFAULT_CURRENCY
    match name.strip().lower():
        case "product viewed":
            product_id = _as_id(_first(props, "product_id", "sku", "id"))
            if product_id is None:
                return "custom", {"event": name, "properties": props}
            return "product_viewed", {
                "product_id": product_id,
                "name": props.get("name"),
                "category": props.get("category"),
                "price": props.get("price"),
                "currency": currency,
            }
        case "cart viewed" | "cart updated":
            items = _line_items(props.get("products"))
            value = _first(props, "value", "total", "revenue")
            return "cart_updated", {
                "items": items,
                "value": _items_value(items) if value is None else value,
                "currency": currency,
            }
        case "checkout started":
            items = _line_items(props.get("products"))
            value = _first(props, "value", "revenue", "total")
            return "checkout_started", {
                "value": _items_value(items) if value is None else value,
                "currency": currency,
                "items": items,
            }
        case "order completed":
            items = _line_items(props.get("products"))
            value = _first(props, "total", "revenue", "value")
            return "order_completed", {
                "order_id": _as_id(_first(props, "order_id", "checkout_id")),
                "value": _items_value(items) if value is None else value,
                "currency": currency,
                "items": items,
            }
    return "custom", {"event": name, "properties": props}


def _payload(kind: str, message: dict[str, Any], context: dict[str, Any]) -> tuple[str, Any]:
    props = _dict(message.get("properties"))
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str):
            return "custom", {"event": name, "properties": props}
        return _track_payload(name, props)
    if kind == "page":
        page = {k: props[k] for k in ("url", "path", "title", "referrer") if k in props}
        if page.get("url"):
            context["page"] = context.get("page", {}) | page
        page_type = str(message.get("category") or message.get("name") or "").lower()
        return "page_viewed", {
            "page_type": props.get("page_type") or (page_type if page_type in PAGE_TYPES else None),
            "search_query": props.get("search") or None,
        }
    if kind == "identify":
        traits = message.get("traits") or _dict(message.get("context")).get("traits") or {}
        return "identified", {"user_id": _as_id(message.get("userId")), "traits": traits}
    if kind == "screen":
        return "custom", {"event": "screen", "properties": props | {"name": message.get("name")}}
    if kind == "group":
        properties = {"group_id": message.get("groupId"), "traits": message.get("traits") or {}}
        return "custom", {"event": "group", "properties": properties}
    properties = {"previous_id": message.get("previousId"), "user_id": message.get("userId")}
    return "custom", {"event": "alias", "properties": properties}


def segment_candidates(
    messages: list[Any],
    *,
    site_id: str,
    edge: Edge,
    batch_context: dict[str, Any] | None = None,
    batch_sent_at: object = None,
) -> list[Candidate]:
    """Map Segment messages (from /v1/batch or a single call) to candidate events."""
    candidates = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            candidates.append(Candidate(index, message, None, "each message must be an object"))
            continue
        kind = message.get("type")
        if kind not in SEGMENT_TYPES:
            problem = f"type must be one of {', '.join(sorted(SEGMENT_TYPES))}"
            candidates.append(Candidate(index, message, None, problem))
            continue
        visitor = _as_id(message.get("anonymousId") or message.get("userId"))
        if visitor is None:
            candidates.append(Candidate(index, message, None, "anonymousId or userId is required"))
            continue
        context = _context(_dict(batch_context) | _dict(message.get("context")), edge)
        event_type, payload = _payload(kind, message, context)
        original = message.get("originalTimestamp")
        sent_at = _parse_time(message.get("sentAt") or batch_sent_at)
        if original is not None:
            occurred, offset = original, clock_offset(sent_at, edge.received_at)
        else:
            occurred, offset = message.get("timestamp"), timedelta(0)
        fields = {
            "event_id": event_id_for(site_id, message.get("messageId"), occurred),
            "type": event_type,
            "occurred_at": occurred,
            "received_at": edge.received_at,
            "site_id": site_id,
            "visitor_id": visitor,
            "session_id": None,
            "context": context | {"message_id": str(message.get("messageId", ""))[:512] or None},
            "payload": payload,
        }
        candidates.append(Candidate(index, message, fields, offset=offset))
    return candidates
