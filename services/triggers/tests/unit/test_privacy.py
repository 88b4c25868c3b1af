"""A visitor's erasure in the stages, without a broker: the command becomes one
`privacy.forget_visitor` per visitor on `triggers.feedback` and triggers' `privacy.erased`; the
visitors stage then deletes the table key (a changelog tombstone) and tombstones
`visitors.state`, and drops a snapshot still waiting."""

from __future__ import annotations

import uuid

import orjson
from beckon_contracts import topics
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import (
    ErasureRequest,
    ErasureRequested,
    parse_privacy_erased,
    subject_hash,
)
from stage_fakes import Table, event, runtime
from triggers import stages
from triggers_testing import T0, product_view

SITE = "site-erased"


def command(*visitors: str) -> bytes:
    return (
        ErasureRequested(
            event_id=uuid7(),
            occurred_at=T0,
            site_id=SITE,
            payload=ErasureRequest(
                request_id=uuid.uuid4(),
                visitor_ids=list(visitors),
                email_hashes=[subject_hash("Anna@Example.org")],
                requested_by="admin-1",
            ),
        )
        .model_dump_json()
        .encode()
    )


async def test_an_erased_visitors_state_is_deleted_and_tombstoned() -> None:
    run, out = runtime(SITE)
    table = Table()
    await stages.visitor_batch(
        run, table, [event(topics.TRACKING_EVENTS.name, product_view(SITE, "v1", 30), ())]
    )
    await stages.visitor_batch(
        run, table, [event(topics.TRACKING_EVENTS.name, product_view(SITE, "v2", 30), ())]
    )
    assert {f"{SITE}:v1", f"{SITE}:v2"} <= set(table)
    run.pending_snapshots[f"{SITE}:v1"] = (0.0, b"{}", [])

    await stages.privacy_batch(run, [event(topics.PRIVACY_REQUESTS.name, command("v1"), ())])
    [forget] = out.on(topics.TRIGGERS_FEEDBACK.name)
    assert forget.key == f"{SITE}:v1"
    [erased] = out.on(topics.PRIVACY_ERASED.name)
    fact = parse_privacy_erased(erased.value)
    assert fact.payload.service == "triggers"
    assert fact.payload.visitor_hashes == [subject_hash("v1")]
    assert b"v1" not in erased.value.replace(b'"visitors"', b"")  # hashes only

    out.sent.clear()
    await stages.visitor_batch(
        run, table, [event(topics.TRIGGERS_FEEDBACK.name, forget.value, (), offset=7)]
    )
    assert f"{SITE}:v1" not in table
    assert f"{SITE}:v2" in table
    assert f"{SITE}:v1" not in run.pending_snapshots
    assert [(s.key, s.value) for s in out.on(topics.VISITORS_STATE.name)] == [(f"{SITE}:v1", None)]
    assert [(s.key, s.value) for s in out.on("changelog")] == [
        (orjson.dumps(f"{SITE}:v1").decode(), None)
    ]


async def test_a_record_that_is_no_command_is_dead_lettered() -> None:
    run, out = runtime(SITE)
    await stages.privacy_batch(run, [event(topics.PRIVACY_REQUESTS.name, b"{}", ())])
    assert len(out.on(topics.PRIVACY_REQUESTS_DLQ.name)) == 1
    assert out.on(topics.TRIGGERS_FEEDBACK.name) == []
