"""Trace context through the stages, without a broker: every record a stage produces from a
consumed record carries that record's traceparent/tracestate, one event's trace from
`tracking.events` to `chat.invitations` and the chat facts that come back."""

from __future__ import annotations

import orjson
from beckon_contracts import topics
from stage_fakes import Sent, Table, event, runtime
from triggers import stages
from triggers.config import Settings
from triggers_testing import product_view

SITE = "site-traced"
TRACE = [
    ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ("tracestate", b"beckon=1"),
]
OTHER_TRACE = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]


def trace_of(records: list[Sent]) -> list[list[tuple[str, bytes]]]:
    return [record.headers for record in records]


async def test_one_events_trace_reaches_every_record_it_causes() -> None:
    run, out = runtime(SITE)
    views = [product_view(SITE, "v1", 30 + 15 * i) for i in range(4)]
    # the first views came in other requests; the fourth, which fires the rule, in TRACE
    batch = [
        event(topics.TRACKING_EVENTS.name, view, OTHER_TRACE if i < 3 else TRACE, offset=i)
        for i, view in enumerate(views)
    ]
    batch[-1].message.headers = (("event_type", b"product_viewed"), *TRACE)
    await stages.visitor_batch(run, Table(), batch)

    (candidate,) = out.on(topics.TRIGGERS_CANDIDATES.name)
    assert candidate.headers == TRACE  # the W3C fields only: event_type stays behind
    assert trace_of(out.on(topics.VISITORS_STATE.name)) == [TRACE]  # the latest change's

    out.sent.clear()
    value = candidate.value if isinstance(candidate.value, bytes) else orjson.dumps(candidate.value)
    await stages.admission_batch(
        run,
        Table(),
        Table(),
        [event(topics.TRIGGERS_CANDIDATES.name, value, candidate.headers)],
    )
    (invitation,) = out.on(topics.CHAT_INVITATIONS.name)
    assert invitation.headers == TRACE
    assert trace_of(out.on(topics.TRIGGERS_FEEDBACK.name)) == [TRACE]
    assert out.on(topics.TRIGGERS_OUTCOMES.name)
    assert all(o.headers == TRACE for o in out.on(topics.TRIGGERS_OUTCOMES.name))

    # the copy on triggers.feedback comes back to the visitor stage: its outcomes keep the trace
    out.sent.clear()
    await stages.visitor_batch(
        run,
        Table(),
        [event(topics.TRIGGERS_FEEDBACK.name, invitation.value, TRACE, offset=9)],
    )
    assert out.sent, "the invitation's feedback produced nothing"
    assert all(record.headers == TRACE for record in out.sent if record.topic != "changelog")


async def test_chat_facts_and_rejects_keep_their_records_trace() -> None:
    run, out = runtime(SITE)
    shown = {
        "event_id": "019a0000-0000-7000-8000-0000000000aa",
        "type": "invitation.accepted",
        "schema_version": 1,
        "occurred_at": "2026-11-02T10:01:00Z",
        "site_id": SITE,
        "visitor_id": "v1",
        "payload": {
            "invitation_id": "019a0000-0000-7000-8000-0000000000bb",
            "rule_id": "fourth-view",
            "team": "sales",
        },
    }
    await stages.chat_batch(
        run,
        [
            event(topics.CHAT_EVENTS.name, shown, TRACE),
            event(topics.CHAT_EVENTS.name, b"{not json", OTHER_TRACE, offset=1),
        ],
    )
    assert trace_of(out.on(topics.TRIGGERS_FEEDBACK.name)) == [TRACE]
    assert trace_of(out.on(topics.TRIGGERS_CANDIDATES.name)) == [TRACE]  # the resolve record
    assert trace_of(out.on(topics.CHAT_EVENTS_DLQ.name)) == [OTHER_TRACE]


def test_the_worker_exports_spans_where_the_other_services_do(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Settings().otel_exporter_otlp_endpoint == "http://collector:4318"
    monkeypatch.setenv("TRIGGERS_OTLP_ENDPOINT", "http://own:4318")
    assert Settings().otel_exporter_otlp_endpoint == "http://own:4318"
