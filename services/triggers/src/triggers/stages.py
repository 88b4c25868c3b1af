"""One batch of records per stage: decode, hand to the engine, write tables once, send outputs.

Each function runs inside a Faust agent (see app.py). Batches are processed in record order
per key; each touched table key is written once per batch; outputs are flushed before the
batch's events are acknowledged, so a committed offset means its outputs are on the broker.
Every record produced from a consumed record carries that record's trace context headers
(`trace_headers`), so one trace follows an event from the tracker to the chat widget.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from beckon_contracts import topics
from beckon_contracts.candidates import (
    CandidateRecord,
    InvitationResolved,
    VisitorsForgotten,
    parse_candidate_record,
)
from beckon_contracts.dead_letter import DeadLettered, FieldError, ReasonCode
from beckon_contracts.ids import uuid7
from beckon_contracts.outcomes import parse_funnel_step
from beckon_contracts.privacy import (
    Erased,
    ForgetRequest,
    ForgetVisitor,
    PrivacyErased,
    parse_privacy_command,
    subject_hash,
)
from beckon_contracts.rule_stats import RuleStats
from beckon_messaging import classify, dead_letter, encode_dead_letter
from beckon_messaging.metrics import count_dead_letter
from beckon_observability import KafkaHeaders, inject_headers, trace_headers
from pydantic import ValidationError

from triggers.domain.decide import Decision, SiteDecider, VisitorMarks
from triggers.domain.engine import CHAT_FEEDBACK_TYPES, Candidate, Outcome, apply_feedback, step
from triggers.domain.observation import BadRecord, observe, parse_time
from triggers.domain.snapshot import score_crossed_record, snapshot_if_due, snapshot_record
from triggers.domain.state import VisitorState, remember, seen_before
from triggers.domain.stats import Arm, RuleFunnel
from triggers.metrics import METRICS
from triggers.tables import Event, delete_table_key, set_table_key

if TYPE_CHECKING:
    from triggers.app import Runtime

log = logging.getLogger("triggers")
FORGET_VISITOR = "privacy.forget_visitor"
SITE_SAVE_INTERVAL_S = 1.0


def _dead_letter(message: Any, raw: bytes, error: Exception) -> bytes:
    """The record for the dead-letter topic (see `_letter`)."""
    return encode_dead_letter(_letter(message, raw, error))


def _letter(message: Any, raw: bytes, error: Exception) -> DeadLettered:
    """A `dead_lettered` record: where it was read, the reason, the offending field and the
    raw input."""
    if isinstance(error, BadRecord):
        reason: ReasonCode = "schema_invalid"
        errors = [FieldError(loc=error.field, msg=error.reason, type="value_error")]
    else:
        reason, errors = classify(error)
    letter = dead_letter(
        raw,
        reason=reason,
        detail=str(error),
        errors=errors,
        source=f"triggers:{message.topic}",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
    return letter


async def _reject(runtime: Runtime, event: Event, error: Exception, dlq: str) -> None:
    raw: bytes = event.message.value or b""
    METRICS.dead_lettered.labels(event.message.topic).inc()
    log.warning("dead-lettered %s@%s: %s", event.message.topic, event.message.offset, error)
    key = (event.message.key or b"unknown").decode("utf-8", "replace")
    letter = _letter(event.message, raw, error)
    await runtime.out.send(
        dlq, key, encode_dead_letter(letter), headers=trace_headers(event.message.headers)
    )
    count_dead_letter(dlq, letter)


# ---- stage 1 --------------------------------------------------------------------------------


def _new_state(key: str) -> VisitorState:
    site_id, _, visitor_id = key.partition(":")
    return VisitorState(site_id=site_id, visitor_id=visitor_id)


async def visitor_batch(runtime: Runtime, table: Any, events: list[Event]) -> None:
    await runtime.ready.wait()
    out = runtime.out
    touched: dict[str, tuple[VisitorState, Event, dict[str, float] | None]] = {}
    for event in events:
        message = event.message
        raw: bytes = message.value or b""
        source = f"{message.topic}:{message.partition}"
        tracked = message.topic == topics.TRACKING_EVENTS.name
        trace = trace_headers(message.headers)
        dlq = topics.TRACKING_DLQ.name if tracked else topics.TRIGGERS_DLQ.name
        try:
            data = orjson.loads(raw)
            key = f"{data['site_id']}:{data['visitor_id']}"
        except Exception as exc:
            await _reject(runtime, event, exc, dlq)
            continue
        if not tracked and data.get("type") == FORGET_VISITOR:
            # a visitor's erasure: the state, its pending snapshot and visitors.state go
            touched.pop(key, None)
            runtime.pending_snapshots.pop(key, None)
            await delete_table_key(out, table, key, event)
            await out.send(topics.VISITORS_STATE.name, key, None, headers=trace)
            METRICS.events.labels("forgotten").inc()
            continue
        entry = touched.get(key)
        if entry is None:
            stored = table.get(key)
            state = VisitorState.from_json(stored) if stored else _new_state(key)
            breakdown = None
        else:
            state, _, breakdown = entry
        event_id = str(data.get("event_id", ""))
        if seen_before(state, event_id, source, message.offset):
            METRICS.duplicates.inc()
            continue
        if tracked:
            try:
                obs = observe(data)
            except BadRecord as exc:
                await _reject(runtime, event, exc, dlq)
                continue
            result = step(runtime.sites.get(obs.site_id), state, obs)
            if result.score is not None:
                breakdown = result.score.breakdown
                if result.score.crossed:
                    await out.send(
                        topics.VISITORS_EVENTS.name,
                        key,
                        score_crossed_record(state, result.score, event_id),
                        headers=trace,
                    )
            if result.candidate is not None:
                METRICS.candidates.inc()
                await out.send(
                    topics.TRIGGERS_CANDIDATES.name,
                    state.site_id,
                    result.candidate.to_record().model_dump_json().encode(),
                    headers=trace,
                )
            await _send_outcomes(runtime, result.outcomes, headers=trace)
        else:
            try:
                at = parse_time(data.get("occurred_at"))
            except BadRecord:
                at = time.time()
            await _send_outcomes(
                runtime,
                apply_feedback(runtime.sites.get(state.site_id), state, data, at),
                headers=trace,
            )
        remember(state, event_id, source, message.offset)
        touched[key] = (state, event, breakdown)

    interval = runtime.settings.snapshot_interval_s
    now = time.time()
    for key, (state, last_event, breakdown) in touched.items():
        record, waiting = snapshot_if_due(state, now, interval, breakdown)
        trace = trace_headers(last_event.message.headers)  # the latest change's
        if record is not None:
            runtime.pending_snapshots.pop(key, None)
            await out.send(topics.VISITORS_STATE.name, key, record, headers=trace)
        elif waiting:
            runtime.pending_snapshots[key] = (
                now + interval,
                snapshot_record(state, breakdown),
                trace,
            )
        await set_table_key(runtime.out, table, key, state.to_json(), last_event)
    for key in await _sweep(runtime, table.name, now):
        # an idle visitor forgotten: off `visitors.state` too (a tombstone, as for an erasure)
        runtime.pending_snapshots.pop(key, None)
        await out.send(topics.VISITORS_STATE.name, key, None)
    await out.flush()
    METRICS.events.labels("visitors").inc(len(events))


async def _sweep(runtime: Runtime, name: str, now: float) -> list[str]:
    """A slice of the table's sweep of idle keys (tables.IdleSweep), between batches: the
    keys it forgot."""
    sweep = runtime.sweeps.get(name)
    if sweep is None:
        return []
    forgot = await sweep.step(runtime.out, now)
    if forgot:
        METRICS.idle_forgotten.labels(name).inc(len(forgot))
        log.info("%s: forgot %d key(s) idle for %.0f s or more", name, len(forgot), sweep.idle_s)
    return forgot


def visitor_last_active(raw: bytes) -> float | None:
    """When a `visitors` value's visitor was last seen (the sweep's reading)."""
    seen = orjson.loads(raw).get("last_seen")
    return float(seen) if seen else None


def marks_last_active(raw: bytes) -> float | None:
    """When admission last decided about an `admission-visitors` value's visitor."""
    return VisitorMarks.from_json(raw).last_active()


