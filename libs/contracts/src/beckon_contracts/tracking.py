"""Clickstream events on `tracking.events`: what a visitor did on a store page.

The tracker builds these from the snippet's batches and from Segment-compatible calls; the
`type` field selects the payload. Names are past tense: each record is a fact.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, StringConstraints, TypeAdapter

from beckon_contracts.envelope import Envelope, Identifier
from beckon_contracts.money import Amount, Currency

SCHEMA_VERSION = 1

ShortText = Annotated[str, StringConstraints(max_length=512)]
Locale = Annotated[str, StringConstraints(max_length=35)]
TimeZone = Annotated[str, StringConstraints(max_length=64)]
Url = Annotated[str, StringConstraints(max_length=2048)]
PageType = Literal[
    "home", "category", "product", "search", "cart", "checkout", "confirmation", "content", "other"
]
# Orders reported by the store's server count as revenue; the browser's are claims.
ReportedBy = Literal["server", "browser"]
# Free-form maps (traits, custom properties) are bounded so one event can never approach
# the broker's message size limit.
Properties = Annotated[dict[str, Any], Field(max_length=100)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Campaign(_Part):
    source: ShortText | None = None
    medium: ShortText | None = None
    name: ShortText | None = None
    term: ShortText | None = None
    content: ShortText | None = None


class PageContext(_Part):
    url: Url
    path: Url | None = None
    title: ShortText | None = None
    referrer: Url | None = None


class UserAgentInfo(_Part):
    browser: ShortText | None = None
    browser_version: ShortText | None = None
    os: ShortText | None = None
    device: Literal["desktop", "mobile", "tablet", "bot", "other"] = "other"


class TrackingContext(_Part):
    """Where and how the event was sent; the server-side fields are set by the tracker only."""

    page: PageContext | None = None
    campaign: Campaign | None = None
    locale: Locale | None = None
    timezone: TimeZone | None = None
    screen_width: int | None = Field(default=None, ge=0, le=100_000)
    screen_height: int | None = Field(default=None, ge=0, le=100_000)
    library: ShortText | None = None
    message_id: ShortText | None = Field(
        default=None, description="The sender's own id (Segment messageId), kept for tracing"
    )
    # Enrichment done at the edge, never trusted from the client:
    ip: IPvAnyAddress | None = Field(default=None, description="Truncated: IPv4 /24, IPv6 /48")
    user_agent: Annotated[str, StringConstraints(max_length=1024)] | None = None
    user_agent_info: UserAgentInfo | None = None
    is_bot: bool = False
    source: Literal["snippet", "segment"] = "snippet"
    reported_by: ReportedBy = Field(
        default="browser",
        description=(
            "Who reported the event, from how the tracker authenticated the call (never from "
            "the body): `server` for a Segment-compatible call with the site's secret write "
            "key and no page Origin, `browser` for the snippet and any call made from a page. "
            "Records from before this field count as `browser`: unverified claims."
        ),
    )
    over_browser_cap: bool = Field(
        default=False,
        description=(
            "A browser-reported order past the tracker's caps (its value, or the visitor's "
            "orders that day): kept whole, counted in no revenue or order figure"
        ),
    )


class LineItem(_Part):
    """A product in a cart or order. Segment's spec makes every product property optional."""

    product_id: Identifier | None = None
    name: ShortText | None = None
    category: ShortText | None = None
    price: Amount | None = None
    quantity: int = Field(default=1, ge=1, le=100_000)


LineItems = Annotated[list[LineItem], Field(max_length=500)]


# ---- payloads -----------------------------------------------------------------------------


class PageViewedPayload(_Part):
    page_type: PageType | None = None
    search_query: ShortText | None = None


class ProductViewedPayload(_Part):
    """The product id is what per-product view counts key on; the rest may be unknown."""

    product_id: Identifier
    name: ShortText | None = None
    category: ShortText | None = None
    price: Amount | None = None
    currency: Currency


class CartUpdatedPayload(_Part):
    items: LineItems
    value: Amount
    currency: Currency


class CheckoutStartedPayload(_Part):
    value: Amount
    currency: Currency
    items: LineItems = Field(default_factory=list)


class OrderCompletedPayload(_Part):
    order_id: Identifier | None = Field(
        default=None, description="The store's order id, when it sends one (reports dedupe on it)"
    )
    value: Amount
    currency: Currency
    items: LineItems = Field(default_factory=list)


class IdentifiedPayload(_Part):
    user_id: Identifier | None = None
    traits: Properties = Field(default_factory=dict)
    verified: bool = Field(
        default=False,
        description="The store vouched for the user id (a valid identity hash, or its server "
        "sent the call); otherwise the traits are only the page's claim",
    )


class HeartbeatPayload(_Part):
    seconds_on_page: int = Field(ge=0, le=86_400)
    active_seconds: int = Field(default=0, ge=0, le=86_400)


class CustomTrackedPayload(_Part):
    event: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    properties: Properties = Field(default_factory=dict)


# ---- events -------------------------------------------------------------------------------


class _TrackingEnvelope(Envelope):
    schema_version: int = SCHEMA_VERSION
    visitor_id: Identifier
    session_id: Identifier | None = None
    context: TrackingContext = Field(default_factory=TrackingContext)


class PageViewed(_TrackingEnvelope):
    type: Literal["page_viewed"] = "page_viewed"
    payload: PageViewedPayload = Field(default_factory=PageViewedPayload)


class ProductViewed(_TrackingEnvelope):
    type: Literal["product_viewed"] = "product_viewed"
    payload: ProductViewedPayload


class CartUpdated(_TrackingEnvelope):
    type: Literal["cart_updated"] = "cart_updated"
    payload: CartUpdatedPayload


class CheckoutStarted(_TrackingEnvelope):
    type: Literal["checkout_started"] = "checkout_started"
    payload: CheckoutStartedPayload


class OrderCompleted(_TrackingEnvelope):
    type: Literal["order_completed"] = "order_completed"
    payload: OrderCompletedPayload


class Identified(_TrackingEnvelope):
    type: Literal["identified"] = "identified"
    payload: IdentifiedPayload


class Heartbeat(_TrackingEnvelope):
    type: Literal["heartbeat"] = "heartbeat"
    payload: HeartbeatPayload


class CustomTracked(_TrackingEnvelope):
    type: Literal["custom"] = "custom"
    payload: CustomTrackedPayload


TrackingEvent = Annotated[
    PageViewed
    | ProductViewed
    | CartUpdated
    | CheckoutStarted
    | OrderCompleted
    | Identified
    | Heartbeat
    | CustomTracked,
    Field(discriminator="type"),
]
TRACKING_EVENT_TYPES: tuple[str, ...] = tuple(
    model.model_fields["type"].default for model in get_args(get_args(TrackingEvent)[0])
)
tracking_event_adapter: TypeAdapter[TrackingEvent] = TypeAdapter(TrackingEvent)


def parse_tracking_event(data: bytes | str) -> TrackingEvent:
    """Validate one `tracking.events` record value."""
    return tracking_event_adapter.validate_json(data)
