"""The ingest use case: admit a request's events, publish them and their rejects, then answer.

Transport-neutral: routes hand in bytes and edge facts and get a status and a body back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from beckon_contracts.dead_letter import FieldError, ReasonCode
from beckon_contracts.envelope import is_identifier, record_key
from beckon_contracts.topics import TRACKING_DLQ, TRACKING_EVENTS
from beckon_contracts.tracking import TrackingEvent
from beckon_edge import RateLimiter
from beckon_messaging import dead_letter, encode_dead_letter
from beckon_messaging.metrics import count_dead_letter
from pydantic import ValidationError

from tracker.adapters.kafka import BrokerUnavailable, KafkaPublisher, OutboundRecord
from tracker.api.problems import Problem, retry_after
from tracker.config import Settings
from tracker.domain.admission import (
    Admission,
    Candidate,
    Edge,
    admit,
    field_errors,
    raw_json,
)
from tracker.domain.claims import BrowserOrderCap
from tracker.domain.collect import CollectBatch, batch_candidates
from tracker.domain.enrichment import clock_offset
from tracker.domain.identity import vouch
from tracker.domain.segment import segment_candidates
from tracker.domain.sites import Site
from tracker.metrics import TrackerMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Inbound:
    """The request being ingested, as every step needs it."""

    site: Site
    edge: Edge
    route: str  # e.g. "POST /v1/collect"; dead letters name it as their source
    trace_headers: list[tuple[str, bytes]]
    segment: bool = False  # Segment-compatible routes answer with "success" as Segment does
    browser: bool = True  # sent with an Origin (a page), not by the store's server

    def problem(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> Problem:
        extra = {"success": False} if self.segment else None
        return Problem(status, code, message, details=details, extra=extra)


class Ingest:
    def __init__(
        self, settings: Settings, publisher: KafkaPublisher, metrics: TrackerMetrics
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self.visitor_limiter = RateLimiter(
            settings.events_per_s_per_visitor, settings.event_burst_per_visitor
        )
        self.order_cap = BrowserOrderCap(
            max_value=settings.browser_order_max_value,
            per_visitor_per_day=settings.browser_orders_per_visitor_per_day,
        )

    async def collect(self, inbound: Inbound, body: bytes) -> Outcome:
        """A snippet batch: one visitor, many events."""
        data = await self._parse_json(inbound, body)
        try:
            batch = CollectBatch.model_validate(data)
        except ValidationError as exc:
            errors = field_errors(exc)
            message = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:5])
            details = [e.model_dump() for e in errors]
            problem = inbound.problem(422, "schema_invalid", message, details)
            raise await self._dead_lettered(inbound, body, problem, errors) from None
        self._check_count(len(batch.events))
        self._check_visitor_rate(inbound.site, batch.visitor_id, len(batch.events))
        candidates = batch_candidates(batch, site_id=inbound.site.site_id, edge=inbound.edge)
        offset = clock_offset(batch.sent_at, inbound.edge.received_at)
        return await self._admit_and_publish(inbound, candidates, offset, len(body))

    async def segment(self, inbound: Inbound, kind: str | None, body: bytes) -> Outcome:
        """A Segment call: `kind` is the single call's type, or None for /v1/batch."""
        data = await self._parse_json(inbound, body)
        if not isinstance(data, dict):
            problem = inbound.problem(400, "schema_invalid", "body must be a JSON object")
            raise await self._dead_lettered(inbound, body, problem)
        data.pop("writeKey", None)
        if kind is None:
            messages = data.get("batch")
            if not isinstance(messages, list) or not messages:
                error = {"loc": "batch", "msg": "must be a non-empty list", "type": "list_type"}
                message = "batch must be a non-empty list of messages"
                problem = inbound.problem(400, "schema_invalid", message, [error])
                raise await self._dead_lettered(inbound, body, problem)
        else:
            messages = [data | {"type": kind}]
        self._check_count(len(messages))
        per_visitor = Counter(
            str(visitor)
            for message in messages
            if isinstance(message, dict)
            and isinstance(
                visitor := message.get("anonymousId") or message.get("userId"), str | int
            )
        )
        for visitor, count in per_visitor.items():
            self._check_visitor_rate(inbound.site, visitor, count)
        candidates = segment_candidates(
            messages,
            site_id=inbound.site.site_id,
            edge=inbound.edge,
            batch_context=data.get("context") if kind is None else None,
            batch_sent_at=data.get("sentAt"),
        )
        return await self._admit_and_publish(inbound, candidates, timedelta(0), len(body))

    # ---- steps --------------------------------------------------------------------------

    async def _parse_json(self, inbound: Inbound, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            problem = inbound.problem(400, "malformed_json", f"body is not valid JSON: {exc}")
            raise await self._dead_lettered(inbound, body, problem) from None

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_events_per_request:
            raise Problem(
                413,
                "too_many_events",
                f"{count} events in one request; at most {self.settings.max_events_per_request}",
            )

    def _check_visitor_rate(self, site: Site, visitor_id: str, cost: int) -> None:
        wait = self.visitor_limiter.acquire((site.site_id, visitor_id), cost)
        if wait:
            self.metrics.rate_limited.labels("visitor").inc()
            raise Problem(
                429,
                "rate_limited",
                "this visitor sends more events than any person could; slow down",
                headers=retry_after(wait),
            )

    async def _admit_and_publish(
        self,
        inbound: Inbound,
        candidates: Sequence[Candidate],
        offset: timedelta,
        body_size: int,
    ) -> Outcome:
        from_server = inbound.segment and not inbound.browser
        candidates = [vouch(c, inbound.site, from_server=from_server) for c in candidates]
        admission = admit(
            candidates,
            offset=offset,
            received_at=inbound.edge.received_at,
            max_event_bytes=self.settings.max_event_bytes,
            check_sizes=body_size > self.settings.max_event_bytes,
            loc_prefix="batch" if inbound.segment else "events",
        )
        accepted = [self.order_cap.checked(event) for event in admission.accepted]
        over_cap = sum(1 for event in accepted if event.context.over_browser_cap)
        if over_cap:
            self.metrics.events.labels("over_browser_cap").inc(over_cap)
        records = [self._event_record(event, inbound) for event in accepted]
        records += [
            self._dead_letter_record(
                inbound,
                rejection.reason,
                rejection.detail,
                rejection.errors,
                raw_json(rejection.raw),
                visitor_id=_visitor_of(candidates, rejection.index),
            )
            for rejection in admission.rejected
        ]
        await self._publish(records)
        self.metrics.events.labels("accepted").inc(len(admission.accepted))
        for rejection in admission.rejected:
            count_dead_letter(TRACKING_DLQ.name, rejection.reason)
        if admission.rejected:
            self.metrics.events.labels("dead_lettered").inc(len(admission.rejected))
        return _outcome(admission, inbound.segment)

    async def _publish(self, records: list[OutboundRecord]) -> None:
        try:
            with self.metrics.ack_seconds.time():
                await self.publisher.publish(records)
        except BrokerUnavailable as exc:
            self.metrics.broker_failures.inc()
            log.warning("broker did not acknowledge; answering 503", extra={"error": str(exc)})
            raise Problem(
                503,
                "broker_unavailable",
                "events could not be stored right now; nothing was accepted, retry later",
                headers=retry_after(2),
            ) from exc

    async def _dead_lettered(
        self,
        inbound: Inbound,
        raw: bytes,
        problem: Problem,
        errors: Sequence[FieldError] = (),
    ) -> Problem:
        """Publish the rejected body whole to the dead-letter topic; return the answer to raise."""
        reason: ReasonCode = (
            "malformed_json" if problem.code == "malformed_json" else "schema_invalid"
        )
        await self._publish(
            [self._dead_letter_record(inbound, reason, problem.message, errors, raw)]
        )
        self.metrics.events.labels("dead_lettered").inc()
        count_dead_letter(TRACKING_DLQ.name, reason)
        return problem

    def _event_record(self, event: TrackingEvent, inbound: Inbound) -> OutboundRecord:
        return OutboundRecord(
            topic=TRACKING_EVENTS.name,
            key=record_key(event.site_id, event.visitor_id),
            # The concrete model's serializer: same bytes, no union dispatch (~30% faster).
            value=event.model_dump_json(exclude_none=True).encode(),
            headers=[*inbound.trace_headers, ("event_type", event.type.encode())],
        )

    def _dead_letter_record(
        self,
        inbound: Inbound,
        reason: ReasonCode,
        detail: str,
        errors: Sequence[FieldError],
        raw: bytes,
        visitor_id: str | None = None,
    ) -> OutboundRecord:
        letter = dead_letter(
            raw,
            reason=reason,
            detail=detail,
            errors=errors,
            source=inbound.route,
            site_id=inbound.site.site_id,
            visitor_id=visitor_id,
            at=inbound.edge.received_at,
        )
        return OutboundRecord(
            topic=TRACKING_DLQ.name,
            key=record_key(inbound.site.site_id, visitor_id),
            value=encode_dead_letter(letter),
            headers=[*inbound.trace_headers, ("event_type", b"dead_lettered")],
        )


def _visitor_of(candidates: Sequence[Candidate], index: int | None) -> str | None:
    if index is None or index >= len(candidates):
        return None
    fields = candidates[index].fields
    visitor = fields.get("visitor_id") if fields else None
    return visitor if is_identifier(visitor) else None


def _outcome(admission: Admission, segment: bool) -> Outcome:
    accepted = len(admission.accepted)
    if not admission.rejected:
        return Outcome(200, {"success": True} if segment else {"accepted": accepted})
    body: dict[str, Any] = {
        "error": "schema_invalid",
        "message": f"{len(admission.rejected)} event(s) rejected and dead-lettered; "
        f"{accepted} accepted. Fix the fields named below; do not retry unchanged.",
        "accepted": accepted,
        "rejected": [rejection.as_json() for rejection in admission.rejected],
    }
    if not segment:
        return Outcome(422, body)
    # Segment's SDKs read only the status. Part accepted: 200, the one answer every SDK takes
    # as delivered (analytics-python retries anything but 200, older analytics-node anything
    # but 2xx/400/429), so none of them resends the accepted part. Nothing accepted: 400,
    # which every SDK reports and none retries. The body says which events were rejected.
    if accepted:
        return Outcome(200, body | {"success": True})
    return Outcome(400, body | {"success": False, "code": "schema_invalid"})
