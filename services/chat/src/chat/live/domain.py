"""The live visitor list, without I/O: who is on each site now, what changed since the last
push (coalesced per visitor), who went idle, and the list's filters.

Each visitor is kept twice: the whole `visitor.state` payload (for the card and canned-reply
variables, `Registry.visitor`) and a compact row, serialised once when it changes, which is
all the console's list needs (shown columns and filter fields). Snapshots and deltas are
joined from those serialised rows, so a push costs one string join per site, not one
`dumps` per socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from beckon_contracts.visitors import VisitorSnapshotPayload

from chat.visitors import external_referrer, landing, visitor_label

MAX_URL = 300
MAX_TITLE = 160
MAX_TEXT = 120

BRIEF_KEYS = ("label", "device", "browser", "os", "landing")
SortKey = Literal["score", "cart", "started", "seen", "segment", "page"]
SEGMENT_RANK = {"hot": 3, "warm": 2, "cold": 1}


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def _epoch(value: datetime) -> float:
    return value.timestamp()


@dataclass(slots=True)
class Overlay:
    """What chat itself knows about a visitor, which triggers' snapshot may not: a live
    conversation of any origin, and a personal invitation made in this session."""

    chatting: bool | None = None  # None: no news, the snapshot's own flag stands
    invited_at: float | None = None  # epoch s of the last personal invitation
    email: str | None = None  # given in the chat (triggers learns only identify calls)
    touched: float = 0.0


@dataclass(slots=True)
class Entry:
    source: VisitorSnapshotPayload  # as triggers sent it
    seen: float  # last_seen_at, epoch s
    row: dict[str, Any]  # with chat's own news merged in
    text: str  # the row, serialised


def compact_row(
    visitor_id: str, payload: VisitorSnapshotPayload, overlay: Overlay | None = None
) -> dict[str, Any]:
    """The list's row: what the table shows and what its filters need, nothing more."""
    started = _epoch(payload.session_started_at)
    chatting = payload.chatting
    invited = payload.invited
    email = payload.email
    if overlay is not None:
        email = email or overlay.email
        if overlay.chatting is not None:
            chatting = overlay.chatting
        if overlay.invited_at is not None and overlay.invited_at >= started - 1:
            invited = True
    name = payload.name if payload.identified else None
    referrer = external_referrer(payload.referrer, payload.url)
    return {
        "id": visitor_id,
        "label": visitor_label(visitor_id, name=name, email=email),
        "device": payload.device,
        "browser": _cut(payload.browser, 40),
        "os": _cut(payload.os, 40),
        "landing": landing(
            source=payload.source,
            medium=payload.medium,
            campaign=payload.campaign,
            referrer=referrer,
        ),
        "url": _cut(payload.url, MAX_URL),
        "title": _cut(payload.title, MAX_TITLE),
        "page_type": _cut(payload.page_type, 40),
        "started": round(started, 1),
        "seen": round(_epoch(payload.last_seen_at), 1),
        "sessions": payload.sessions,
        "returning": payload.returning,
        "source": _cut(payload.source, MAX_TEXT),
        "medium": _cut(payload.medium, MAX_TEXT),
        "campaign": _cut(payload.campaign, MAX_TEXT),
        "cart": round(payload.cart_value, 2),
        "items": payload.cart_items,
        "currency": payload.currency,
        "product": _cut(payload.current_product, MAX_TEXT),
        "score": round(payload.score, 1),
        "segment": payload.segment,
        "name": _cut(payload.name, MAX_TEXT) if payload.identified else None,
        "orders": payload.orders,
        "invited": invited,
        "chatting": chatting,
    }


@dataclass
class Site:
    entries: dict[str, Entry] = field(default_factory=dict)
    upserts: set[str] = field(default_factory=set)  # changed since the last push
    removes: set[str] = field(default_factory=set)