def outcome_seen_at(raw: bytes) -> float | None:
    """When an `outcomes-seen` id was counted (b"1": written before ids were dated, kept)."""
    return None if raw == b"1" else float(raw)


async def flush_pending_snapshots(runtime: Runtime) -> None:
    if not runtime.pending_snapshots or runtime.outputs is None:
        return
    now = time.time()
    due = [key for key, (at, _, _) in runtime.pending_snapshots.items() if at <= now]
    for key in due:
        _, record, trace = runtime.pending_snapshots.pop(key)
        await runtime.out.send(topics.VISITORS_STATE.name, key, record, headers=trace)
    await runtime.out.flush()


async def _send_outcomes(
    runtime: Runtime, outcomes: list[Outcome], *, headers: KafkaHeaders | None = None
) -> None:
    for outcome in outcomes:
        await runtime.out.send(
            topics.TRIGGERS_OUTCOMES.name,
            f"{outcome.site_id}:{outcome.rule_id}",
            outcome.to_record().model_dump_json().encode(),
            headers=headers,
        )


# ---- stage 2 --------------------------------------------------------------------------------


async def admission_batch(
    runtime: Runtime, sites_table: Any, visitors_table: Any, events: list[Event]
) -> None:
    await runtime.ready.wait()
    by_site: dict[str, list[tuple[CandidateRecord, Event]]] = defaultdict(list)
    for event in events:
        try:
            record = parse_candidate_record(event.message.value or b"")
        except ValidationError as exc:
            await _reject(runtime, event, exc, topics.TRIGGERS_DLQ.name)
            continue
        by_site[record.site_id].append((record, event))
    now = time.time()
    decisions: list[Decision] = []
    traces: dict[str, KafkaHeaders] = {}  # each candidate's trace, for what its decision sends
    for site_id, items in by_site.items():
        site = runtime.sites.get(site_id)
        presence = runtime.presence.get(site_id, {})
        cached = runtime.deciders.get(site_id)
        if cached is not None:
            decider = cached.refresh(site, presence)
        else:
            decider = SiteDecider.load(site, sites_table.get(site_id), presence)
            runtime.deciders[site_id] = decider
        pending = _Pending()
        forgot = False  # an erasure named a visitor of the site's state: save it now
        for record, event in items:
            if isinstance(record, InvitationResolved):
                decider.resolve(str(record.invitation_id))
                continue
            if isinstance(record, VisitorsForgotten):
                # what came before the erasure is decided first, then the visitors forgotten
                decisions.extend(await pending.decide(runtime, decider, visitors_table, now))
                pending = _Pending()
                for visitor_id in record.visitor_ids:
                    vkey = f"{site_id}:{visitor_id}"
                    await delete_table_key(runtime.out, visitors_table, vkey, event)
                forgot = decider.forget(record.visitor_ids) or forgot
                continue
            candidate = Candidate.from_record(record)
            vkey = f"{site_id}:{candidate.visitor_id}"
            if vkey not in pending.marks:
                raw = visitors_table.get(vkey)
                pending.marks[vkey] = VisitorMarks.from_json(raw) if raw else VisitorMarks()
            pending.candidates.append(candidate)
            pending.last_event[vkey] = event
            traces[candidate.invitation_id] = trace_headers(event.message.headers)
        decisions.extend(await pending.decide(runtime, decider, visitors_table, now))
        # The site's counters and open invitations can be thousands of entries: save them at
        # most once a second (a crash forgets < 1 s of hourly counts; per-visitor limits are
        # saved with every decision), and at once when an erasure renamed a visitor in them.
        if forgot or now - runtime.sites_saved_at.get(site_id, 0.0) >= SITE_SAVE_INTERVAL_S:
            runtime.sites_saved_at[site_id] = now
            anchor = items[-1][1]
            await set_table_key(runtime.out, sites_table, site_id, decider.to_json(), anchor)
    # Decisions go out with their changelog records in one flush. After a crash either the
    # saved decision is found and its record sent again, or (saved record lost) the replayed
    # candidate is decided again under the same invitation id: consumers see one invitation.
    for decision in decisions:
        await _send_decision(
            runtime, decision, headers=traces.get(decision.candidate.invitation_id)
        )
    await _sweep(runtime, visitors_table.name, now)
    await runtime.out.flush()


