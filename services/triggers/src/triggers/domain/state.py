"""Everything the engine knows about one visitor (`site_id:visitor_id`), and how events change it.

Pure data and pure functions: no clock (the event's time is "now"), no I/O. The stream
processor keeps one `VisitorState` per visitor in a Faust table, writing it once per batch;
the backtest replays the same `apply` over recorded events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from triggers.domain.observation import Observation, host_of

SESSION_IDLE_S = 30 * 60
PRODUCT_VIEW_WINDOW_S = 30 * 24 * 3600
MAX_VIEWS_PER_PRODUCT = 20
MAX_PRODUCTS = 50
MAX_CATEGORIES = 30
MAX_RECENT_EVENT_IDS = 32
MAX_INVITATIONS = 20
ATTRIBUTION_WINDOW_S = 7 * 24 * 3600
SCORE_FIELDS = ("score", "segment")


@dataclass(slots=True)
class InvitationMark:
    """One invitation decision about this visitor, and what came of it."""

    invitation_id: str
    rule_id: str
    arm: str  # "invited" | "held_out"
    at: float
    session_id: str | None
    team: str | None = None
    outcome: str | None = None  # shown | accepted | declined | expired
    conversation: bool = False
    orders: int = 0
    revenue: float = 0.0


@dataclass(slots=True)
class VisitorState:
    site_id: str
    visitor_id: str
    first_seen: float = 0.0
    last_seen: float = 0.0
    # the current session
    session_id: str | None = None
    session_started: float = 0.0
    sessions: int = 0
    session_events: int = 0
    # where the visitor is now
    url: str | None = None
    path: str | None = None
    title: str | None = None
    page_type: str | None = None
    page_entered: float = 0.0
    last_active: float = 0.0  # last event that wasn't a heartbeat
    # how the current session arrived
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    referrer: str | None = None
    from_email: bool = False
    # the device the visitor uses now (from the tracker's reading of the user agent)
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    # shopping
    product_views: dict[str, list[float]] = field(default_factory=dict)
    current_product: dict[str, Any] | None = None
    categories: list[str] = field(default_factory=list)
    seen_price: bool = False
    cart_value: float = 0.0
    cart_items: int = 0
    currency: str | None = None
    checkout_started: float = 0.0
    orders: int = 0
    revenue: float = 0.0
    last_order: float = 0.0
    identified: bool = False
    email: str | None = None
    name: str | None = None
    # lead score (kept by triggers.domain.scoring; opaque here)
    score: float = 0.0
    segment: str = "cold"
    score_state: dict[str, Any] = field(default_factory=dict)
    # invitations and candidates
    invitations: list[InvitationMark] = field(default_factory=list)
    candidate_sent: dict[str, float] = field(default_factory=dict)
    # idempotency
    offsets: dict[str, int] = field(default_factory=dict)
    recent_event_ids: list[str] = field(default_factory=list)
    # what the live visitor list last saw (for at-most-1/s snapshots)
    published_at: float = 0.0
    published_digest: int = 0

    # ---- derived facts ------------------------------------------------------------------
    @property
    def key(self) -> str:
        return f"{self.site_id}:{self.visitor_id}"

    @property
    def returning(self) -> bool:
        return self.sessions > 1

    def time_on_site(self, now: float) -> float:
        return max(0.0, now - self.session_started) if self.session_started else 0.0

    def time_on_page(self, now: float) -> float:
        return max(0.0, now - self.page_entered) if self.page_entered else 0.0

    def checkout_idle(self, now: float) -> float:
        """Seconds on checkout without doing anything (heartbeats only say the page is open)."""
        if self.page_type != "checkout":
            return 0.0
        return max(0.0, now - max(self.last_active, self.page_entered))

    def views_of(self, product_id: str) -> int:
        return len(self.product_views.get(product_id, ()))

    @property
    def current_product_views(self) -> int:
        product = self.current_product
        return self.views_of(product["product_id"]) if product else 0

    def invited_for(self, rule_id: str) -> list[InvitationMark]:
        return [mark for mark in self.invitations if mark.rule_id == rule_id]

    @property
    def chatting(self) -> bool:
        return any(mark.conversation for mark in self.invitations[-3:])

    # ---- serialization ------------------------------------------------------------------
    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> VisitorState:
        data = orjson.loads(raw)
        data["invitations"] = [InvitationMark(**mark) for mark in data.get("invitations", ())]
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seen_before(state: VisitorState, event_id: str, source: str | None, offset: int | None) -> bool:
    """Whether this record was already applied: a replay after a crash (its offset is at or
    below the last one applied from that `source`, a topic-partition) or a resend (same id)."""
    if source is not None and offset is not None:
        last = state.offsets.get(source)
        if last is not None and offset <= last:
            return True
    return event_id in state.recent_event_ids


def remember(state: VisitorState, event_id: str, source: str | None, offset: int | None) -> None:
    if source is not None and offset is not None:
        state.offsets[source] = offset
    ids = state.recent_event_ids
    ids.append(event_id)
    if len(ids) > MAX_RECENT_EVENT_IDS:
        del ids[: len(ids) - MAX_RECENT_EVENT_IDS]


@dataclass(frozen=True, slots=True)
class Applied:
    """What changed, for scoring and rules: facts about this event relative to the old state."""

    new_session: bool
    first_visit: bool
    page_changed: bool
    product_view_count: int  # N-th view of this product in the window (0 if not a product view)
    cart_increased: bool
    first_price_seen: bool


def _start_session(state: VisitorState, obs: Observation) -> None:
    state.sessions += 1
    # SDKs without session ids still get sessions (30 min idle), so once-per-session works
    state.session_id = obs.session_id or f"auto-{state.sessions}"
    state.session_started = obs.at
    state.session_events = 0
    state.page_entered = obs.at
    state.checkout_started = 0.0
    state.candidate_sent.clear()
    referrer_host = obs.referrer_host
    own_host = host_of(obs.url)
    external_referrer = referrer_host is not None and referrer_host != own_host
    if obs.campaign_source or obs.campaign_medium or obs.campaign_name:
        state.source = obs.campaign_source
        state.medium = obs.campaign_medium
        state.campaign = obs.campaign_name
    elif external_referrer:
        state.source, state.medium, state.campaign = referrer_host, "referral", None
    else:
        state.source, state.medium, state.campaign = "direct", None, None
    state.referrer = obs.referrer if external_referrer else None
    state.from_email = obs.from_email


def _is_new_session(state: VisitorState, obs: Observation) -> bool:
    if state.sessions == 0:
        return True
    if obs.session_id is not None and obs.session_id != state.session_id:
        return True
    return obs.at - state.last_seen > SESSION_IDLE_S


def apply(state: VisitorState, obs: Observation) -> Applied:
    """Fold one observation into the state (events may arrive slightly out of order)."""
    first_visit = state.sessions == 0
    new_session = _is_new_session(state, obs)
    if first_visit:
        state.first_seen = obs.at
    if new_session:
        _start_session(state, obs)
    state.session_events += 1
    state.last_seen = max(state.last_seen, obs.at)
    if obs.device is not None or obs.browser is not None:
        state.device, state.browser, state.os = obs.device, obs.browser, obs.os
    if obs.type != "heartbeat":
        state.last_active = max(state.last_active, obs.at)

    page_changed = False
    if obs.is_page_change and obs.url != state.url:
        page_changed = True
        state.url, state.path, state.title = obs.url, obs.path, obs.title
        state.page_entered = obs.at
        state.page_type = obs.page_type
        if obs.type == "page_viewed" and obs.page_type != "product":
            state.current_product = None
    elif obs.page_type and obs.type != "heartbeat":
        state.page_type = obs.page_type
        if obs.url and obs.url != state.url:
            state.url, state.path, state.title = obs.url, obs.path, obs.title
            state.page_entered = obs.at
            page_changed = True

    view_count = 0
    first_price_seen = False
    product = obs.product
    if product is not None:
        views = state.product_views.setdefault(product.product_id, [])
        horizon = obs.at - PRODUCT_VIEW_WINDOW_S
        views[:] = [t for t in views if t >= horizon][-(MAX_VIEWS_PER_PRODUCT - 1) :]
        views.append(obs.at)
        view_count = len(views)
        if len(state.product_views) > MAX_PRODUCTS:
            oldest = min(state.product_views, key=lambda pid: state.product_views[pid][-1])
            del state.product_views[oldest]
        state.current_product = {
            "product_id": product.product_id,
            "name": product.name,
            "category": product.category,
            "price": product.price,
            "currency": product.currency,
        }
        if product.category and product.category not in state.categories:
            state.categories.append(product.category)
            del state.categories[:-MAX_CATEGORIES]
        if product.price is not None:
            first_price_seen = not state.seen_price
            state.seen_price = True
        state.page_type = "product"

    cart_increased = False
    if obs.cart_value is not None:
        cart_increased = obs.cart_value > state.cart_value
        state.cart_value = obs.cart_value
        state.cart_items = obs.cart_items or 0
        state.currency = obs.currency
        if obs.type == "checkout_started":
            state.checkout_started = state.checkout_started or obs.at
            state.page_type = "checkout"
    if obs.order_value is not None:
        state.orders += 1
        state.revenue += obs.order_value
        state.last_order = obs.at
        state.cart_value, state.cart_items = 0.0, 0
        state.checkout_started = 0.0
        state.currency = obs.currency
        state.page_type = "confirmation"
    if obs.traits is not None:
        state.identified = True
        email = obs.traits.get("email")
        name = obs.traits.get("name") or obs.traits.get("first_name")
        state.email = email if isinstance(email, str) else state.email
        state.name = name if isinstance(name, str) else state.name
    return Applied(
        new_session=new_session,
        first_visit=first_visit,
        page_changed=page_changed,
        product_view_count=view_count,
        cart_increased=cart_increased,
        first_price_seen=first_price_seen,
    )