class Registry:
    """Every site's live visitors, and each site's changes not yet pushed."""

    def __init__(self, idle_after_s: float) -> None:
        self.idle_after_s = idle_after_s
        self.sites: dict[str, Site] = {}
        self.overlays: dict[tuple[str, str], Overlay] = {}

    # --- input -----------------------------------------------------------------------------

    def apply(
        self, site_id: str, visitor_id: str, payload: VisitorSnapshotPayload, now: float
    ) -> bool:
        """Take a snapshot; False when it is older than what is kept, or already idle."""
        seen = min(_epoch(payload.last_seen_at), now)
        if now - seen >= self.idle_after_s:
            if self.sites.get(site_id) and visitor_id in self.sites[site_id].entries:
                self.remove(site_id, visitor_id)
            return False
        site = self.sites.get(site_id)
        if site is None:
            site = self.sites[site_id] = Site()
        current = site.entries.get(visitor_id)
        if current is not None and seen < current.seen:
            return False  # a late duplicate: the newer snapshot stays
        self._store(site_id, site, visitor_id, payload, seen)
        return True

    def _store(
        self,
        site_id: str,
        site: Site,
        visitor_id: str,
        payload: VisitorSnapshotPayload,
        seen: float,
    ) -> None:
        row = compact_row(visitor_id, payload, self.overlays.get((site_id, visitor_id)))
        site.entries[visitor_id] = Entry(
            source=payload,
            seen=seen,
            row=row,
            text=orjson.dumps(row).decode(),
        )
        site.upserts.add(visitor_id)
        site.removes.discard(visitor_id)

    def remove(self, site_id: str, visitor_id: str) -> bool:
        site = self.sites.get(site_id)
        if site is None or site.entries.pop(visitor_id, None) is None:
            return False
        site.upserts.discard(visitor_id)
        site.removes.add(visitor_id)
        return True

    def note(
        self,
        site_id: str,
        visitor_id: str,
        now: float,
        *,
        chatting: bool | None = None,
        invited_at: float | None = None,
        email: str | None = None,
    ) -> bool:
        """Chat's own news about a visitor (a chat started or ended, a personal invitation,
        an e-mail given in the chat); True when the visitor's row changed."""
        key = (site_id, visitor_id)
        overlay = self.overlays.get(key) or Overlay()
        if chatting is not None:
            overlay.chatting = chatting
        if invited_at is not None:
            overlay.invited_at = max(invited_at, overlay.invited_at or 0.0)
        if email:
            overlay.email = email
        overlay.touched = now
        self.overlays[key] = overlay
        site = self.sites.get(site_id)
        entry = site.entries.get(visitor_id) if site is not None else None
        if site is None or entry is None:
            return False
        before = (entry.row["invited"], entry.row["chatting"], entry.row["label"])
        self._store(site_id, site, visitor_id, entry.source, entry.seen)
        after = site.entries[visitor_id].row
        if (after["invited"], after["chatting"], after["label"]) == before:
            site.upserts.discard(visitor_id)  # nothing the list shows changed
            return False
        return True

    def expire(self, now: float) -> int:
        """Visitors not seen for `idle_after_s` leave the list; returns how many left."""
        gone = 0
        cutoff = now - self.idle_after_s
        for site_id, site in list(self.sites.items()):
            for visitor_id in [v for v, e in site.entries.items() if e.seen <= cutoff]:
                self.remove(site_id, visitor_id)
                gone += 1
            if not site.entries and not site.upserts and not site.removes:
                del self.sites[site_id]
        stale = [k for k, o in self.overlays.items() if o.touched <= cutoff]
        for key in stale:
            del self.overlays[key]
        return gone

    # --- output ----------------------------------------------------------------------------

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        site = self.sites.get(site_id)
        entry = site.entries.get(visitor_id) if site is not None else None
        if entry is None:
            return None
        return {
            **entry.source.model_dump(mode="json"),
            "invited": entry.row["invited"],
            "chatting": entry.row["chatting"],
            "visitor_id": visitor_id,
        }

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        """Who the visitor is and how they came, for the chat list's row (None: not on the
        site now)."""
        site = self.sites.get(site_id)
        entry = site.entries.get(visitor_id) if site is not None else None
        if entry is None:
            return None
        return {key: entry.row[key] for key in BRIEF_KEYS}

    def count(self, site_id: str) -> int:
        site = self.sites.get(site_id)
        return len(site.entries) if site is not None else 0

    def rows(self, site_id: str) -> Iterator[dict[str, Any]]:
        site = self.sites.get(site_id)
        return iter([e.row for e in site.entries.values()] if site is not None else [])

    def snapshot_text(self, site_id: str) -> str:
        """`{"t":"visitors.snapshot","visitors":[...]}`, every row of the site."""
        site = self.sites.get(site_id)
        rows = ",".join(e.text for e in site.entries.values()) if site is not None else ""
        return '{"t":"visitors.snapshot","visitors":[' + rows + "]}"

    def pending_sites(self) -> list[str]:
        return [s for s, site in self.sites.items() if site.upserts or site.removes]

    def take_delta(self, site_id: str) -> str | None:
        """The site's changes since the last call as one delta frame (each visitor once, at
        its latest), or None when nothing changed."""
        site = self.sites.get(site_id)
        if site is None or not (site.upserts or site.removes):
            return None
        upserts = ",".join(site.entries[v].text for v in site.upserts if v in site.entries)
        removes = orjson.dumps(sorted(site.removes)).decode()
        site.upserts.clear()
        site.removes.clear()
        return '{"t":"visitors.delta","upsert":[' + upserts + '],"remove":' + removes + "}"

    def drop_pending(self, site_id: str) -> None:
        """Nobody here watches the site: forget its changes (a subscriber starts from a
        snapshot anyway)."""
        site = self.sites.get(site_id)
        if site is not None:
            site.upserts.clear()
            site.removes.clear()