@dataclass
class _Pending:
    """One site's candidates of a batch waiting for their decision, with their visitors'
    marks (an erasure in the batch decides those before it first)."""

    marks: dict[str, VisitorMarks] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    last_event: dict[str, Event] = field(default_factory=dict)

    async def decide(
        self, runtime: Runtime, decider: SiteDecider, visitors_table: Any, now: float
    ) -> list[Decision]:
        if not self.candidates:
            return []
        decisions = decider.decide(self.candidates, self.marks, now)
        for vkey, visitor_marks in self.marks.items():
            if visitor_marks.changed:
                visitor_marks.seen_at = now
                await set_table_key(
                    runtime.out,
                    visitors_table,
                    vkey,
                    visitor_marks.to_json(),
                    self.last_event[vkey],
                )
        return decisions


async def _send_decision(
    runtime: Runtime, decision: Decision, *, headers: KafkaHeaders | None = None
) -> None:
    out = runtime.out
    for outcome in decision.outcomes:
        await _send_outcomes(runtime, [outcome], headers=headers)
    if decision.record is None:
        METRICS.refused.labels(decision.reason or "unknown").inc()
        if decision.detail:
            log.warning("no invitation: %s: %s", decision.reason, decision.detail[:500])
        return
    key = f"{decision.candidate.site_id}:{decision.candidate.visitor_id}"
    METRICS.decisions.labels(decision.kind).inc()
    await out.send(topics.CHAT_INVITATIONS.name, key, decision.record, headers=headers)
    await out.send(topics.TRIGGERS_FEEDBACK.name, key, decision.record, headers=headers)


