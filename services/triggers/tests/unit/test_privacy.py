"""A visitor's erasure in the stages, without a broker: the command becomes one
`privacy.forget_visitor` per visitor on `triggers.feedback`, a `forget` record on the site's
partition of `triggers.candidates` and triggers' `privacy.erased`; the visitors stage then
deletes the table key (a changelog tombstone) and tombstones `visitors.state`, and drops a
snapshot still waiting; admission deletes the visitor's `admission-visitors` key and their id
in the site's state."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from beckon_contracts import topics
from beckon_contracts.candidates import VisitorsForgotten
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import (
    ErasureRequest,
    ErasureRequested,
    parse_privacy_erased,
    subject_hash,
)
from stage_fakes import Outputs, Table, event, runtime
from triggers import stages
from triggers.app import Runtime
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


class _NamedChangelog:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Table(Table):
    """A table with a changelog of its own name (admission writes two)."""

    def __init__(self, changelog: str) -> None:
        super().__init__()
        self.changelog_topic = _NamedChangelog(changelog)  # type: ignore[assignment]


async def _candidates(run: Runtime, out: Outputs, *visitors: str) -> list[Any]:
    """Each visitor's fourth product view makes the site's rule select them."""
    for visitor in visitors:
        views = [product_view(SITE, visitor, 30 + 15 * i) for i in range(4)]
        batch = [
            event(topics.TRACKING_EVENTS.name, view, (), offset=i) for i, view in enumerate(views)
        ]
        await stages.visitor_batch(run, Table(), batch)
    selected = [
        event(topics.TRIGGERS_CANDIDATES.name, record.value, (), offset=i)
        for i, record in enumerate(out.on(topics.TRIGGERS_CANDIDATES.name))
    ]
    out.sent.clear()
    return selected


def _outstanding_visitors(sites: Table) -> list[str]:
    return sorted(entry[2] for entry in orjson.loads(sites[SITE])["outstanding"])


async def test_admission_forgets_an_erased_visitors_invitations() -> None:
    run, out = runtime(SITE)
    sites, visitors = _Table("admission-sites-changelog"), _Table("admission-visitors-changelog")
    await stages.admission_batch(run, sites, visitors, await _candidates(run, out, "v1", "v2"))
    assert len(out.on(topics.CHAT_INVITATIONS.name)) == 2
    assert {f"{SITE}:v1", f"{SITE}:v2"} <= set(visitors)
    assert _outstanding_visitors(sites) == ["v1", "v2"]

    out.sent.clear()
    await stages.privacy_batch(run, [event(topics.PRIVACY_REQUESTS.name, command("v1"), ())])
    [forget] = out.on(topics.TRIGGERS_CANDIDATES.name)
    assert forget.key == SITE  # the site's partition: where its admission state lives

    out.sent.clear()
    await stages.admission_batch(
        run, sites, visitors, [event(topics.TRIGGERS_CANDIDATES.name, forget.value, (), offset=9)]
    )
    assert f"{SITE}:v1" not in visitors
    assert f"{SITE}:v2" in visitors
    assert [(s.key, s.value) for s in out.on("admission-visitors-changelog")] == [
        (orjson.dumps(f"{SITE}:v1").decode(), None)
    ]
    # the site's state is saved at once, without the visitor's id; their invitation still
    # holds the team's budget until it is answered or expires
    [saved] = out.on("admission-sites-changelog")
    assert saved.value == sites[SITE]
    assert b'"v1"' not in sites[SITE]
    assert _outstanding_visitors(sites) == [f"erased:{subject_hash('v1')[:32]}", "v2"]
    assert run.deciders[SITE].admission.outstanding("sales", time.time()) == 2
    assert out.on(topics.CHAT_INVITATIONS.name) == []


async def test_a_candidate_before_the_erasure_in_one_batch_is_decided_then_forgotten() -> None:
    run, out = runtime(SITE)
    sites, visitors = _Table("admission-sites-changelog"), _Table("admission-visitors-changelog")
    [selected] = await _candidates(run, out, "v1")
    forget = VisitorsForgotten(site_id=SITE, request_id=uuid.uuid4(), visitor_ids=["v1"])
    await stages.admission_batch(
        run,
        sites,
        visitors,
        [selected, event(topics.TRIGGERS_CANDIDATES.name, forget.model_dump_json().encode(), ())],
    )
    assert len(out.on(topics.CHAT_INVITATIONS.name)) == 1
    assert f"{SITE}:v1" not in visitors
    changes = [s.value for s in out.on("admission-visitors-changelog")]
    assert [value is None for value in changes] == [False, True]  # the marks, then a tombstone
    assert b'"v1"' not in sites[SITE]
