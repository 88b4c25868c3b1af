"""Capture's pure parts: decoding records, the routing facts of a capture, merge records as
stored, the visitors.state cache, and the consumer's retries (with a fake handler)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from beckon_contracts.visitors import VisitorSnapshot, VisitorSnapshotPayload
from capture_testing import T0, at, email_captured, identified, lead_marked, offline_message, raw
from leads.capture import consumer as capture_consumer
from leads.capture.consumer import Backoff, handle_until_done
from leads.capture.model import (
    ConversationInfo,
    NotTheContract,
    VisitorView,
    capture_of,
    decode,
    facts_of,
    keep_survivor_contacts,
    merge_reason,
    record_json,
    record_of,
)
from leads.capture.visitors import VisitorStates
from leads.domain import identity
from leads.domain.identity import LeadIdentity, PersonKey, Trait
from pydantic import ValidationError

SITE = "shop"

# --- decoding ---------------------------------------------------------------------------------


def test_the_used_types_decode_and_others_are_skipped():
    assert decode("chat.events", raw(lead_marked(SITE, "v-1"))).type == "conversation.lead_marked"
    assert decode("tracking.events", raw(identified(SITE, "v-1", {}))).type == "identified"
    message = {"type": "message.sent", "anything": "goes"}  # not ours: not even validated
    assert decode("chat.events", orjson.dumps(message)) is None
    assert decode("tracking.events", orjson.dumps({"type": "page_viewed"})) is None
    assert decode("chat.events", orjson.dumps({"type": "conversation.renamed"})) is None


def test_records_that_are_not_events_are_refused_with_a_reason():
    with pytest.raises(json.JSONDecodeError):
        decode("chat.events", b"not json")
    with pytest.raises(NotTheContract):
        decode("chat.events", b"[1, 2]")
    with pytest.raises(NotTheContract):
        decode("chat.events", b'{"site_id": "shop"}')
    broken = {**orjson.loads(raw(lead_marked(SITE, "v-1"))), "site_id": "Not A Site"}
    with pytest.raises(ValidationError):
        decode("chat.events", orjson.dumps(broken))


def test_captures_of_each_kind():
    mark = capture_of(lead_marked(SITE, "v-1", email="a@example.com", validation="ready_to_buy"))
    assert (mark.kind, mark.validation, mark.agent_id, mark.contact_only) == (
        "lead_marked",
        "ready_to_buy",
        "agent-1",
        False,
    )
    left = capture_of(email_captured(SITE, "v-1", "a@example.com"))
    assert (left.kind, left.validation, left.contact_only, left.channel) == (
        "email_captured",
        "contact_only",
        True,
        "chat",
    )
    offline = capture_of(offline_message(SITE, "v-1", "a@example.com", name="Ann"))
    assert (offline.kind, offline.name, offline.channel) == ("offline_message", "Ann", "offline")


# --- facts ------------------------------------------------------------------------------------


def test_facts_come_from_the_capture_the_conversation_and_the_visitors_state():
    capture = capture_of(lead_marked(SITE, "v-1", validation="qualified"))
    visitor = VisitorView(
        as_of=T0,
        score=80.0,
        segment="hot",
        source="google",
        campaign="spring",
        cart_value=99.9,
        currency="EUR",
    )
    facts = facts_of(capture, visitor, ConversationInfo(tags=("b2b", "vip")))
    assert facts.validation == "qualified"
    assert facts.segment == "b2b"
    assert facts.cart_value == Decimal("99.90")
    assert (facts.currency, facts.source, facts.campaign) == ("EUR", "google", "spring")
    assert (facts.score, facts.score_segment) == (80.0, "hot")

    bare = facts_of(capture, None, None)
    assert (bare.segment, bare.cart_value, bare.score) == ("b2c", None, None)
    assert facts_of(capture, None, None, company="Acme").segment == "b2b"


def test_odd_visitor_facts_do_not_lose_the_lead():
    capture = capture_of(lead_marked(SITE, "v-1"))
    odd = VisitorView(as_of=T0, score=1.0, segment="warm", cart_value=5.0, currency="euros")
    facts = facts_of(capture, odd, None)
    assert (facts.validation, facts.currency) == ("qualified", None)


# --- merge records ----------------------------------------------------------------------------


def _lead(lead_id: str, created: int, **traits: str) -> LeadIdentity:
    return LeadIdentity(
        lead_id=lead_id,
        site_id=SITE,
        status="new",
        created_at=at(created),
        keys=frozenset({PersonKey("visitor", f"v-{lead_id}")}),
        traits={name: Trait(value, "visitor", at(created)) for name, value in traits.items()},
    )


def test_a_merge_record_survives_its_trip_through_json():
    merged = identity.merge(
        _lead("a", 0, email="a@example.com"),
        _lead("b", 5, name="Ann", phone="+358401234567"),
        at=at(10),
        matched_on=[PersonKey("visitor", "v-b")],
    )
    stored = orjson.loads(orjson.dumps(record_json(merged.record)))
    assert record_of(stored) == merged.record


def test_the_survivor_keeps_its_own_email_and_phone_in_a_merge():
    older = _lead("a", 0, email="old@example.com")
    newer = _lead("b", 5, email="new@example.com", name="Ann")
    merged = keep_survivor_contacts(identity.merge(older, newer, at=at(10)), older)
    assert merged.survivor.traits["email"].value == "old@example.com"  # not the newer one
    assert merged.survivor.traits["name"].value == "Ann"  # what it lacked is filled
    assert "email" not in merged.record.traits_after
    assert set(merged.record.traits_after) == {"name"}

    no_email = _lead("c", 0)
    filled = keep_survivor_contacts(identity.merge(no_email, newer, at=at(10)), no_email)
    assert filled.survivor.traits["email"].value == "new@example.com"


def test_the_merge_reason_is_the_strongest_key():
    email, phone, visitor = (
        PersonKey("email", "a@example.com"),
        PersonKey("phone", "+358401234567"),
        PersonKey("visitor", "v"),
    )
    assert merge_reason(frozenset({visitor, phone, email}), by=None) == "email"
    assert merge_reason(frozenset({visitor, phone}), by=None) == "phone"
    assert merge_reason(frozenset({visitor}), by=None) == "visitor"
    assert merge_reason(frozenset({email}), by="admin-1") == "admin"


# --- the visitors.state cache ---------------------------------------------------------------


def _snapshot(visitor: str, when_s: float, score: float) -> SimpleNamespace:
    snapshot = VisitorSnapshot(
        event_id=uuid.UUID(int=(7 << 76) | (2 << 62) | int(when_s * 1000 + 1)),
        occurred_at=at(when_s),
        site_id=SITE,
        visitor_id=visitor,
        payload=VisitorSnapshotPayload(
            session_started_at=T0,
            last_seen_at=at(when_s),
            time_on_site_s=when_s,
            sessions=1,
            returning=False,
            invited=False,
            score=score,
            segment="warm",
            campaign="spring",
        ),
    )
    return SimpleNamespace(key=f"{SITE}:{visitor}".encode(), value=raw(snapshot))


def test_the_cache_keeps_each_visitors_latest_state_and_the_most_recently_updated():
    states = VisitorStates(max_visitors=2)
    states.on_record(_snapshot("v-1", 10, score=40))
    states.on_record(_snapshot("v-1", 5, score=10))  # older: ignored
    view = states.get(SITE, "v-1")
    assert view is not None
    assert (view.score, view.campaign, view.as_of) == (40, "spring", at(10))

    states.on_record(_snapshot("v-2", 11, score=1))
    states.on_record(_snapshot("v-1", 12, score=50))  # v-1 updated again: v-2 is the oldest
    states.on_record(_snapshot("v-3", 13, score=1))
    assert len(states) == 2
    assert states.get(SITE, "v-2") is None
    assert states.get(SITE, "v-1") is not None

    states.on_record(SimpleNamespace(key=f"{SITE}:v-1".encode(), value=None))  # erased
    assert states.get(SITE, "v-1") is None


# --- retries ----------------------------------------------------------------------------------


class FakeHandler:
    """Fails with the given errors in turn, then handles the record."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.dead: list[BaseException] = []

    async def handle(self, topic: str, value: Any, **where: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    async def dead_letter_failed(self, error: BaseException, *args: Any) -> str:
        self.dead.append(error)
        return "dead_lettered"


RECORD = SimpleNamespace(topic="chat.events", value=b"{}", partition=0, offset=7)


async def test_an_outage_is_waited_out_and_the_record_is_not_skipped():
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    outage = [ConnectionRefusedError("postgres is down")] * 12
    handler = FakeHandler(*outage)
    backoff = Backoff(initial_s=0.1, max_s=1.0, max_attempts=3)
    outcome = await handle_until_done(handler, RECORD, backoff=backoff, sleep=sleep)  # type: ignore[arg-type]
    assert outcome == "done"
    assert handler.calls == 13  # every try, far beyond max_attempts: an outage is not the record's
    assert handler.dead == []
    assert pauses[:5] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert max(pauses) == 1.0


async def test_a_record_failing_unexpectedly_is_dead_lettered_after_its_attempts():
    async def sleep(seconds: float) -> None:
        return None

    bug = ZeroDivisionError("a bug")
    handler = FakeHandler(bug, bug, bug, bug)
    backoff = Backoff(initial_s=0.1, max_s=1.0, max_attempts=3)
    outcome = await handle_until_done(handler, RECORD, backoff=backoff, sleep=sleep)  # type: ignore[arg-type]
    assert outcome == "dead_lettered"
    assert handler.calls == 3
    assert handler.dead == [bug]


def test_transient_errors_include_a_lost_race_and_a_deadlock():
    import asyncpg

    assert issubclass(capture_consumer.service.Contended, capture_consumer.TRANSIENT)
    assert issubclass(asyncpg.DeadlockDetectedError, capture_consumer.TRANSIENT)
    assert not issubclass(asyncpg.DataError, capture_consumer.TRANSIENT)


# --- lanes: a poll's partitions side by side ---


def test_a_quiet_poll_is_one_lane_with_each_partitions_records_in_order():
    polled = [[("p0", 0), ("p0", 1)], [("p1", 0)], [("p2", 0), ("p2", 1), ("p2", 2)]]
    (lane,) = capture_consumer.in_lanes(polled, per_lane=100)
    assert sorted(lane) == sorted(r for records in polled for r in records)
    for partition in ("p0", "p1", "p2"):  # each partition's records together, in order
        mine = [n for n, r in enumerate(lane) if r[0] == partition]
        assert mine == list(range(mine[0], mine[0] + len(mine)))
        assert [lane[n][1] for n in mine] == sorted(lane[n][1] for n in mine)


def test_a_busy_poll_is_dealt_into_lanes_that_keep_partitions_whole():
    sizes = (120, 100, 30, 20, 10, 10)  # 290 records: 3 lanes of about 100
    polled = [[(f"p{p}", n) for n in range(size)] for p, size in enumerate(sizes)]
    lanes = capture_consumer.in_lanes(polled, per_lane=100)
    assert [len(lane) for lane in lanes] == [120, 100, 70]
    for records in polled:  # each partition whole in one lane, in its order
        (holder,) = [lane for lane in lanes if records[0] in lane]
        start = holder.index(records[0])
        assert holder[start : start + len(records)] == records
    assert capture_consumer.in_lanes([], per_lane=100) == []
