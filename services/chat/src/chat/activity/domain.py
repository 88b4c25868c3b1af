"""The visitor's recorded activity, pure: a tracking event as a `chat.activity` row, and the
rows as the visitor card shows them (visits, summaries, identity, source, "now").

No I/O here: the consumer and the card's use case call these; unit tests call them directly.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from beckon_contracts.tracking import (
    CartUpdated,
    CheckoutStarted,
    CustomTracked,
    Heartbeat,
    Identified,
    LineItem,
    OrderCompleted,
    PageViewed,
    ProductViewed,
    TrackingEvent,
)

from chat.visitors import external_referrer, landing, visitor_label

# `chat.activity.type`: the contract's event type in the dotted form the reports query
# (`order.completed`). Heartbeats are not actions and are not recorded.
ACTIVITY_TYPES: dict[str, str] = {
    "page_viewed": "page.viewed",
    "product_viewed": "product.viewed",
    "cart_updated": "cart.updated",
    "checkout_started": "checkout.started",
    "order_completed": "order.completed",
    "identified": "visitor.identified",
    "custom": "custom.tracked",
}
MAX_ITEMS = 20  # cart/order lines kept per event (the count and the value stay exact)
MAX_TRAITS = 30
MAX_PROPERTIES = 10
MAX_TEXT = 200
MAX_URL = 2048
VISIT_GAP_S = 30 * 60  # events without a session id: a new visit after 30 idle minutes


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One `chat.activity` row."""

    event_id: UUID
    site_id: str
    visitor_id: str
    session_id: str | None
    type: str
    occurred_at: datetime
    url: str | None
    title: str | None
    value: Decimal | None
    currency: str | None
    detail: dict[str, Any] = field(default_factory=dict)