# ---- stage 3 --------------------------------------------------------------------------------


async def stats_batch(runtime: Runtime, table: Any, seen: Any, events: list[Event]) -> None:
    """Count outcomes per rule, each once: `seen` remembers every outcome's id, so one sent
    again (a replay upstream) is not counted twice."""
    await runtime.ready.wait()
    now = time.time()
    counted_at = f"{now:.3f}".encode()  # what `seen` keeps: when (its sweep's reading)
    funnels: dict[str, tuple[RuleFunnel, Event]] = {}
    for event in events:
        message = event.message
        try:
            outcome = Outcome.from_record(parse_funnel_step(message.value or b""))
        except ValidationError as exc:
            await _reject(runtime, event, exc, topics.TRIGGERS_DLQ.name)
            continue
        if outcome.source_id and seen.get(outcome.source_id):
            METRICS.duplicates.inc()
            continue
        key = f"{outcome.site_id}:{outcome.rule_id}"
        if key in funnels:
            funnel = funnels[key][0]
        else:
            raw = table.get(key)
            funnel = RuleFunnel.from_dict(orjson.loads(raw)) if raw else RuleFunnel()
        record_outcome(funnel, outcome)
        funnels[key] = (funnel, event)
        if outcome.source_id:
            await set_table_key(runtime.out, seen, outcome.source_id, counted_at, event)
    for key, (funnel, event) in funnels.items():
        await set_table_key(runtime.out, table, key, orjson.dumps(funnel.to_dict()), event)
        site_id, _, rule_id = key.partition(":")
        # counts of many traces: in the stats batch's own (linked to them, see app.py)
        await runtime.out.send(
            topics.RULES_STATS.name,
            key,
            stats_record(site_id, rule_id, funnel),
            headers=inject_headers(),
        )
    await _sweep(runtime, seen.name, now)
    await runtime.out.flush()


def record_outcome(funnel: RuleFunnel, outcome: Outcome) -> None:
    if outcome.kind == "order":
        arm: Arm = "held_out" if outcome.arm == "held_out" else "invited"
        funnel.record_order(
            arm, outcome.value, first_for_visitor=outcome.first, revenue_before=outcome.before
        )
    else:
        funnel.record(outcome.kind)  # type: ignore[arg-type]


def stats_record(site_id: str, rule_id: str, funnel: RuleFunnel) -> bytes:
    record = RuleStats(
        event_id=uuid7(),
        occurred_at=datetime.now(UTC),
        site_id=site_id,
        payload=funnel.to_payload(rule_id),
    )
    # as rules.stats has always been written: no edge times or visitor on a per-rule record
    return record.model_dump_json(exclude={"received_at", "visitor_id", "session_id"}).encode()


