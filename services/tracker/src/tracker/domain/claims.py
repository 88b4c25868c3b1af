"""What one visitor may claim from the browser: orders past the caps are kept, but flagged.

An order sent by the snippet (or from any page) is the visitor's claim, not the store's word:
reports never count it as revenue. The caps bound even the "reported by the browser" figures
and what a claim can do downstream. Over a cap the order is not refused: a real buyer's cart
still empties and their visit still shows the order; only `over_browser_cap` marks it.

The per-day counts live in this process (like the rate limits): with N replicas a visitor
whose requests spread over them may claim up to N times the count before being flagged.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from decimal import Decimal

from beckon_contracts.tracking import OrderCompleted, TrackingEvent


class BrowserOrderCap:
    """The caps on browser-reported orders: a value (in whatever currency the order names)
    and a number per visitor per UTC day. `max_visitors` bounds the memory: the visitors
    counted longest ago are forgotten first."""

    def __init__(
        self, *, max_value: Decimal, per_visitor_per_day: int, max_visitors: int = 100_000
    ) -> None:
        self.max_value = max_value
        self.per_visitor_per_day = per_visitor_per_day
        self.max_visitors = max_visitors
        self._day: date | None = None
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def checked(self, event: TrackingEvent) -> TrackingEvent:
        """The event as it is to be published: a browser order past a cap comes back
        flagged; every other event unchanged (server orders are never counted here)."""
        if not isinstance(event, OrderCompleted) or event.context.reported_by != "browser":
            return event
        if self._claim(event):
            return event
        context = event.context.model_copy(update={"over_browser_cap": True})
        return event.model_copy(update={"context": context})

    def _claim(self, event: OrderCompleted) -> bool:
        """Count the claim; whether it is within both caps."""
        day = event.received_at.date() if event.received_at else event.occurred_at.date()
        if day != self._day:
            self._day, self._counts = day, OrderedDict()
        key = (event.site_id, event.visitor_id)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count  # now the most recent
        while len(self._counts) > self.max_visitors:
            self._counts.popitem(last=False)
        return count <= self.per_visitor_per_day and event.payload.value <= self.max_value
