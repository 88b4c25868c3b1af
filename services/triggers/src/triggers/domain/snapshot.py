"""Records for the console's live visitor list and for lead alerts, built from the state.

A snapshot goes out when something a person watching the list would notice changed (page,
cart, score band, invitation, chat...), and at most once per `interval` per visitor. Time on
site is not a change: the console counts it up from `session_started_at` itself.
"""

from __future__ import annotations

from typing import Any

import orjson
from beckon_contracts.ids import derived_uuid7

from triggers.domain.observation import iso
from triggers.domain.scoring import ScoreResult
from triggers.domain.state import VisitorState


def _digest(state: VisitorState, invited: bool) -> int:
    return hash(
        (
            state.session_id,
            state.url,
            state.page_type,
            round(state.cart_value, 2),
            state.cart_items,
            round(state.score),
            state.segment,
            state.orders,
            state.identified,
            invited,
            state.chatting,
            state.device,
            state.browser,
        )
    )


def _invited(state: VisitorState) -> bool:
    return any(
        mark.arm == "invited" and mark.session_id == state.session_id for mark in state.invitations
    )


def breakdown_of(state: VisitorState) -> dict[str, float]:
    """What made the score, from the stored state alone (when this batch did not score: a
    heartbeat, chat feedback). The per-rule parts share the groups' anchor and add up to
    them, so scaling them to the current score gives each part's points now."""
    score_state = state.score_state or {}
    parts: dict[str, float] = score_state.get("b") or {}
    total = sum((score_state.get("g") or {}).values())
    if not parts or total <= 0 or state.score <= 0:
        return {}
    scale = state.score / total
    shown = ((key, round(value * scale, 1)) for key, value in parts.items())
    return {key: points for key, points in shown if points}


def snapshot_payload(
    state: VisitorState, breakdown: dict[str, float] | None = None
) -> dict[str, Any]:
    product = state.current_product
    return {
        "url": state.url,
        "title": state.title,
        "page_type": state.page_type,
        "session_started_at": iso(state.session_started),
        "last_seen_at": iso(state.last_seen),
        "time_on_site_s": round(state.time_on_site(state.last_seen), 1),
        "sessions": max(1, state.sessions),
        "returning": state.returning,
        "source": state.source,
        "medium": state.medium,
        "campaign": state.campaign,
        "referrer": state.referrer,
        "device": state.device,
        "browser": state.browser,
        "os": state.os,
        "cart_value": round(state.cart_value, 2),
        "cart_items": state.cart_items,
        "currency": state.currency,
        "current_product": product["name"] if product else None,
        "score": state.score,
        "segment": state.segment,
        "score_breakdown": breakdown if breakdown is not None else breakdown_of(state),
        "orders": state.orders,
        "identified": state.identified,
        "name": state.name,
        "email": state.email,
        "invited": _invited(state),
        "chatting": state.chatting,
    }


def _record(state: VisitorState, kind: str, seed: str, payload: dict[str, Any]) -> bytes:
    at_ms = int(state.last_seen * 1000)
    return orjson.dumps(
        {
            "event_id": str(derived_uuid7(f"{seed}\0{at_ms}", at_ms)),
            "type": kind,
            "schema_version": 1,
            "occurred_at": iso(state.last_seen),
            "site_id": state.site_id,
            "visitor_id": state.visitor_id,
            "session_id": state.session_id,
            "payload": payload,
        }
    )


def snapshot_record(state: VisitorState, breakdown: dict[str, float] | None = None) -> bytes:
    payload = snapshot_payload(state, breakdown)
    return _record(state, "visitor.state", f"snapshot\0{state.key}", payload)


def snapshot_if_due(
    state: VisitorState, now: float, interval: float, breakdown: dict[str, float] | None = None
) -> tuple[bytes | None, bool]:
    """(record to send now, whether a changed state is waiting for the interval to pass)."""
    digest = _digest(state, _invited(state))
    if digest == state.published_digest:
        return None, False
    if now - state.published_at < interval:
        return None, True
    state.published_digest = digest
    state.published_at = now
    return snapshot_record(state, breakdown), False


def score_crossed_record(state: VisitorState, score: ScoreResult, event_id: str) -> bytes:
    payload = {
        "score": score.score,
        "segment": score.segment,
        "previous_segment": score.previous_segment,
        "breakdown": score.breakdown,
    }
    return _record(state, "visitor.score_crossed", f"score\0{event_id}", payload)