def clean(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Text Postgres can store (no NUL), at most `limit` characters."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:limit]


def _scalar(value: Any) -> Any:
    """A trait or property value as kept: scalars only, strings trimmed; else None (dropped)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value if abs(value) < 1e15 else None
    if isinstance(value, str):
        return clean(value)
    return None


def trim_map(values: dict[str, Any], limit: int) -> dict[str, Any]:
    """At most `limit` scalar entries (nested objects and lists are left out)."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if len(kept) >= limit:
            break
        scalar = _scalar(value)
        if scalar is not None or value is None:
            name = clean(str(key), 64)
            if name:
                kept[name] = scalar
    return kept


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _items(items: list[LineItem]) -> dict[str, Any]:
    return {
        "items": [
            {
                "product_id": clean(item.product_id, 128),
                "name": clean(item.name),
                "category": clean(item.category),
                "price": _money(item.price),
                "quantity": item.quantity,
            }
            for item in items[:MAX_ITEMS]
        ],
        "lines": len(items),
        "quantity": sum(item.quantity for item in items),
    }


def _context_detail(event: TrackingEvent) -> dict[str, Any]:
    """Where the visit came from, when the event says so (UTM tags, referrer, page type)."""
    detail: dict[str, Any] = {}
    context = event.context
    campaign = context.campaign
    if campaign is not None:
        utm = {
            key: clean(value)
            for key, value in campaign.model_dump().items()
            if value is not None and key in ("source", "medium", "name", "term", "content")
        }
        if utm:
            detail["campaign"] = utm
    page = context.page
    if page is not None:
        if page.referrer:
            detail["referrer"] = clean(page.referrer, MAX_URL)
        if page.path:
            detail["path"] = clean(page.path, MAX_URL)
    return detail


def to_row(event: TrackingEvent) -> ActivityRow | None:
    """The row recorded for a tracking event; None for what is not an action (heartbeats) or
    has no visitor to belong to."""
    if isinstance(event, Heartbeat) or event.visitor_id is None:
        return None
    detail = _context_detail(event)
    value: Decimal | None = None
    currency: str | None = None
    if isinstance(event, PageViewed):
        if event.payload.page_type:
            detail["page_type"] = event.payload.page_type
        if event.payload.search_query:
            detail["search_query"] = clean(event.payload.search_query)
    elif isinstance(event, ProductViewed):
        product = event.payload
        currency = product.currency
        detail["product"] = {
            "product_id": clean(product.product_id, 128),
            "name": clean(product.name),
            "category": clean(product.category),
            "price": _money(product.price),
        }
    elif isinstance(event, CartUpdated | CheckoutStarted):
        value, currency = event.payload.value, event.payload.currency
        detail.update(_items(event.payload.items))
    elif isinstance(event, OrderCompleted):
        value, currency = event.payload.value, event.payload.currency
        detail["order_id"] = clean(event.payload.order_id, 128)
        # the tracker's finding (never the visitor's): only the server's orders are revenue
        detail["reported_by"] = event.context.reported_by
        if event.context.over_browser_cap:
            detail["over_cap"] = True
        detail.update(_items(event.payload.items))
    elif isinstance(event, Identified):
        if event.payload.user_id:
            detail["user_id"] = clean(event.payload.user_id, 128)
        detail["traits"] = trim_map(event.payload.traits, MAX_TRAITS)
        detail["verified"] = event.payload.verified
    elif isinstance(event, CustomTracked):
        detail["event"] = clean(event.payload.event)
        detail["properties"] = trim_map(event.payload.properties, MAX_PROPERTIES)
    page = event.context.page
    return ActivityRow(
        event_id=event.event_id,
        site_id=event.site_id,
        visitor_id=event.visitor_id,
        session_id=event.session_id,
        type=ACTIVITY_TYPES[event.type],
        occurred_at=event.occurred_at,
        url=clean(page.url, MAX_URL) if page else None,
        title=clean(page.title, 512) if page else None,
        value=value,
        currency=currency,
        detail=detail,
    )


def retention_cutoff_id(cutoff: datetime) -> UUID:
    """The smallest UUIDv7 of the cutoff's millisecond: every event id below it is older.

    Event ids are UUIDv7 (time-ordered), so the sweep walks the primary key instead of needing
    an index on `occurred_at`.
    """
    ms = int(cutoff.timestamp() * 1000)
    return UUID(int=(ms & 0xFFFF_FFFF_FFFF) << 80)


# ---- the card ------------------------------------------------------------------------------


def encode_cursor(occurred_at: datetime, event_id: UUID) -> str:
    """An opaque `?before=` cursor: the oldest event of a page."""
    raw = f"{occurred_at.isoformat()}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID] | None:
    """The cursor's (occurred_at, event_id), or None if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, event_id = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            return None
        return parsed, UUID(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    """One recorded event as the card's JSON."""
    return {
        "event_id": str(row["event_id"]),
        "type": row["type"],
        "occurred_at": row["occurred_at"].isoformat(),
        "session_id": row["session_id"],
        "url": row["url"],
        "title": row["title"],
        "value": float(row["value"]) if row["value"] is not None else None,
        "currency": row["currency"],
        "detail": row["detail"] or {},
    }


def group_visits(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows (newest first) into visits (newest first, events newest first): by session id;
    events without one join the visit in progress unless 30 minutes passed between them."""
    visits: list[list[dict[str, Any]]] = []
    by_session: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        session = row["session_id"]
        if session is not None:
            visit = by_session.get(session)
            if visit is None:
                visit = by_session[session] = []
                visits.append(visit)
            visit.append(row)
            continue
        last = visits[-1] if visits else None
        if (
            last is not None
            and last[-1]["session_id"] is None
            and (last[-1]["occurred_at"] - row["occurred_at"]).total_seconds() <= VISIT_GAP_S
        ):
            last.append(row)
        else:
            visits.append([row])
    visits.sort(key=lambda visit: visit[0]["occurred_at"], reverse=True)
    return visits


def visit_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a visit amounts to: pages and distinct products viewed, the last cart, orders."""
    # a product page usually sends a page view and a product view: count the page once
    page_urls = {row["url"] for row in rows if row["type"] == "page.viewed"}
    pages = sum(
        1
        for row in rows
        if row["type"] == "page.viewed"
        or (row["type"] == "product.viewed" and (row["url"] is None or row["url"] not in page_urls))
    )
    products: list[str] = []
    cart_value: float | None = None
    currency: str | None = None
    orders = 0
    order_value = 0.0
    order_currency: str | None = None
    for row in reversed(rows):  # oldest first: the last cart is the latest one
        detail = row["detail"] or {}
        if row["type"] == "product.viewed":
            product_id = (detail.get("product") or {}).get("product_id")
            if product_id and product_id not in products:
                products.append(product_id)
        elif row["type"] == "cart.updated" and row["value"] is not None:
            cart_value = float(row["value"])
            currency = row["currency"]
        elif row["type"] == "order.completed" and row["value"] is not None:
            orders += 1
            order_value += float(row["value"])
            order_currency = row["currency"]
            cart_value = 0.0  # ordering empties the cart
    return {
        "pages": pages,
        "products": len(products),
        "cart_value": cart_value,
        "currency": currency or order_currency,
        "orders": orders,
        "order_value": round(order_value, 2) if orders else None,
    }


def visits_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The card's history: visits with their summary and their events, newest first."""
    shaped = []
    for visit in group_visits(rows):
        first = visit[-1]
        source = next(
            ((row["detail"] or {}).get("campaign") for row in reversed(visit) if row["detail"]),
            None,
        )
        # where the visit came from: a referrer of its first events that is another site's
        # page (the store's own pages refer to each other on every click)
        referrer = next(
            (
                found
                for row in reversed(visit)
                if (found := external_referrer((row["detail"] or {}).get("referrer"), row["url"]))
            ),
            None,
        )
        shaped.append(
            {
                "session_id": first["session_id"],
                "started_at": first["occurred_at"].isoformat(),
                "ended_at": visit[0]["occurred_at"].isoformat(),
                "campaign": source,
                "referrer": referrer,
                "summary": visit_summary(visit),
                "events": [event_view(row) for row in visit],
            }
        )
    return shaped


def merged_traits(identified: list[dict[str, Any]]) -> dict[str, Any]:
    """Identify calls' traits, newer over older (rows newest first)."""
    traits: dict[str, Any] = {}
    for row in reversed(identified):
        detail = row["detail"] or {}
        traits.update(detail.get("traits") or {})
        if detail.get("user_id"):
            traits.setdefault("user_id", detail["user_id"])
    return traits


def verified_identify(identified: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest identify's detail when the store vouched for it (None: the newest was only
    the page's claim, or there was none)."""
    for row in identified:  # newest first
        detail = row["detail"] or {}
        return detail if detail.get("verified") is True and detail.get("user_id") else None
    return None


def verified_user(identified: list[dict[str, Any]]) -> str | None:
    """The user id the store vouched for in the newest identify."""
    detail = verified_identify(identified)
    return detail["user_id"] if detail else None


def widget_identified_row(
    *,
    site_id: str,
    visitor_id: str,
    user_id: str,
    email: str | None,
    name: str | None,
    newest: dict[str, Any] | None,
    event_id: UUID,
    occurred_at: datetime,
) -> ActivityRow | None:
    """The identity the store vouched for when the widget started (a valid identity hash),
    as a verified `visitor.identified` row like the snippet's, so the card shows it. None
    when the visitor's newest identify says so already: the widget starts on every page."""
    traits = {key: value for key, value in (("email", email), ("name", name)) if value}
    if newest is not None:
        detail = newest["detail"] or {}
        known = detail.get("traits") or {}
        if (
            detail.get("verified") is True
            and detail.get("user_id") == user_id
            and all(known.get(key) == value for key, value in traits.items())
        ):
            return None
    return ActivityRow(
        event_id=event_id,
        site_id=site_id,
        visitor_id=visitor_id,
        session_id=None,
        type=ACTIVITY_TYPES["identified"],
        occurred_at=occurred_at,
        url=None,
        title=None,
        value=None,
        currency=None,
        detail={"user_id": user_id, "traits": traits, "verified": True, "via": "widget"},
    )


def _first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def identity(
    *,
    visitor_id: str,
    visitor: dict[str, Any] | None,
    conversation_emails: list[str | None],
    traits: dict[str, Any],
    live: dict[str, Any] | None,
    verified_user_id: str | None = None,
    verified_traits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Who the visitor is: what the store vouched for first (the newest identify, when its
    identity hash was valid: `verified_traits`), then what they told chat, then identify
    traits, then triggers. `verified_email` / `verified_name` are only ever the store's; what
    the page or the visitor claimed is never shown as verified."""
    visitor = visitor or {}
    live = live or {}
    vouched = (verified_traits or {}) if verified_user_id is not None else {}
    verified_email = _first_text(vouched.get("email"))
    verified_name = _first_text(vouched.get("name"))
    first, last = traits.get("first_name") or traits.get("firstName"), traits.get("last_name")
    full_from_parts = " ".join(part for part in (first, last) if isinstance(part, str)) or None
    email = _first_text(
        verified_email,
        visitor.get("email"),
        *conversation_emails,
        traits.get("email"),
        live.get("email"),
    )
    name = _first_text(
        verified_name, visitor.get("name"), traits.get("name"), full_from_parts, live.get("name")
    )
    return {
        "label": visitor_label(visitor_id, name=name, email=email),
        "email": email,
        "name": name,
        "identified": bool(email or name or traits),
        "traits": traits,
        "verified": verified_user_id is not None,
        "verified_user_id": verified_user_id,
        "verified_email": verified_email,
        "verified_name": verified_name,
    }


def latest_state(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """From the newest rows: the current page and the cart (when triggers has no snapshot)."""
    page = next((row for row in rows if row["type"] in ("page.viewed", "product.viewed")), None)
    cart: dict[str, Any] | None = None
    for row in rows:
        if row["type"] == "order.completed":
            break  # an order empties the cart; carts before it are gone
        if row["type"] == "cart.updated":
            detail = row["detail"] or {}
            cart = {
                "value": float(row["value"]) if row["value"] is not None else None,
                "currency": row["currency"],
                "items": detail.get("items") or [],
                "quantity": detail.get("quantity", 0),
            }
            break
    return {
        "url": page["url"] if page else None,
        "title": page["title"] if page else None,
        "at": page["occurred_at"].isoformat() if page else None,
        "cart": cart,
    }


def source_view(
    live: dict[str, Any] | None, visits: list[dict[str, Any]], visit_count: int
) -> dict[str, Any]:
    """Source, medium, campaign, referrer (another site's page only) and returning:
    triggers' snapshot first, else the history; `landing` says which kind of arrival it was."""
    found: dict[str, Any]
    if live:
        found = {
            "source": live.get("source"),
            "medium": live.get("medium"),
            "campaign": live.get("campaign"),
            "referrer": external_referrer(live.get("referrer"), live.get("url")),
            "returning": bool(live.get("returning")),
            "visits": max(int(live.get("sessions") or 1), visit_count),
        }
    else:
        latest = visits[0] if visits else {}
        campaign = latest.get("campaign") or {}
        found = {
            "source": campaign.get("source"),
            "medium": campaign.get("medium"),
            "campaign": campaign.get("name"),
            "referrer": latest.get("referrer"),
            "returning": visit_count > 1,
            "visits": visit_count,
        }
    found["landing"] = landing(
        source=_first_text(found["source"]),
        medium=_first_text(found["medium"]),
        campaign=_first_text(found["campaign"]),
        referrer=_first_text(found["referrer"]),
    )
    return found


def card_summary(visits: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the shown visits: what the card's header line says."""
    summary = {"visits": len(visits), "pages": 0, "products": 0, "orders": 0}
    for visit in visits:
        for key in ("pages", "products", "orders"):
            summary[key] += visit["summary"][key]
    return summary


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def now_view(rows: list[dict[str, Any]], live: dict[str, Any] | None) -> dict[str, Any]:
    """Where the visitor is and what their cart holds: triggers' snapshot over the history."""
    now = latest_state(rows)
    if live is None:
        return now
    return {
        "url": live.get("url") or now["url"],
        "title": live.get("title") or now["title"],
        "at": live.get("last_seen_at") or now["at"],
        "cart": now["cart"]
        if live.get("cart_value") is None
        else {
            "value": live.get("cart_value"),
            "currency": live.get("currency"),
            "items": (now["cart"] or {}).get("items", []),
            "quantity": live.get("cart_items"),
        },
    }


def live_view(live: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the card shows of triggers' snapshot (None: not on the site now)."""
    if live is None:
        return None
    return {
        "score": live.get("score"),
        "segment": live.get("segment"),
        "score_breakdown": live.get("score_breakdown") or {},
        "url": live.get("url"),
        "title": live.get("title"),
        "page_type": live.get("page_type"),
        "time_on_site_s": live.get("time_on_site_s"),
        "cart_value": live.get("cart_value"),
        "cart_items": live.get("cart_items"),
        "currency": live.get("currency"),
        "device": live.get("device"),
        "browser": live.get("browser"),
        "os": live.get("os"),
        "invited": live.get("invited"),
        "chatting": live.get("chatting"),
        "last_seen_at": live.get("last_seen_at"),
    }


def conversation_view(row: dict[str, Any]) -> dict[str, Any]:
    """A past or current conversation with its transcript (notes are never read)."""
    return {
        "id": str(row["conversation_id"]),
        "status": row["status"],
        "team": row["team"],
        "agent": {"id": row["agent_id"], "name": row["agent_name"]} if row["agent_id"] else None,
        "email": row["email"],
        "tags": list(row["tags"] or []),
        "rule_id": row["rule_id"],
        "created_at": _iso(row["created_at"]),
        "closed_at": _iso(row["closed_at"]),
        "messages": [
            {
                "seq": message["seq"],
                "author": message["author"],
                "agent_name": message["agent_name"] if message["author"] == "agent" else None,
                "text": message["text"],
                "created_at": _iso(message["created_at"]),
            }
            for message in row["messages"]
        ],
    }


def lead_view(row: dict[str, Any]) -> dict[str, Any]:
    """A conversation of the visitor marked as a lead."""
    return {
        "id": str(row["mark_id"]),
        "conversation_id": str(row["conversation_id"]),
        "agent": {"id": row["agent_id"], "name": row["agent_name"]} if row["agent_id"] else None,
        "validation": row["validation"],
        "note": row["note"],
        "created_at": _iso(row["created_at"]),
    }
