"""The staff directory (`agents.directory`): an agent's card, its version growing only when
the card changes, and the start-up fill of the topic, on fakes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from beckon_contracts.directory import parse_agent_record
from beckon_contracts.topics import AGENTS_DIRECTORY
from chat.admin import service
from chat.admin.topic_fill import DIRECTORY_FILL, SITES_FILL, VersionsFeed
from chat.agents import directory
from chat.agents.store import DirectoryStore
from fake_uow import FakeUnitsOfWork

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class FakeDirectory:
    """DirectoryStore in memory: agent rows with their listed card and version."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.locked: list[list[str]] = []

    def agent(self, agent_id: str, site_id: str = "shop", **row: Any) -> dict[str, Any]:
        self.rows[agent_id] = {
            "agent_id": agent_id,
            "site_id": site_id,
            "email": f"{agent_id}@example.com",
            "name": agent_id.title(),
            "locale": "en",
            "role": "agent",
            "deactivated_at": None,
            "teams": ["sales"],
            "directory_version": 0,
            "directory_card": None,
            **row,
        }
        return self.rows[agent_id]

    async def lock(self, agent_ids: list[str]) -> None:
        self.locked.append(agent_ids)

    async def entries(self, agent_ids: list[str] | None = None) -> list[dict[str, Any]]:
        return [
            dict(row)
            for agent_id, row in sorted(self.rows.items())
            if agent_ids is None or agent_id in agent_ids
        ]

    async def listed(self, agent_id: str, card: str) -> int:
        row = self.rows[agent_id]
        row["directory_card"] = card  # as asyncpg gives jsonb back: text
        row["directory_version"] += 1
        return int(row["directory_version"])


def _cards(records: list[Any]) -> list[tuple[str, int, Any]]:
    return [
        (record.key.decode(), card.version, card)
        for record in records
        for card in [parse_agent_record(record.value)]
    ]


def test_a_card_says_email_name_language_role_sorted_teams_and_activity() -> None:
    row = {
        "email": "ada@example.com",
        "name": "Ada",
        "locale": "fi",
        "role": "admin",
        "teams": ["sales", "billing"],
        "deactivated_at": None,
    }
    assert directory.card_of(row) == {
        "email": "ada@example.com",
        "name": "Ada",
        "language": "fi",
        "role": "admin",
        "teams": ["billing", "sales"],
        "active": True,
    }
    gone = directory.card_of({**row, "locale": "sv", "deactivated_at": NOW, "teams": []})
    assert (gone["language"], gone["active"], gone["teams"]) == ("en", False, [])


async def test_relisting_publishes_a_card_only_when_it_changed_under_a_growing_version() -> None:
    store = FakeDirectory()
    store.agent("ada")
    first = _cards(await directory.relist(store, ["ada"]))  # type: ignore[arg-type]
    assert [(key, version) for key, version, _ in first] == [("shop:ada", 1)]
    assert (first[0][2].teams, first[0][2].active) == (["sales"], True)
    assert store.locked == [["ada"]]

    assert await directory.relist(store, ["ada"]) == []  # type: ignore[arg-type]

    store.rows["ada"]["locale"] = "fi"
    store.rows["ada"]["teams"] = ["sales", "vip"]
    changed = _cards(await directory.relist(store, ["ada", "ada"]))  # type: ignore[arg-type]
    assert [(version, card.language, card.teams) for _, version, card in changed] == [
        (2, "fi", ["sales", "vip"])
    ]
    store.rows["ada"]["deactivated_at"] = NOW
    gone = _cards(await directory.relist(store, ["ada"]))  # type: ignore[arg-type]
    assert [(version, card.active) for _, version, card in gone] == [(3, False)]
    assert await directory.relist(store, []) == []  # type: ignore[arg-type]


async def test_the_start_up_fill_lists_changed_agents_and_republishes_what_the_topic_lacks() -> (
    None
):
    store = FakeDirectory()
    uow = FakeUnitsOfWork({DirectoryStore: store})
    store.agent("ada")
    store.agent("ben")
    store.agent("cy", site_id="other")
    await directory.relist(store, ["ada", "ben", "cy"])  # type: ignore[arg-type]
    store.rows["ben"]["name"] = "Benjamin"  # changed by a path that did not list it
    store.agent("dee")  # never listed (e.g. before this version of chat)

    sent = await service.publish_missing_agents(uow=uow, on_topic={"shop:ada": 1, "other:cy": 0})
    published = {key: (version, card.name) for key, version, card in _cards(uow.records)}
    assert published == {
        "shop:ben": (2, "Benjamin"),  # relisted
        "shop:dee": (1, "Dee"),  # listed for the first time
        "other:cy": (1, "Cy"),  # the topic holds an older version
    }
    assert sent == 3
    assert [tx.site_id for tx in uow.committed] == ["*"]


def _record(value: bytes | None, key: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=AGENTS_DIRECTORY.name,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value or b""),
        headers=(),
    )


def test_the_feed_holds_the_highest_version_per_agent_and_forgets_tombstoned_ones() -> None:
    feed = VersionsFeed(DIRECTORY_FILL, "127.0.0.1:1", "test")
    card = {
        "email": "ada@example.com",
        "name": "Ada",
        "language": "en",
        "role": "agent",
        "teams": [],
        "active": True,
    }
    for version in (2, 1):
        record = directory.listed_record(site_id="shop", agent_id="ada", version=version, card=card)
        feed.apply(_record(record.value, record.key))
    assert feed.versions == {"shop:ada": 2}
    feed.apply(_record(b'{"type": "agent.listed"}', b"shop:bad"))  # unusable: skipped
    feed.apply(_record(None, b"shop:ada"))
    assert feed.versions == {}
    assert SITES_FILL.topic.name == "sites.config"


@pytest.mark.parametrize("name", ["", "x" * 81])
async def test_a_card_the_contract_refuses_is_never_listed(name: str) -> None:
    store = FakeDirectory()
    store.agent("ada", name=name)
    store.agent("ben")
    uow = FakeUnitsOfWork({DirectoryStore: store})
    assert await service.publish_missing_agents(uow=uow, on_topic={}) == 1
    assert store.rows["ada"]["directory_card"] is None
    assert orjson.loads(store.rows["ben"]["directory_card"])["name"] == "Ben"
