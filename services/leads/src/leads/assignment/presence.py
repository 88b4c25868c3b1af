"""Agents' presence, followed from the compacted `agents.presence` topic into `leads.presence`.

Chat publishes each team whole (`TeamPresence`, key `site:team`) on every change. Every
instance follows the topic from its beginning (`CompactedTopicFollower`) and writes what is
newer than the stored `as_of` (a record's `occurred_at`; a tombstone's broker timestamp): a
record an instance has already applied, or an older one it reads late, changes nothing. So
the instance that first applies a record is the one that acts on it: when an agent of the
team is online in it, the team's queue is drained in the same unit of work (an agent came
online, or an online agent's chats or leads changed). Records that cannot be read go to the
dead-letter twin (`agents.presence.dlq`) with the reason, and into `leads.dead_letters`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.envelope import is_identifier, is_site_id
from beckon_contracts.presence import AgentPresence, parse_team_presence
from beckon_contracts.topics import AGENTS_PRESENCE, Topic
from beckon_messaging import PLAINTEXT, KafkaSecurity, dead_letter, encode_dead_letter
from beckon_messaging.dead_letters import dead_letter_for
from beckon_messaging.follower import CompactedTopicFollower
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.progress import Watchdog
from pydantic import ValidationError

from leads.assignment import service
from leads.lead import Lead
from leads.uow import UnitOfWorkFactory

log = logging.getLogger("leads.presence")
RETRY_S = 1.0  # the database is away: the record is tried again after this
RETRIED: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TransactionRollbackError,  # a deadlock or serialization failure
    KafkaError,
)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """What a team's record changed: nothing (`stale`), and who came online."""

    stale: bool
    online: tuple[str, ...] = ()
    came_online: tuple[str, ...] = ()


