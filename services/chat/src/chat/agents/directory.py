"""The staff directory on the compacted `agents.directory` topic (key `site_id:agent_id`).

The notifier e-mails staff (lead alerts, escalations) in their console language from it.
An agent's card is what the topic says of them: e-mail, name, language, role, teams and
whether they are active. Every agent row keeps the card last listed and its version
(`directory_version`): `relist` compares the card the row makes now with it and, when they
differ, keeps the new one under the next version and returns its `agent.listed` record for
the same transaction's outbox. Use cases that may change a card name the agent with
`tx.agent_listed(agent_id)` (chat.uow); the seed relists the agents it writes; at start-up
the admin feature relists every agent and republishes what the topic lacks
(chat.admin.topic_fill), so a card changed by any other path reaches the topic then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from beckon_contracts.directory import AgentCard, AgentListed, directory_key
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import AGENTS_DIRECTORY

from chat.agents.store import DirectoryStore, Row
from chat.outbox import OutboxRecord
from chat.refs import now_utc

LANGUAGES = ("en", "fi")


def card_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the directory says of the agent of `row` (without ids and version)."""
    return {
        "email": row["email"],
        "name": row["name"],
        "language": row["locale"] if row["locale"] in LANGUAGES else "en",
        "role": row["role"],
        "teams": sorted(row["teams"]),
        "active": row["deactivated_at"] is None,
    }


def listed_card(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card last listed for the agent of `row` (None: never listed)."""
    stored = row["directory_card"]
    if stored is None:
        return None
    card: dict[str, Any] = orjson.loads(stored) if isinstance(stored, str | bytes) else stored
    return card


def listed_record(
    *, site_id: str, agent_id: str, version: int, card: Mapping[str, Any]
) -> OutboxRecord:
    """The `agent.listed` record of one card (validated against the contract here)."""
    record = AgentListed(
        event_id=uuid7(),
        occurred_at=now_utc(),
        site_id=site_id,
        payload=AgentCard(site_id=site_id, agent_id=agent_id, version=version, **card),
    )
    return OutboxRecord(
        AGENTS_DIRECTORY.name, directory_key(site_id, agent_id), record.model_dump_json().encode()
    )


def key_of(row: Mapping[str, Any]) -> str:
    """The agent's key on the topic, as text (what a feed of the topic holds versions by)."""
    return directory_key(row["site_id"], row["agent_id"]).decode()


def stale(rows: Iterable[Row], on_topic: Mapping[str, int]) -> list[Row]:
    """The listed agents whose card the topic lacks or holds an older version of."""
    return [
        row
        for row in rows
        if row["directory_card"] is not None
        and on_topic.get(key_of(row), 0) < row["directory_version"]
    ]


async def relist(directory: DirectoryStore, agent_ids: Iterable[str]) -> list[OutboxRecord]:
    """List anew the agents whose card changed: the records to publish (none if no card did)."""
    wanted = sorted(set(agent_ids))
    if not wanted:
        return []
    # locked first, then read in a statement of its own: the read sees whatever a
    # concurrent change committed while this waited for the rows (never an older card)
    await directory.lock(wanted)
    records = []
    for row in await directory.entries(wanted):
        card = card_of(row)
        if card == listed_card(row):
            continue
        # checked before it is kept: a card the contract refuses is never listed
        AgentCard(site_id=row["site_id"], agent_id=row["agent_id"], version=1, **card)
        version = await directory.listed(row["agent_id"], orjson.dumps(card).decode())
        records.append(
            listed_record(
                site_id=row["site_id"], agent_id=row["agent_id"], version=version, card=card
            )
        )
    return records