# --- the list's filters (the HTTP snapshot; the console filters the same way itself) ----------


@dataclass(frozen=True, slots=True)
class Filter:
    min_cart: float | None = None
    segment: str | None = None
    page_type: str | None = None
    returning: bool | None = None
    invited: bool | None = None
    chatting: bool | None = None
    text: str | None = None

    def matches(self, row: dict[str, Any]) -> bool:
        if self.min_cart is not None and (row["cart"] or 0) < self.min_cart:
            return False
        if self.segment is not None and row["segment"] != self.segment:
            return False
        if self.page_type is not None and row["page_type"] != self.page_type:
            return False
        if self.returning is not None and row["returning"] != self.returning:
            return False
        if self.invited is not None and row["invited"] != self.invited:
            return False
        if self.chatting is not None and row["chatting"] != self.chatting:
            return False
        if self.text:
            needle = self.text.casefold()
            haystack = " ".join(
                str(row[k] or "")
                for k in ("id", "url", "title", "source", "campaign", "product", "name")
            )
            haystack += " " + " ".join((row.get("label") or {}).values())
            if needle not in haystack.casefold():
                return False
        return True


def sort_key(key: SortKey, row: dict[str, Any]) -> Any:
    if key == "cart":
        return row["cart"] or 0.0
    if key == "started":
        return row["started"]
    if key == "seen":
        return row["seen"]
    if key == "segment":
        return (SEGMENT_RANK.get(row["segment"], 0), row["score"])
    if key == "page":
        return row["url"] or ""
    return row["score"]


def select(
    rows: Iterable[dict[str, Any]],
    wanted: Filter,
    *,
    sort: SortKey = "score",
    descending: bool = True,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The rows that pass `wanted`, sorted (ties by visitor id, so the order is stable)."""
    kept = sorted(
        (row for row in rows if wanted.matches(row)),
        key=lambda row: row["id"],
    )
    kept.sort(key=lambda row: sort_key(sort, row), reverse=descending)
    return kept[:limit] if limit is not None else kept
