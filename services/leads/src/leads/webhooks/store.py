"""The webhook tables (`leads.webhook_endpoints`, `webhook_deliveries`, `webhook_attempts`):
endpoints per site, the durable delivery queue and its log.

`queue` holds each event `events.emit` publishes, and `flush` queues them in the unit of
work's transaction when it commits, so a rolled-back change queues nothing and a committed
one is queued once per subscribed endpoint (UNIQUE (endpoint_id, message_id)). The sender
claims due rows across every site (`claim`, `FOR UPDATE SKIP LOCKED` plus a lease, so a
crashed instance's claims come back) and writes what its attempts came to in batches
(`record`). Every other query is scoped to one site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from leads.domain.webhooks import EndpointHealth, EndpointSecret, WebhookSecret, message_id

DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]
ENDPOINT_COLUMNS = """endpoint_id, site_id, url, description, event_types, secret,
    previous_secret, previous_until, enabled, disabled_reason, failing_since, created_at,
    updated_at"""
DELIVERY_COLUMNS = """delivery_id, endpoint_id, site_id, message_id, event_type, status,
    attempts, round_attempts, next_attempt_at, last_status, last_error, delivered_at,
    created_at"""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One row of `leads.webhook_endpoints`."""

    endpoint_id: UUID
    site_id: str
    url: str
    description: str
    event_types: list[str]
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Endpoint:
        return cls(**dict(row))

    def secrets(self) -> list[EndpointSecret]:
        """The stored secrets as the domain's rotation reads them (current first)."""
        return endpoint_secrets(self.secret, self.previous_secret, self.previous_until)


def endpoint_secrets(
    secret: str, previous: str | None, previous_until: datetime | None
) -> list[EndpointSecret]:
    """The current secret and, while it still signs, the previous one. The rows keep no
    creation times; only the order matters to the domain (the current one is the newer)."""
    found = [EndpointSecret(WebhookSecret.parse(secret), _NEWER)]
    if previous is not None and previous_until is not None:
        found.append(EndpointSecret(WebhookSecret.parse(previous), _OLDER, previous_until))
    return found


