"""The presence follower's reading of `agents.presence` records, with fakes for the database
and the producer: whole teams applied as of their time, tombstones empty the team, unreadable
records are dead-lettered with the reason and the key's site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence, presence_key
from beckon_contracts.topics import AGENTS_PRESENCE, AGENTS_PRESENCE_DLQ
from leads.assignment.presence import PresenceChange, PresenceFollower, PresenceStore, team_of_key

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakePresence:
    applied: list[tuple[str, str, list[str], datetime]] = field(default_factory=list)

    async def apply(self, site_id, team, agents, *, as_of):
        self.applied.append((site_id, team, [a.agent_id for a in agents], as_of))
        return PresenceChange(stale=False, online=(), came_online=())


@dataclass
class FakeConn:
    executed: list[tuple[Any, ...]] = field(default_factory=list)

    async def execute(self, query: str, *args: Any) -> None:
        self.executed.append(args)


class FakeUnits:
    def __init__(self) -> None:
        self.presence = FakePresence()
        self.conn = FakeConn()
        self.locked: list[tuple[str, tuple[str, ...]]] = []

    @asynccontextmanager
    async def __call__(self, site_id: str, *, teams=()) -> AsyncIterator[Any]:
        self.locked.append((site_id, tuple(teams)))
        units = self

        class Tx:
            conn = units.conn

            def store(self, kind):
                assert kind is PresenceStore
                return units.presence

        yield Tx()


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes) -> None:
        self.sent.append((topic, orjson.loads(value), key))


def _record(value: bytes | None, key: bytes | None, offset: int = 7) -> ConsumerRecord:
    return ConsumerRecord(
        topic=AGENTS_PRESENCE.name,
        partition=1,
        offset=offset,
        timestamp=int(T0.timestamp() * 1000),
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


def _follower() -> tuple[PresenceFollower, FakeUnits, FakeProducer]:
    units, producer = FakeUnits(), FakeProducer()
    follower = PresenceFollower(
        "127.0.0.1:1",
        uow=units,  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
        client_id="test",
    )
    return follower, units, producer


def _team(site: str = "shop-1", team: str = "sales") -> TeamPresence:
    return TeamPresence(
        event_id=uuid7(),
        occurred_at=T0,
        site_id=site,
        team=team,
        agents=[AgentPresence(agent_id="ann", name="Ann", status="online", open_chats=1)],
    )


@pytest.mark.parametrize(
    ("key", "named"),
    [
        (b"shop-1:sales", ("shop-1", "sales")),
        (b"shop-1:", None),
        (b"sales", None),
        (None, None),
        (b"shop 1:sales", None),
    ],
)
def test_a_key_names_a_site_and_a_team(key, named):
    assert team_of_key(key) == named


async def test_a_team_is_applied_whole_as_of_its_time_under_its_lock():
    follower, units, producer = _follower()
    team = _team()
    applied = await follower.handle(
        _record(team.model_dump_json().encode(), presence_key("shop-1", "sales"))
    )
    assert applied is not None
    assert units.presence.applied == [("shop-1", "sales", ["ann"], T0)]
    assert units.locked == [("shop-1", ("sales",))]
    assert producer.sent == []


async def test_a_tombstone_empties_the_team_as_of_the_records_time():
    follower, units, _ = _follower()
    await follower.handle(_record(None, b"shop-1:sales"))
    assert units.presence.applied == [("shop-1", "sales", [], T0)]


@pytest.mark.parametrize(
    ("value", "key", "reason", "detail"),
    [
        (b"{not json", b"shop-1:sales", "malformed_json", "Invalid JSON"),
        (
            orjson.dumps({**orjson.loads(_team().model_dump_json()), "agents": [{"agent_id": 1}]}),
            b"shop-1:sales",
            "schema_invalid",
            "agents.0",
        ),
        (
            _team(team="service").model_dump_json().encode(),
            b"shop-1:sales",
            "schema_invalid",
            "key",
        ),
        (None, b"nonsense", "schema_invalid", "tombstone"),
    ],
)
async def test_unreadable_records_go_to_the_dead_letter_twin_with_the_reason(
    value, key, reason, detail
):
    follower, units, producer = _follower()
    assert await follower.handle(_record(value, key)) is None
    assert units.presence.applied == []
    ((topic, letter, letter_key),) = producer.sent
    assert topic == AGENTS_PRESENCE_DLQ.name == AGENTS_PRESENCE.dead_letter
    payload = letter["payload"]
    assert payload["reason"] == reason
    assert detail in payload["detail"] + orjson.dumps(payload.get("errors", [])).decode()
    assert (payload["topic"], payload["partition"], payload["offset"]) == ("agents.presence", 1, 7)
    expected_site = "shop-1" if key == b"shop-1:sales" else "unknown"
    assert letter["site_id"] == expected_site
    assert letter_key == expected_site.encode()
    ((site, source, partition, offset, stored_reason, _, raw),) = units.conn.executed
    assert (site, source, partition, offset) == (
        None if expected_site == "unknown" else expected_site,
        "agents.presence",
        1,
        7,
    )
    assert (stored_reason, raw) == (reason, value or b"")
    assert follower.dead_lettered == 1
