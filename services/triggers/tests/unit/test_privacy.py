"""A visitor's erasure in the stages, without a broker: the command becomes one
`privacy.forget_visitor` per visitor on `triggers.feedback` and triggers' `privacy.erased`; the
visitors stage then deletes the table key (a changelog tombstone) and tombstones
`visitors.state`, and drops a snapshot still waiting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from beckon_contracts import topics
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence
from beckon_contracts.privacy import (
    ErasureRequest,
    ErasureRequested,
    parse_privacy_erased,
    subject_hash,
)
from beckon_contracts.rules import SiteRules
from triggers import stages
from triggers.app import Runtime
from triggers.config import Settings
from triggers_testing import T0, product_view

SITE = "site-erased"


# the fakes of test_trace_headers.py
@dataclass
class Message:
    topic: str
    value: bytes
    key: bytes = b"k"
    partition: int = 0
    offset: int = 0
    headers: Any = ()


@dataclass
class Event:
    message: Message


@dataclass
class Sent:
    topic: str
    key: str
    value: Any
    headers: list[tuple[str, bytes]]


@dataclass
class Outputs:
    sent: list[Sent] = field(default_factory=list)

    async def send(
        self,
        topic: str,
        key: str,
        value: Any,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        self.sent.append(Sent(topic, key, value, list(headers or [])))

    async def flush(self) -> None:
        pass

    def on(self, topic: str) -> list[Sent]:
        return [record for record in self.sent if record.topic == topic]


class Changelog:
    def get_topic_name(self) -> str:
        return "changelog"


class Table(dict[str, bytes]):
    changelog_topic = Changelog()

    @property
    def data(self) -> Table:
        return self


def runtime() -> tuple[Runtime, Outputs]:
    run = Runtime(settings=Settings(snapshot_interval_s=0.001))
    outputs = Outputs()
    run.outputs = outputs  # type: ignore[assignment]
    run.ready.set()
    rule = {
        "id": "fourth-view",
        "name": "4th view",
        "when": {"product_views": {"gte": 4}},
        "message": "{agent_name} here: questions about the {product_name}?",
        "holdout_percent": 0,
    }
    run.sites.put(SiteRules.model_validate({"site_id": SITE, "rules": [rule]}))
    run.presence[SITE]["sales"] = TeamPresence(
        event_id="019a0000-0000-7000-8000-000000000001",
        occurred_at=T0,
        site_id=SITE,
        team="sales",
        agents=[
            AgentPresence(agent_id="a1", name="Aino", status="online", open_chats=0, max_chats=5)
        ],
    )
    return run, outputs


def event(topic: str, value: Any, headers: Any, offset: int = 0) -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Event(Message(topic, raw, offset=offset, headers=headers))


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
    run, out = runtime()
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
    run, out = runtime()
    await stages.privacy_batch(run, [event(topics.PRIVACY_REQUESTS.name, b"{}", ())])
    assert len(out.on(topics.PRIVACY_REQUESTS_DLQ.name)) == 1
    assert out.on(topics.TRIGGERS_FEEDBACK.name) == []
