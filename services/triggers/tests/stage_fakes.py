"""Stand-ins for a stage's Faust plumbing (the consumed event, the producer, a table with its
changelog) and a runtime with one site's rule and an online team: the stages run without a
broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from beckon_contracts.presence import AgentPresence, TeamPresence
from beckon_contracts.rules import SiteRules
from triggers.app import Runtime
from triggers.config import Settings
from triggers_testing import T0


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
    partition: int | None = None


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
        self.sent.append(Sent(topic, key, value, list(headers or []), partition))

    async def flush(self) -> None:
        pass

    def on(self, topic: str) -> list[Sent]:
        return [record for record in self.sent if record.topic == topic]


class Changelog:
    def get_topic_name(self) -> str:
        return "changelog"


class Table(dict[str, bytes]):
    """A table and its memory store in one (Faust's `table.data`), with the store's record of
    each key's changelog partition."""

    changelog_topic = Changelog()

    def __init__(self, *args: Any, name: str = "table", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self._key_partition: dict[str, int] = {}

    @property
    def data(self) -> Table:
        return self


def runtime(site: str) -> tuple[Runtime, Outputs]:
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
    run.sites.put(SiteRules.model_validate({"site_id": site, "rules": [rule]}))
    run.presence[site]["sales"] = TeamPresence(
        event_id="019a0000-0000-7000-8000-000000000001",
        occurred_at=T0,
        site_id=site,
        team="sales",
        agents=[
            AgentPresence(agent_id="a1", name="Aino", status="online", open_chats=0, max_chats=5)
        ],
    )
    return run, outputs


def event(topic: str, value: Any, headers: Any, offset: int = 0) -> Any:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Event(Message(topic, raw, offset=offset, headers=headers))