class PresenceStore:
    """`leads.presence`: one row per (site, team, agent), as of the last record applied."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def apply(
        self, site_id: str, team: str, agents: list[AgentPresence], *, as_of: datetime
    ) -> PresenceChange:
        """The team becomes exactly `agents`, unless what is stored is as new or newer."""
        rows = await self.conn.fetch(
            """SELECT agent_id, status, as_of FROM leads.presence
               WHERE site_id = $1 AND team = $2 FOR UPDATE""",
            site_id,
            team,
        )
        if any(row["as_of"] >= as_of for row in rows):
            return PresenceChange(stale=True)
        before = {row["agent_id"]: row["status"] for row in rows}
        ids = [agent.agent_id for agent in agents]
        await self.conn.execute(
            """DELETE FROM leads.presence
               WHERE site_id = $1 AND team = $2 AND NOT (agent_id = ANY($3::text[]))""",
            site_id,
            team,
            ids,
        )
        if agents:
            await self.conn.execute(
                """INSERT INTO leads.presence (site_id, team, agent_id, name, status, as_of)
                   SELECT $1, $2, a.agent_id, a.name, a.status, $6
                   FROM unnest($3::text[], $4::text[], $5::text[]) AS a(agent_id, name, status)
                   ON CONFLICT (site_id, team, agent_id) DO UPDATE
                   SET name = EXCLUDED.name, status = EXCLUDED.status, as_of = EXCLUDED.as_of""",
                site_id,
                team,
                ids,
                [agent.name for agent in agents],
                [agent.status for agent in agents],
                as_of,
            )
            # the row assignment locks and keeps caps on (an admin may never have touched it)
            await self.conn.execute(
                """INSERT INTO leads.agents (site_id, agent_id)
                   SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING""",
                site_id,
                ids,
            )
        online = tuple(agent.agent_id for agent in agents if agent.status == "online")
        came = tuple(agent_id for agent_id in online if before.get(agent_id) != "online")
        return PresenceChange(stale=False, online=online, came_online=came)


@dataclass(frozen=True, slots=True)
class Applied:
    change: PresenceChange
    handed: tuple[Lead, ...] = ()


async def apply_presence(
    *,
    uow: UnitOfWorkFactory,
    site_id: str,
    team: str,
    agents: list[AgentPresence],
    as_of: datetime,
    now: datetime,
) -> Applied:
    """Store a team's presence; with an agent online, drain the team's queue (same unit)."""
    async with uow(site_id, teams=[team]) as tx:
        change = await tx.store(PresenceStore).apply(site_id, team, agents, as_of=as_of)
        if change.stale or not change.online:
            return Applied(change)
        handed = await service.drain(tx, team=team, now=now)
        return Applied(change, tuple(handed))


def team_of_key(key: bytes | None) -> tuple[str, str] | None:
    """(site, team) of an `agents.presence` key `site:team`, or None when it is not one."""
    if not key:
        return None
    site, sep, team = key.decode("utf-8", "replace").rpartition(":")
    if not sep or not is_site_id(site) or not is_identifier(team):
        return None
    return site, team


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PresenceFollower:
    """Follows `agents.presence` into `leads.presence`, one record at a time in topic order
    (a record the database could not take is tried again; an unreadable one dead-lettered)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        uow: UnitOfWorkFactory,
        producer: AIOKafkaProducer,
        client_id: str,
        topic: Topic = AGENTS_PRESENCE,
        security: KafkaSecurity = PLAINTEXT,
        clock: Clock = _utc_now,
        watchdog: Watchdog | None = None,
    ) -> None:
        watchdog = watchdog or Watchdog()
        self.uow = uow
        self.producer = producer
        self.topic = topic
        self.clock = clock
        self.applied = 0
        self.dead_lettered = 0
        self._records: asyncio.Queue[ConsumerRecord[bytes, bytes]] = asyncio.Queue()
        self.follower = CompactedTopicFollower(
            bootstrap,
            topic,
            self._records.put_nowait,
            client_id=client_id,
            security=security,
            progress=watchdog.track(f"follow:{topic.name}"),
        )
        # the records the follower hands over are applied here, one by one
        self.progress = watchdog.track(f"leads-apply:{topic.name}")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"apply:{self.topic.name}")
        await self.follower.start()

    async def stop(self) -> None:
        self.progress.close()
        await self.follower.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        with self.progress.running():
            await self._apply_forever()

    async def _apply_forever(self) -> None:
        while True:
            if self._records.empty():
                self.progress.fetched(0)  # nothing to do: progress too
            record = await self._records.get()
            self.progress.fetched(1 + self._records.qsize())
            while True:
                try:
                    await self.handle(record)
                    break
                except asyncio.CancelledError:
                    raise
                except RETRIED:  # the database or the broker is away, or a deadlock: again
                    log.exception("presence record not applied; retrying")
                    await asyncio.sleep(RETRY_S)
                except Exception as exc:  # the record's own fault: set it aside, go on
                    letter = dead_letter_for(exc, record.value or b"", **self._where(record))
                    with contextlib.suppress(*RETRIED):
                        await self._dead_letter(record, letter)
                    break
            self.progress.handled()

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> Applied | None:
        """Apply one record (None: it was dead-lettered)."""
        named = team_of_key(record.key)
        if record.value is None:  # a tombstone: the team is gone
            if named is None:
                await self._dead_letter(
                    record,
                    dead_letter(
                        b"",
                        reason="schema_invalid",
                        detail="a tombstone without a site:team key",
                        **self._where(record),
                    ),
                )
                return None
            when = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            return await self._apply(named[0], named[1], [], as_of=when)
        try:
            presence = parse_team_presence(record.value)
        except ValidationError as exc:
            await self._dead_letter(
                record, dead_letter_for(exc, record.value, **self._where(record))
            )
            return None
        if named != (presence.site_id, presence.team):
            await self._dead_letter(
                record,
                dead_letter(
                    record.value,
                    reason="schema_invalid",
                    detail=f"the key {record.key!r} does not name the record's site and team"
                    f" ({presence.site_id}:{presence.team})",
                    errors=[{"loc": "team", "msg": "differs from the record's key", "type": "key"}],
                    **self._where(record),
                ),
            )
            return None
        return await self._apply(
            presence.site_id, presence.team, presence.agents, as_of=presence.occurred_at
        )

    async def _apply(
        self, site_id: str, team: str, agents: list[AgentPresence], *, as_of: datetime
    ) -> Applied:
        applied = await apply_presence(
            uow=self.uow, site_id=site_id, team=team, agents=agents, as_of=as_of, now=self.clock()
        )
        self.applied += 1
        if applied.handed:
            log.info(
                "queue drained", extra={"site": site_id, "team": team, "leads": len(applied.handed)}
            )
        return applied

    def _where(self, record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
        """Where a rejected record was read; its site is the key's (an unreadable value may
        name none)."""
        where: dict[str, Any] = {
            "source": f"leads:{self.topic.name}",
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        named = team_of_key(record.key)
        if named is not None:
            where["site_id"] = named[0]
        return where

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], letter: DeadLettered
    ) -> None:
        payload = letter.payload
        dlq = self.topic.dead_letter or f"{self.topic.name}.dlq"
        await self.producer.send_and_wait(
            dlq, encode_dead_letter(letter), key=letter.site_id.encode()
        )
        count_dead_letter(dlq, letter)
        async with self.uow(letter.site_id) as tx:
            await tx.conn.execute(
                """INSERT INTO leads.dead_letters
                       (site_id, source_topic, partition, "offset", reason, detail, value)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                None if letter.site_id == "unknown" else letter.site_id,
                record.topic,
                record.partition,
                record.offset,
                payload.reason,
                payload.detail,
                record.value or b"",
            )
        self.dead_lettered += 1
        log.warning(
            "presence record dead-lettered",
            extra={"reason": payload.reason, "detail": payload.detail[:200]},
        )