# ---- stage 4 --------------------------------------------------------------------------------


async def chat_batch(runtime: Runtime, events: list[Event]) -> None:
    """Re-key the chat facts triggers cares about by visitor (state) and site (admission)."""
    await runtime.ready.wait()
    from beckon_contracts.chat_events import parse_chat_event

    for event in events:
        raw = event.message.value or b""
        try:
            kind = orjson.loads(raw).get("type")
        except Exception as exc:
            await _reject(runtime, event, exc, topics.CHAT_EVENTS_DLQ.name)
            continue
        if kind not in CHAT_FEEDBACK_TYPES:
            continue  # other conversation facts are not triggers' business
        try:
            fact = parse_chat_event(raw)
        except Exception as exc:
            await _reject(runtime, event, exc, topics.CHAT_EVENTS_DLQ.name)
            continue
        key = f"{fact.site_id}:{fact.visitor_id}"
        trace = trace_headers(event.message.headers)
        await runtime.out.send(topics.TRIGGERS_FEEDBACK.name, key, raw, headers=trace)
        invitation_id = getattr(fact.payload, "invitation_id", None)
        if invitation_id is not None and kind != "invitation.shown":
            await runtime.out.send(
                topics.TRIGGERS_CANDIDATES.name,
                fact.site_id,
                InvitationResolved(site_id=fact.site_id, invitation_id=invitation_id)
                .model_dump_json()
                .encode(),
                headers=trace,
            )
    await runtime.out.flush()


# ---- privacy --------------------------------------------------------------------------------


async def privacy_batch(runtime: Runtime, events: list[Event]) -> None:
    """Each erasure command becomes one `privacy.forget_visitor` per visitor on
    `triggers.feedback` (co-partitioned with the `visitors` table, whose stage deletes the
    key) and one `forget` record on the site's partition of `triggers.candidates` (admission
    deletes the visitors' `admission-visitors` keys and their ids in `admission-sites`), then
    triggers' `privacy.erased`. A replay forgets again (nothing) and reports again
    (consumers go by the request id)."""
    await runtime.ready.wait()
    out = runtime.out
    for event in events:
        try:
            command = parse_privacy_command(event.message.value or b"")
        except ValidationError as exc:
            dlq = topics.PRIVACY_REQUESTS.dead_letter
            assert dlq is not None
            await _reject(runtime, event, exc, dlq)
            continue
        trace = trace_headers(event.message.headers)
        now = datetime.now(UTC)
        if command.payload.visitor_ids:
            # admission's part: the site's partition of triggers.candidates (its own tables)
            forgotten = VisitorsForgotten(
                site_id=command.site_id,
                request_id=command.payload.request_id,
                visitor_ids=list(command.payload.visitor_ids),
            )
            await out.send(
                topics.TRIGGERS_CANDIDATES.name,
                command.site_id,
                forgotten.model_dump_json().encode(),
                headers=trace,
            )
        for visitor_id in command.payload.visitor_ids:
            forget = ForgetVisitor(
                event_id=uuid7(),
                occurred_at=now,
                site_id=command.site_id,
                visitor_id=visitor_id,
                payload=ForgetRequest(request_id=command.payload.request_id),
            )
            await out.send(
                topics.TRIGGERS_FEEDBACK.name,
                f"{command.site_id}:{visitor_id}",
                forget.model_dump_json().encode(),
                headers=trace,
            )
        erased = PrivacyErased(
            event_id=uuid7(),
            occurred_at=now,
            site_id=command.site_id,
            payload=Erased(
                request_id=command.payload.request_id,
                service="triggers",
                counts={"visitors": len(command.payload.visitor_ids)},
                visitor_hashes=[subject_hash(v) for v in command.payload.visitor_ids],
                email_hashes=list(command.payload.email_hashes),
            ),
        )
        await out.send(
            topics.PRIVACY_ERASED.name,
            command.site_id,
            erased.model_dump_json().encode(),
            headers=trace,
        )
    await out.flush()