_OLDER = datetime(1970, 1, 1, tzinfo=UTC)
_NEWER = datetime(1970, 1, 2, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of `leads.webhook_deliveries` as the log shows it (without the body)."""

    delivery_id: int
    endpoint_id: UUID
    site_id: str
    message_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    round_attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Delivery:
        return cls(**dict(row))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row of `leads.webhook_attempts`."""

    delivery_id: int
    attempt: int
    started_at: datetime
    duration_ms: int
    status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due delivery this instance holds (until its lease ends), with what sending needs."""

    delivery_id: int
    endpoint_id: UUID
    site_id: str
    message_id: str
    event_type: str
    body: bytes
    attempt: int  # the number this attempt gets in the log (1, 2, ...)
    round_attempt: int  # the number the retry schedule counts (1 after a replay)
    url: str
    secrets: list[EndpointSecret]
    health: EndpointHealth


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt came to, and what happens next (from `judge_attempt`)."""

    claimed: Claimed
    started_at: datetime
    duration_ms: int
    http_status: int | None
    error: str | None
    outcome: Literal["delivered", "retry", "failed"]
    finished_at: datetime
    retry_at: datetime | None
    disable: str | None  # set: disable the endpoint for this reason


class WebhookStore:
    """The webhook tables on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._held: list[tuple[str, str, str, bytes]] = []  # `queue`d, for `flush`

    # ---- the queue -------------------------------------------------------------------------
    def queue(self, *, site_id: str, event_type: str, event_id: UUID, body: bytes) -> None:
        """Queue `body` (the event's exact bytes) for each enabled endpoint of the site that
        subscribes to `event_type`, once the unit of work commits: its events are queued
        together, in their order, by one query (`flush`, called by the unit)."""
        self._held.append((site_id, event_type, message_id(event_id), body))

    async def flush(self) -> int:
        """Queue the held events for their sites' subscribed endpoints; returns how many."""
        if not self._held:
            return 0
        held, self._held = self._held, []
        queued: int = await self.conn.fetchval(
            """WITH queued AS (
                 INSERT INTO leads.webhook_deliveries
                        (endpoint_id, site_id, message_id, event_type, body)
                 SELECT e.endpoint_id, e.site_id, h.message_id, h.event_type, h.body
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
                      WITH ORDINALITY AS h(site_id, event_type, message_id, body, n)
                 JOIN leads.webhook_endpoints e
                   ON e.site_id = h.site_id AND e.enabled AND h.event_type = ANY (e.event_types)
                 ORDER BY h.n, e.endpoint_id
                 ON CONFLICT (endpoint_id, message_id) DO NOTHING
                 RETURNING 1)
               SELECT count(*) FROM queued""",
            *(list(column) for column in zip(*held, strict=True)),
        )
        return queued

    async def claim(
        self, *, instance: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        """Up to `limit` due deliveries of enabled endpoints (every site), oldest due first,
        held by `instance` until `lease_until`; rows another instance holds are skipped."""
        rows = await self.conn.fetch(
            """WITH due AS (
                 SELECT d.delivery_id FROM leads.webhook_deliveries d
                 JOIN leads.webhook_endpoints e ON e.endpoint_id = d.endpoint_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled
                   AND (d.claimed_until IS NULL OR d.claimed_until < $1)
                 ORDER BY d.next_attempt_at, d.delivery_id
                 LIMIT $2
                 FOR UPDATE OF d SKIP LOCKED)
               UPDATE leads.webhook_deliveries d
               SET claimed_by = $3, claimed_until = $4
               FROM due, leads.webhook_endpoints e
               WHERE d.delivery_id = due.delivery_id AND e.endpoint_id = d.endpoint_id
               RETURNING d.delivery_id, d.endpoint_id, d.site_id, d.message_id, d.event_type,
                         d.body, d.attempts, d.round_attempts, e.url, e.secret,
                         e.previous_secret, e.previous_until, e.failing_since""",
            now,
            limit,
            instance,
            lease_until,
        )
        return [
            Claimed(
                delivery_id=r["delivery_id"],
                endpoint_id=r["endpoint_id"],
                site_id=r["site_id"],
                message_id=r["message_id"],
                event_type=r["event_type"],
                body=bytes(r["body"]),
                attempt=r["attempts"] + 1,
                round_attempt=r["round_attempts"] + 1,
                url=r["url"],
                secrets=endpoint_secrets(r["secret"], r["previous_secret"], r["previous_until"]),
                health=EndpointHealth(failing_since=r["failing_since"]),
            )
            for r in rows
        ]

    async def release(self, *, instance: str, delivery_ids: Sequence[int]) -> None:
        """Give back claims this instance will not finish (stopping), for anyone to take."""
        await self.conn.execute(
            """UPDATE leads.webhook_deliveries SET claimed_by = NULL, claimed_until = NULL
               WHERE delivery_id = ANY ($1::bigint[]) AND claimed_by = $2""",
            list(delivery_ids),
            instance,
        )

    async def record(self, *, instance: str, results: Sequence[Result]) -> list[Endpoint]:
        """Store a batch of attempts and their verdicts (call in a transaction); returns the
        endpoints this batch disabled."""
        if not results:
            return []
        await self.conn.execute(
            """INSERT INTO leads.webhook_attempts
                      (delivery_id, attempt, started_at, duration_ms, status, error)
               SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::int[],
                                    $5::int[], $6::text[])
               ON CONFLICT (delivery_id, attempt) DO NOTHING""",
            [r.claimed.delivery_id for r in results],
            [r.claimed.attempt for r in results],
            [r.started_at for r in results],
            [r.duration_ms for r in results],
            [r.http_status for r in results],
            [r.error for r in results],
        )
        # a row whose claim was lost (lease over, replayed meanwhile) keeps its new state
        await self.conn.execute(
            """UPDATE leads.webhook_deliveries d
               SET status = CASE u.outcome WHEN 'retry' THEN 'pending' ELSE u.outcome END,
                   attempts = d.attempts + 1,
                   round_attempts = d.round_attempts + 1,
                   next_attempt_at = COALESCE(u.retry_at, d.next_attempt_at),
                   claimed_by = NULL, claimed_until = NULL,
                   last_status = u.http_status, last_error = u.error,
                   delivered_at = CASE WHEN u.outcome = 'delivered' THEN u.finished_at
                                       ELSE d.delivered_at END
               FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::int[], $5::text[],
                           $6::timestamptz[])
                    AS u(delivery_id, outcome, retry_at, http_status, error, finished_at)
               WHERE d.delivery_id = u.delivery_id AND d.claimed_by = $7""",
            [r.claimed.delivery_id for r in results],
            [r.outcome for r in results],
            [r.retry_at for r in results],
            [r.http_status for r in results],
            [r.error for r in results],
            [r.finished_at for r in results],
            instance,
        )
        # an endpoint's health follows its latest attempt in the batch
        latest: dict[UUID, Result] = {}
        for result in sorted(results, key=lambda r: r.finished_at):
            latest[result.claimed.endpoint_id] = result
        healthy = [e for e, r in latest.items() if r.outcome == "delivered"]
        failing = [(e, r.finished_at) for e, r in latest.items() if r.outcome != "delivered"]
        if healthy:
            await self.conn.execute(
                """UPDATE leads.webhook_endpoints SET failing_since = NULL
                   WHERE endpoint_id = ANY ($1::uuid[]) AND failing_since IS NOT NULL""",
                healthy,
            )
        if failing:
            await self.conn.execute(
                """UPDATE leads.webhook_endpoints e SET failing_since = u.since
                   FROM unnest($1::uuid[], $2::timestamptz[]) AS u(endpoint_id, since)
                   WHERE e.endpoint_id = u.endpoint_id AND e.failing_since IS NULL""",
                [e for e, _ in failing],
                [since for _, since in failing],
            )
        disabled: list[Endpoint] = []
        for result in results:
            if result.disable is not None:
                found = await self.disable(
                    endpoint_id=result.claimed.endpoint_id,
                    reason=result.disable,
                    now=result.finished_at,
                )
                if found is not None:
                    disabled.append(found)
        return disabled

    async def disable(self, *, endpoint_id: UUID, reason: str, now: datetime) -> Endpoint | None:
        """Disable an enabled endpoint and cancel its pending deliveries (they stay in the log
        for a replay); None when it was disabled already."""
        row = await self.conn.fetchrow(
            f"""UPDATE leads.webhook_endpoints
                SET enabled = false, disabled_reason = $2, updated_at = $3
                WHERE endpoint_id = $1 AND enabled RETURNING {ENDPOINT_COLUMNS}""",  # noqa: S608
            endpoint_id,
            reason,
            now,
        )
        if row is None:
            return None
        await self.conn.execute(
            """UPDATE leads.webhook_deliveries
               SET status = 'cancelled', claimed_by = NULL, claimed_until = NULL,
                   last_error = $2
               WHERE endpoint_id = $1 AND status = 'pending'""",
            endpoint_id,
            f"the endpoint was disabled ({reason})",
        )
        return Endpoint.of(row)

    # ---- endpoints (one site) --------------------------------------------------------------
    async def add_endpoint(
        self,
        *,
        site_id: str,
        endpoint_id: UUID,
        url: str,
        description: str,
        event_types: Sequence[str],
        secret: str,
        now: datetime,
    ) -> Endpoint:
        row = await self.conn.fetchrow(
            f"""INSERT INTO leads.webhook_endpoints
                       (endpoint_id, site_id, url, description, event_types, secret,
                        created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {ENDPOINT_COLUMNS}""",  # noqa: S608
            endpoint_id,
            site_id,
            url,
            description,
            list(event_types),
            secret,
            now,
        )
        return Endpoint.of(row)

    async def endpoints(self, site_id: str) -> list[Endpoint]:
        rows = await self.conn.fetch(
            f"SELECT {ENDPOINT_COLUMNS} FROM leads.webhook_endpoints "  # noqa: S608
            "WHERE site_id = $1 ORDER BY created_at, endpoint_id",
            site_id,
        )
        return [Endpoint.of(r) for r in rows]

    async def endpoint(
        self, site_id: str, endpoint_id: UUID, *, lock: bool = False
    ) -> Endpoint | None:
        row = await self.conn.fetchrow(
            f"SELECT {ENDPOINT_COLUMNS} FROM leads.webhook_endpoints "  # noqa: S608
            "WHERE site_id = $1 AND endpoint_id = $2" + (" FOR UPDATE" if lock else ""),
            site_id,
            endpoint_id,
        )
        return Endpoint.of(row) if row else None

    async def update_endpoint(
        self, site_id: str, endpoint_id: UUID, *, now: datetime, **changes: Any
    ) -> Endpoint | None:
        """Set the given columns (url, description, event_types, enabled, disabled_reason,
        failing_since, secret, previous_secret, previous_until)."""
        allowed = {
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "failing_since",
            "secret",
            "previous_secret",
            "previous_until",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not endpoint columns: {sorted(unknown)}")
        names = list(changes)
        sets = ", ".join(f"{name} = ${i + 4}" for i, name in enumerate(names))
        row = await self.conn.fetchrow(
            f"""UPDATE leads.webhook_endpoints SET {sets}{", " if sets else ""}updated_at = $3
                WHERE site_id = $1 AND endpoint_id = $2 RETURNING {ENDPOINT_COLUMNS}""",  # noqa: S608
            site_id,
            endpoint_id,
            now,
            *(list(v) if name == "event_types" else v for name, v in changes.items()),
        )
        return Endpoint.of(row) if row else None

    async def delete_endpoint(self, site_id: str, endpoint_id: UUID) -> bool:
        done = await self.conn.fetchval(
            """DELETE FROM leads.webhook_endpoints WHERE site_id = $1 AND endpoint_id = $2
               RETURNING true""",
            site_id,
            endpoint_id,
        )
        return bool(done)

    # ---- the log (one site) ----------------------------------------------------------------
    async def deliveries(
        self,
        site_id: str,
        endpoint_id: UUID,
        *,
        status: DeliveryStatus | None,
        before: int | None,
        limit: int,
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first (`before`: a delivery id, to page on)."""
        rows = await self.conn.fetch(
            f"""SELECT {DELIVERY_COLUMNS} FROM leads.webhook_deliveries
                WHERE site_id = $1 AND endpoint_id = $2
                  AND ($3::text IS NULL OR status = $3)
                  AND ($4::bigint IS NULL OR delivery_id < $4)
                ORDER BY delivery_id DESC LIMIT $5""",  # noqa: S608
            site_id,
            endpoint_id,
            status,
            before,
            limit,
        )
        return [Delivery.of(r) for r in rows]

    async def attempts(self, delivery_ids: Sequence[int]) -> dict[int, list[Attempt]]:
        rows = await self.conn.fetch(
            """SELECT delivery_id, attempt, started_at, duration_ms, status, error
               FROM leads.webhook_attempts WHERE delivery_id = ANY ($1::bigint[])
               ORDER BY delivery_id, attempt""",
            list(delivery_ids),
        )
        found: dict[int, list[Attempt]] = {i: [] for i in delivery_ids}
        for r in rows:
            found[r["delivery_id"]].append(Attempt(**dict(r)))
        return found

    async def delivery(self, site_id: str, delivery_id: int) -> Delivery | None:
        row = await self.conn.fetchrow(
            f"SELECT {DELIVERY_COLUMNS} FROM leads.webhook_deliveries "  # noqa: S608
            "WHERE site_id = $1 AND delivery_id = $2",
            site_id,
            delivery_id,
        )
        return Delivery.of(row) if row else None

    async def requeue(self, site_id: str, delivery_id: int, *, now: datetime) -> Delivery | None:
        """Send a delivery again now (a replay): same webhook-id and body, a new round of
        attempts on the schedule."""
        row = await self.conn.fetchrow(
            f"""UPDATE leads.webhook_deliveries
                SET status = 'pending', next_attempt_at = $3, round_attempts = 0,
                    claimed_by = NULL, claimed_until = NULL
                WHERE site_id = $1 AND delivery_id = $2
                RETURNING {DELIVERY_COLUMNS}""",  # noqa: S608
            site_id,
            delivery_id,
            now,
        )
        return Delivery.of(row) if row else None

    async def log_sent(
        self,
        *,
        site_id: str,
        endpoint_id: UUID,
        msg_id: str,
        event_type: str,
        body: bytes,
        status: DeliveryStatus,
        started_at: datetime,
        duration_ms: int,
        http_status: int | None,
        error: str | None,
    ) -> int:
        """Log a message sent outside the queue (a test send): its delivery and one attempt."""
        delivery_id: int = await self.conn.fetchval(
            """INSERT INTO leads.webhook_deliveries
                      (endpoint_id, site_id, message_id, event_type, body, status, attempts,
                       round_attempts, next_attempt_at, last_status, last_error, delivered_at,
                       created_at)
               VALUES ($1, $2, $3, $4, $5, $6::text, 1, 1, $7::timestamptz, $8, $9,
                       CASE WHEN $6::text = 'delivered' THEN $7::timestamptz END, $7)
               RETURNING delivery_id""",
            endpoint_id,
            site_id,
            msg_id,
            event_type,
            body,
            status,
            started_at,
            http_status,
            error,
        )
        await self.conn.execute(
            """INSERT INTO leads.webhook_attempts
                      (delivery_id, attempt, started_at, duration_ms, status, error)
               VALUES ($1, 1, $2, $3, $4, $5)""",
            delivery_id,
            started_at,
            duration_ms,
            http_status,
            error,
        )
        return delivery_id
