"""E-mail intents, their tries and the suppression list, in `notifier`."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

SITE_HOUR_SHARDS = 16


def address_hash(address: str) -> bytes:
    """How a suppressed address is kept: sha-256 of it, lower-cased and trimmed."""
    return hashlib.sha256(address.strip().lower().encode()).digest()


@dataclass(frozen=True, slots=True)
class Email:
    email_id: UUID
    idempotency_key: str
    site_id: str
    template: str
    recipient: str
    recipient_kind: str
    language: str
    conversation_id: UUID | None
    visitor_id: str | None
    source_event_id: UUID
    context: dict[str, Any]
    message_id: str
    status: str
    reason: str | None
    attempts: int
    due_at: datetime
    created_at: datetime
    sent_at: datetime | None
    subject: str | None

    @classmethod
    def of(cls, row: Any) -> Email:
        values = {name: row[name] for name in cls.__slots__}  # type: ignore[attr-defined]
        context = values["context"]
        values["context"] = orjson.loads(context) if isinstance(context, str | bytes) else context
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "email_id": str(self.email_id),
            "template": self.template,
            "recipient": self.recipient,
            "recipient_kind": self.recipient_kind,
            "language": self.language,
            "conversation_id": str(self.conversation_id) if self.conversation_id else None,
            "status": self.status,
            "reason": self.reason,
            "attempts": self.attempts,
            "subject": self.subject,
            "message_id": self.message_id,
            "created_at": self.created_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


COLUMNS = ", ".join(Email.__slots__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Attempt:
    email_id: UUID
    attempt: int
    outcome: str  # sent, retry, failed
    smtp_code: int | None
    detail: str | None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class HoldFacts:
    """What `EmailStore.hold_facts` found."""

    suppressed: str | None
    to_recipient: int
    to_visitor: int
    site_hour: int


class EmailStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._site_hours: Counter[tuple[str, datetime]] = Counter()

    async def insert(
        self,
        *,
        email_id: UUID,
        key: str,
        site_id: str,
        template: str,
        recipient: str,
        recipient_kind: str,
        language: str,
        conversation_id: UUID | None,
        visitor_id: str | None,
        source_event_id: UUID,
        context: dict[str, Any],
        message_id: str,
        status: str,
        reason: str | None,
        due_at: datetime,
        created_at: datetime,
    ) -> bool:
        """The intent, unless its key is there already (then False: nothing new)."""
        inserted = await self.conn.fetchval(
            """INSERT INTO notifier.emails
                   (email_id, idempotency_key, site_id, template, recipient, recipient_kind,
                    language, conversation_id, visitor_id, source_event_id, context, message_id,
                    status, reason, due_at, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15,
                       $16)
               ON CONFLICT DO NOTHING RETURNING true""",
            email_id,
            key,
            site_id,
            template,
            recipient,
            recipient_kind,
            language,
            conversation_id,
            visitor_id,
            source_event_id,
            orjson.dumps(context).decode(),
            message_id,
            status,
            reason,
            due_at,
            created_at,
        )
        return bool(inserted)

    async def suppress(self, site_id: str, address: str, reason: str, detail: str | None) -> bool:
        """Put the address on the site's list (True if it was not on it), and stop what waits
        for it."""
        added = await self.conn.fetchval(
            """INSERT INTO notifier.suppressions (site_id, address_hash, reason, detail)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            site_id,
            address_hash(address),
            reason,
            detail,
        )
        await self.conn.execute(
            """UPDATE notifier.emails SET status = 'suppressed', reason = $3
               WHERE site_id = $1 AND lower(recipient) = lower($2)
                 AND status IN ('scheduled', 'pending')""",
            site_id,
            address,
            reason,
        )
        return bool(added)

    def count_site_hour(self, site_id: str, hour: datetime) -> None:
        self._site_hours[(site_id, hour)] += 1

    async def flush(self) -> None:
        """This unit's e-mails per site and hour, one row each, at the end of its transaction
        (so a unit of many e-mails holds a counter row for a moment, not for its whole
        length), on a shard of its own choosing: concurrent units rarely meet on one row."""
        pending, self._site_hours = self._site_hours, Counter()
        shard = random.randrange(SITE_HOUR_SHARDS)
        for (site_id, hour), emails in sorted(pending.items()):
            await self.conn.execute(
                """INSERT INTO notifier.site_hours AS h (site_id, hour, shard, emails)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (site_id, hour, shard) DO UPDATE SET emails = h.emails + $4""",
                site_id,
                hour,
                shard,
                emails,
            )

    async def hold_facts(
        self,
        *,
        since: datetime,
        hour: datetime,
        site_id: str,
        recipient: str,
        visitor_id: str | None,
        besides: UUID | None = None,
    ) -> HoldFacts:
        """What the guards before an e-mail weigh, in one query: the site's suppression of
        the address, the e-mails meant for the recipient and for the visitor since `since`
        (everything but the cancelled and suppressed, `besides` that one), and the site's
        e-mails in `hour`: those committed, and this unit's own (`count_site_hour`), which
        `flush` writes at commit.

        The recipient's and the visitor's rows are found through their own index first
        (MATERIALIZED): asyncpg keeps each statement prepared, and a generic plan made while
        the table was empty would otherwise read every e-mail of the site in that hour. The
        site is a parameter the planner cannot see through (`(SELECT $3)`): planned for a new
        site's literal id, which the statistics say has no e-mails, the site's own index tied
        with the visitor's, and the bench saw it read the site's hour for every e-mail."""
        row = await self.conn.fetchrow(
            """WITH to_recipient AS MATERIALIZED (
                   SELECT email_id, site_id, status FROM notifier.emails
                   WHERE lower(recipient) = lower($2) AND created_at >= $1),
               to_visitor AS MATERIALIZED (
                   SELECT email_id, status FROM notifier.emails
                   WHERE visitor_id = $4 AND site_id = (SELECT $3::text) AND created_at >= $1)
               SELECT
                   (SELECT reason FROM notifier.suppressions
                    WHERE site_id = $3 AND address_hash = $5) AS suppressed,
                   (SELECT count(*) FROM to_recipient
                    WHERE site_id = $3 AND status NOT IN ('cancelled', 'suppressed')
                      AND email_id IS DISTINCT FROM $6) AS to_recipient,
                   (SELECT count(*) FROM to_visitor
                    WHERE status NOT IN ('cancelled', 'suppressed')
                      AND email_id IS DISTINCT FROM $6) AS to_visitor,
                   (SELECT sum(emails) FROM notifier.site_hours
                    WHERE site_id = $3 AND hour = $7) AS site_hour""",
            since,
            recipient,
            site_id,
            visitor_id,
            address_hash(recipient),
            besides,
            hour,
        )
        assert row is not None  # one row always
        return HoldFacts(
            suppressed=row["suppressed"],
            to_recipient=int(row["to_recipient"]),
            to_visitor=int(row["to_visitor"]),
            site_hour=int(row["site_hour"] or 0) + self._site_hours[(site_id, hour)],
        )

    async def get(self, site_id: str, email_id: UUID) -> Email | None:
        row = await self.conn.fetchrow(
            f"SELECT {COLUMNS} FROM notifier.emails WHERE email_id = $1 AND site_id = $2",  # noqa: S608
            email_id,
            site_id,
        )
        return Email.of(row) if row is not None else None

    async def claim(
        self, *, instance: str, now: datetime, lease: timedelta, limit: int
    ) -> list[tuple[Email, str]]:
        """Due e-mails (and those whose claim ran out: a crashed instance's), each with the
        status it had (`scheduled` ones are composed now), marked `sending`, one more try,
        and held for this instance until `now + lease`; other instances skip them."""
        rows = await self.conn.fetch(
            f"""WITH waiting AS (
                    SELECT email_id, status AS was FROM notifier.emails
                    WHERE status IN ('scheduled', 'pending') AND due_at <= $1
                    ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED),
                lapsed AS (
                    SELECT email_id, status AS was FROM notifier.emails
                    WHERE status = 'sending' AND claimed_until < $1
                    ORDER BY claimed_until LIMIT $4 FOR UPDATE SKIP LOCKED),
                due AS (SELECT * FROM waiting UNION ALL SELECT * FROM lapsed)
                UPDATE notifier.emails e
                SET status = 'sending', claimed_by = $2, claimed_until = $3,
                    attempts = e.attempts + 1
                FROM due WHERE e.email_id = due.email_id
                RETURNING {", ".join(f"e.{name}" for name in Email.__slots__)}, due.was""",  # type: ignore[attr-defined]  # noqa: S608
            now,
            instance,
            now + lease,
            limit,
        )
        return [(Email.of(row), row["was"]) for row in rows]

    async def count_due(self, *, now: datetime, cap: int) -> int:
        """E-mails due now and not yet claimed (up to `cap`): the sender's backlog."""
        count: int = await self.conn.fetchval(
            """SELECT count(*) FROM (
                   SELECT 1 FROM notifier.emails
                   WHERE status IN ('scheduled', 'pending') AND due_at <= $1 LIMIT $2) due""",
            now,
            cap,
        )
        return count

    async def compose(self, email_id: UUID, context: dict[str, Any]) -> None:
        """A scheduled e-mail's content, decided when it became due."""
        await self.conn.execute(
            "UPDATE notifier.emails SET context = $2::jsonb WHERE email_id = $1",
            email_id,
            orjson.dumps(context).decode(),
        )

    async def set_status(self, email_id: UUID, status: str, reason: str | None = None) -> None:
        await self.conn.execute(
            """UPDATE notifier.emails SET status = $2, reason = $3, claimed_by = NULL,
                   claimed_until = NULL
               WHERE email_id = $1""",
            email_id,
            status,
            reason,
        )

    async def record(
        self,
        attempts: list[Attempt],
        *,
        now: datetime,
        instance: str,
        retry_at: dict[UUID, datetime],
    ) -> None:
        """The tries' results: sent, to try again at `retry_at[id]`, or failed. One statement
        (the tries logged and the e-mails updated together), so that outside a transaction it
        is in effect the moment Postgres has it: no BEGIN or COMMIT round trip to die between."""
        if not attempts:
            return
        await self.conn.execute(
            """WITH result AS (
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[],
                                        $5::timestamptz[], $6::text[])
                       AS r(email_id, outcome, smtp_code, detail, retry_at, subject)),
               logged AS (
                   INSERT INTO notifier.attempts
                       (email_id, attempt, at, outcome, smtp_code, detail, instance)
                   SELECT r.email_id, e.attempts, $7, r.outcome, r.smtp_code, r.detail, $8
                   FROM result r JOIN notifier.emails e USING (email_id)
                   ON CONFLICT DO NOTHING)
               UPDATE notifier.emails e SET
                   status = CASE r.outcome WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'failed'
                                           ELSE 'pending' END,
                   reason = CASE r.outcome WHEN 'sent' THEN NULL ELSE r.detail END,
                   sent_at = CASE r.outcome WHEN 'sent' THEN $7 ELSE e.sent_at END,
                   due_at = coalesce(r.retry_at, e.due_at),
                   subject = coalesce(r.subject, e.subject),
                   claimed_by = NULL, claimed_until = NULL
               FROM result r WHERE e.email_id = r.email_id AND e.status = 'sending'""",
            [a.email_id for a in attempts],
            [a.outcome for a in attempts],
            [a.smtp_code for a in attempts],
            [a.detail for a in attempts],
            [retry_at.get(a.email_id) for a in attempts],
            [a.subject for a in attempts],
            now,
            instance,
        )

    async def log(
        self,
        site_id: str,
        *,
        status: str | None,
        recipient: str | None,
        before: datetime | None,
        limit: int,
    ) -> list[Email]:
        rows = await self.conn.fetch(
            f"""SELECT {COLUMNS} FROM notifier.emails
                WHERE site_id = $1 AND ($2::text IS NULL OR status = $2)
                  AND ($3::text IS NULL OR lower(recipient) = lower($3))
                  AND ($4::timestamptz IS NULL OR created_at < $4)
                ORDER BY created_at DESC LIMIT $5""",  # noqa: S608
            site_id,
            status,
            recipient,
            before,
            limit,
        )
        return [Email.of(row) for row in rows]

    async def attempts_of(self, email_id: UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            """SELECT attempt, at, outcome, smtp_code, detail FROM notifier.attempts
               WHERE email_id = $1 ORDER BY attempt""",
            email_id,
        )
        return [{**dict(row), "at": row["at"].isoformat()} for row in rows]
