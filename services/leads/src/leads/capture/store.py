"""Capture's queries: a site's contact-only switch, what capture remembers of conversations,
the open leads a person is found by (through leads merged into another), and the rows a
capture, a merge and its undo write. Every query names the site."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from beckon_contracts.ids import uuid7

from leads.capture.model import ConversationInfo, TraitSources, sources_of, traits_of
from leads.domain import identity
from leads.domain.identity import LeadIdentity, PersonKey, Trait, TraitName
from leads.lead import LEAD_COLUMNS, Lead

OPEN = "status IN ('new', 'assigned', 'contacted', 'qualified')"


# a lead held back (`CaptureStore.hold_lead`) as its INSERT would return it: the columns
# `LEAD_COLUMNS` names, and the defaults of those the capture does not give
_LEAD_FIELDS = tuple(name.strip() for name in LEAD_COLUMNS.split(","))
_LEAD_DEFAULTS: dict[str, Any] = {"status": "new", "source": "chat", "capture": {}, "event_seq": 0}


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True, slots=True)
class Person:
    """A lead with whose word each trait is (the `traits` column)."""

    lead: Lead
    sources: dict[str, Any]

    @property
    def traits(self) -> dict[TraitName, Trait]:
        lead = self.lead
        return traits_of(
            {"name": lead.name, "company": lead.company, "email": lead.email, "phone": lead.phone},
            self.sources,
            default_at=lead.created_at,
        )

    def identity(self, keys: frozenset[PersonKey]) -> LeadIdentity:
        lead = self.lead
        return LeadIdentity(
            lead_id=str(lead.lead_id),
            site_id=lead.site_id,
            status=lead.status,
            created_at=lead.created_at,
            keys=keys,
            traits=self.traits,
            validation=lead.validation,
            merged_into=str(lead.merged_into) if lead.merged_into else None,
        )


def _person(row: asyncpg.Record) -> Person:
    fields = dict(row)
    sources = fields.pop("trait_sources")
    if isinstance(fields["capture"], str):
        fields["capture"] = orjson.loads(fields["capture"])
    if isinstance(sources, str):
        sources = orjson.loads(sources)
    return Person(Lead(**fields), sources)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (for `unnest`), `width` empty lists when there are none."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _conversation(row: asyncpg.Record) -> ConversationInfo:
    return ConversationInfo(
        rule_id=row["rule_id"],
        invitation_id=row["invitation_id"],
        tags=tuple(row["tags"]),
        team=row["team"],
    )


def row_keys(email_key: str | None, phone_key: str | None, visitor_id: str) -> set[PersonKey]:
    keys = {PersonKey("visitor", visitor_id)}
    if email_key:
        keys.add(PersonKey("email", email_key))
    if phone_key:
        keys.add(PersonKey("phone", phone_key))
    return keys


# Every lead whose chain of merges ends at one of the given leads, with its own keys (64:
# a guard; merges never form cycles).
_TREE = """
WITH RECURSIVE tree(root, lead_id, email_key, phone_key, visitor_id, depth) AS (
    SELECT lead_id, lead_id, email_key, phone_key, visitor_id, 0 FROM leads.leads
    WHERE site_id = $1 AND lead_id = ANY($2::uuid[])
  UNION ALL
    SELECT t.root, l.lead_id, l.email_key, l.phone_key, l.visitor_id, t.depth + 1
    FROM leads.leads l JOIN tree t ON l.merged_into = t.lead_id
    WHERE l.site_id = $1 AND t.depth < 64
)
SELECT root, lead_id, email_key, phone_key, visitor_id FROM tree
"""

# The leads at the end of the chains of merges that start at the given leads.
_ROOTS = """
WITH RECURSIVE chain(lead_id, merged_into, depth) AS (
    SELECT lead_id, merged_into, 0 FROM leads.leads
    WHERE site_id = $1 AND lead_id = ANY($2::uuid[])
  UNION ALL
    SELECT l.lead_id, l.merged_into, c.depth + 1
    FROM leads.leads l JOIN chain c ON l.lead_id = c.merged_into
    WHERE l.site_id = $1 AND c.depth < 64
)
SELECT DISTINCT lead_id FROM chain WHERE merged_into IS NULL
"""

_SELECT = f"SELECT {LEAD_COLUMNS}, traits AS trait_sources FROM leads.leads"  # noqa: S608


class CaptureStore:
    """Capture's side of `leads.*`, on one unit's connection.

    A unit of many captures (capture's batches) asks fewer queries of it:
    - `read_ahead` reads every conversation the unit's captures name, and which of their
      person keys no lead holds, in two queries; `conversation` and `open_roots_by_keys`
      answer from that until a write of the unit makes it stale (a conversation upserted, a
      lead's keys changed);
    - a lead inserted in this unit has no touch and no conversation yet, so its first ones
      are held back (`hold_first_touch`, `hold_conversation`) and written in one query each
      when the unit ends (`flush`), or before any query that reads them.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._conversations: dict[UUID, ConversationInfo | None] = {}
        self._unused_keys: set[PersonKey] = set()  # read ahead: no lead (or touch) has them
        self._held_leads: list[dict[str, Any]] = []  # rows as JSON values (`hold_lead`)
        self._held_touches: list[tuple[Any, ...]] = []
        self._held_conversations: list[tuple[UUID, UUID, str]] = []

    # --- what a unit of many captures reads ahead and holds back ---------------------------

    async def read_ahead(
        self, site_id: str, conversation_ids: Iterable[UUID], keys: Iterable[PersonKey]
    ) -> None:
        """Read the conversations and learn which of `keys` no lead holds (directly or by a
        touch from that visitor), for the captures of this unit."""
        wanted = list(set(conversation_ids) - set(self._conversations))
        if wanted:
            rows = await self.conn.fetch(  # a lookup per id (the keys' query below says why)
                """SELECT c.conversation_id, c.rule_id, c.invitation_id, c.tags, c.team
                   FROM unnest($2::uuid[]) AS k(id),
                       LATERAL (SELECT * FROM leads.conversations
                                WHERE site_id = (SELECT $1::text)
                                  AND conversation_id = k.id
                                OFFSET 0) AS c""",
                site_id,
                wanted,
            )
            found = {row["conversation_id"]: _conversation(row) for row in rows}
            self._conversations.update({cid: found.get(cid) for cid in wanted})
        by_kind: dict[str, list[str]] = {"email": [], "phone": [], "visitor": []}
        asked = set(keys)
        for key in asked:
            by_kind[key.kind].append(key.value)
        if not asked:
            return
        # one branch per kind, a lookup per key on its own index: a LATERAL is not flattened
        # (`= ANY` on the site's index rows was a filter over every lead of the site, in the
        # plan Postgres keeps from an empty table), and the site is a parameter the planner
        # cannot see through (`(SELECT $1)`): planned for a new site's literal id, which the
        # statistics say has no rows, every index on the site tied, and a scan of the whole
        # site per key won
        rows = await self.conn.fetch(
            """SELECT 'email' AS kind, k.value FROM unnest($2::text[]) AS k(value),
                   LATERAL (SELECT 1 FROM leads.leads
                            WHERE site_id = (SELECT $1::text) AND email_key = k.value
                            OFFSET 0) AS hit
               UNION
               SELECT 'phone', k.value FROM unnest($3::text[]) AS k(value),
                   LATERAL (SELECT 1 FROM leads.leads
                            WHERE site_id = (SELECT $1::text) AND phone_key = k.value
                            OFFSET 0) AS hit
               UNION
               SELECT 'visitor', k.value FROM unnest($4::text[]) AS k(value),
                   LATERAL (SELECT 1 FROM leads.leads
                            WHERE site_id = (SELECT $1::text) AND visitor_id = k.value
                            OFFSET 0) AS hit
               UNION
               SELECT 'visitor', k.value FROM unnest($4::text[]) AS k(value),
                   LATERAL (SELECT 1 FROM leads.touches
                            WHERE site_id = (SELECT $1::text) AND visitor_id = k.value
                            OFFSET 0) AS hit""",
            site_id,
            by_kind["email"],
            by_kind["phone"],
            by_kind["visitor"],
        )
        used = {PersonKey(row["kind"], row["value"]) for row in rows}
        self._unused_keys |= asked - used

    def _keys_taken(self, keys: Iterable[PersonKey] | None = None) -> None:
        """A write gave leads these keys (None: any keys): they are no longer unused."""
        if keys is None:
            self._unused_keys.clear()
        else:
            self._unused_keys.difference_update(keys)

    def hold_first_touch(
        self,
        site_id: str,
        lead_id: UUID,
        *,
        kind: str,
        source_event_id: UUID | None,
        occurred_at: datetime,
        visitor_id: str | None = None,
        conversation_id: UUID | None = None,
        agent_id: str | None = None,
        validation: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> UUID:
        """`add_touch` for a lead inserted in this unit (it has no touch to collide with),
        written when the unit ends."""
        touch_id = uuid7()
        self._held_touches.append(
            (
                touch_id,
                lead_id,
                site_id,
                kind,
                source_event_id,
                conversation_id,
                agent_id,
                validation,
                _json(dict(details or {})),
                occurred_at,
                visitor_id,
            )
        )
        if visitor_id is not None:
            self._keys_taken([PersonKey("visitor", visitor_id)])
        return touch_id

    def hold_lead(self, fields: Mapping[str, Any], sources: TraitSources) -> Person:
        """`insert_lead` for one of a unit's many captures: the row is written with the
        unit's other new leads, their first touches and conversations, in one statement
        (`flush`: before any query of this store, and before the unit drains its teams'
        queues, `service.write_held`). The lead is what that INSERT would return: the given
        fields, the table's defaults for the rest, JSON values as they come back."""
        stored = orjson.loads(_json({**fields, "traits": sources}))
        row: dict[str, Any] = dict.fromkeys(_LEAD_FIELDS) | _LEAD_DEFAULTS
        row.update({name: value for name, value in fields.items() if name in row})
        row["capture"] = stored.get("capture", {})
        lead = Lead(**row)
        self._held_leads.append(stored)
        self._keys_taken(row_keys(lead.email_key, lead.phone_key, lead.visitor_id))
        return Person(lead, stored["traits"])

    def hold_conversation(self, site_id: str, lead_id: UUID, conversation_id: UUID) -> None:
        """`add_conversation` for a lead inserted in this unit, written when the unit ends."""
        self._held_conversations.append((lead_id, conversation_id, site_id))

    async def flush(self) -> None:
        """Write what this unit held back (the unit of work calls it before committing), in
        one statement."""
        if not self._held_leads and not self._held_touches and not self._held_conversations:
            return
        rows, self._held_leads = self._held_leads, []
        touches, self._held_touches = self._held_touches, []
        talks, self._held_conversations = self._held_conversations, []
        columns = ", ".join(rows[0]) if rows else "lead_id"
        # the new leads first: the touches and links refer to them (the foreign keys are
        # checked when the whole statement is done); each row typed by the table's own type
        await self.conn.execute(
            f"""WITH created AS (
                   INSERT INTO leads.leads ({columns})
                   SELECT {columns}
                   FROM jsonb_populate_recordset(NULL::leads.leads, $15::jsonb)),
               touched AS (
                   INSERT INTO leads.touches (touch_id, lead_id, site_id, kind, source_event_id,
                       conversation_id, agent_id, validation, details, occurred_at, visitor_id)
                   SELECT t.touch_id, t.lead_id, t.site_id, t.kind, t.source_event_id,
                          t.conversation_id, t.agent_id, t.validation, t.details::jsonb,
                          t.occurred_at, t.visitor_id
                   FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[],
                               $6::uuid[], $7::text[], $8::text[], $9::text[],
                               $10::timestamptz[], $11::text[])
                        AS t(touch_id, lead_id, site_id, kind, source_event_id,
                             conversation_id, agent_id, validation, details, occurred_at,
                             visitor_id))
               INSERT INTO leads.lead_conversations (lead_id, conversation_id, site_id)
               SELECT * FROM unnest($12::uuid[], $13::uuid[], $14::text[])
               ON CONFLICT DO NOTHING""",  # noqa: S608 - columns are the code's field names
            *_columns(touches, 11),
            *_columns(talks, 3),
            _json(rows),
        )

    # --- the site and its conversations ---------------------------------------------------

    async def captures_contact_only(self, site_id: str) -> bool:
        """The site's switch for contact-only leads (on when the site has no row)."""
        value = await self.conn.fetchval(
            "SELECT capture_contact_only FROM leads.sites WHERE site_id = $1", site_id
        )
        return True if value is None else bool(value)

    async def conversation_started(
        self,
        site_id: str,
        conversation_id: UUID,
        *,
        visitor_id: str,
        team: str,
        rule_id: str | None,
        invitation_id: UUID | None,
        at: datetime,
    ) -> None:
        self._conversations.pop(conversation_id, None)  # read again when asked
        await self.conn.execute(
            """INSERT INTO leads.conversations
                   (site_id, conversation_id, visitor_id, team, rule_id, invitation_id,
                    started_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, now())
               ON CONFLICT (site_id, conversation_id) DO UPDATE
               SET team = EXCLUDED.team, rule_id = EXCLUDED.rule_id,
                   invitation_id = EXCLUDED.invitation_id, started_at = EXCLUDED.started_at,
                   updated_at = now()""",
            site_id,
            conversation_id,
            visitor_id,
            team,
            rule_id,
            invitation_id,
            at,
        )

    async def conversation_tagged(
        self, site_id: str, conversation_id: UUID, *, visitor_id: str, tags: Sequence[str]
    ) -> None:
        self._conversations.pop(conversation_id, None)  # read again when asked
        await self.conn.execute(
            """INSERT INTO leads.conversations (site_id, conversation_id, visitor_id, tags)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (site_id, conversation_id) DO UPDATE
               SET tags = EXCLUDED.tags, updated_at = now()""",
            site_id,
            conversation_id,
            visitor_id,
            list(tags),
        )

    async def conversation(self, site_id: str, conversation_id: UUID) -> ConversationInfo | None:
        if conversation_id in self._conversations:
            return self._conversations[conversation_id]
        row = await self.conn.fetchrow(
            """SELECT rule_id, invitation_id, tags, team FROM leads.conversations
               WHERE site_id = $1 AND conversation_id = $2""",
            site_id,
            conversation_id,
        )
        return None if row is None else _conversation(row)

    # --- finding a person ------------------------------------------------------------------

    async def roots(self, site_id: str, lead_ids: Iterable[UUID]) -> list[UUID]:
        """The leads the given ones are (themselves, or the survivor they are merged into)."""
        rows = await self.conn.fetch(_ROOTS, site_id, list(set(lead_ids)))
        return [row["lead_id"] for row in rows]

    async def open_roots_by_keys(self, site_id: str, keys: Iterable[PersonKey]) -> list[Person]:
        """The open leads that hold one of `keys`, or absorbed a lead that does."""
        keys = frozenset(keys)
        if keys <= self._unused_keys:
            return []  # read ahead: nobody has them
        await self.flush()  # the touches this unit holds back are found too
        by_kind: dict[str, list[str]] = {"email": [], "phone": [], "visitor": []}
        for key in keys:
            by_kind[key.kind].append(key.value)
        # one branch per kind of key, each an equality on its index's columns: the plan a
        # prepared statement keeps uses those indexes whatever the statistics said when it
        # was made (an OR of `= ANY(...)`, planned on an empty table, scanned every lead of
        # the site). A capture has one key of each kind at most: one query.
        ids: list[asyncpg.Record] = []
        for n in range(max(map(len, by_kind.values()), default=0)):
            email, phone, visitor = (
                values[n] if n < len(values) else None for values in by_kind.values()
            )
            ids += await self.conn.fetch(
                """SELECT lead_id FROM leads.leads WHERE site_id = $1 AND email_key = $2
                   UNION
                   SELECT lead_id FROM leads.leads WHERE site_id = $1 AND phone_key = $3
                   UNION
                   SELECT lead_id FROM leads.leads WHERE site_id = $1 AND visitor_id = $4
                   UNION
                   SELECT lead_id FROM leads.touches WHERE site_id = $1 AND visitor_id = $4""",
                site_id,
                email,
                phone,
                visitor,
            )
        if not ids:
            return []
        roots = await self.roots(site_id, (row["lead_id"] for row in ids))
        return [person for person in await self.people(site_id, roots) if person.lead.open]

    async def people(self, site_id: str, lead_ids: Iterable[UUID]) -> list[Person]:
        rows = await self.conn.fetch(
            f"{_SELECT} WHERE site_id = $1 AND lead_id = ANY($2::uuid[]) ORDER BY lead_id",
            site_id,
            list(set(lead_ids)),
        )
        return [_person(row) for row in rows]

    async def lock_people(self, site_id: str, lead_ids: Iterable[UUID]) -> list[Person]:
        """The leads, locked in id order (two units locking the same leads never deadlock)."""
        rows = await self.conn.fetch(
            f"{_SELECT} WHERE site_id = $1 AND lead_id = ANY($2::uuid[]) "
            "ORDER BY lead_id FOR UPDATE",
            site_id,
            list(set(lead_ids)),
        )
        return [_person(row) for row in rows]

    async def keys_of(
        self, site_id: str, lead_ids: Iterable[UUID]
    ) -> dict[UUID, frozenset[PersonKey]]:
        """Each lead's person keys: its own, the visitors it was touched from, and those of
        the leads merged into it."""
        await self.flush()  # what this unit held back is read too
        rows = await self.conn.fetch(_TREE, site_id, list(set(lead_ids)))
        keys: dict[UUID, set[PersonKey]] = {}
        root_of: dict[UUID, UUID] = {}
        for row in rows:
            root_of[row["lead_id"]] = row["root"]
            keys.setdefault(row["root"], set()).update(
                row_keys(row["email_key"], row["phone_key"], row["visitor_id"])
            )
        touched = await self.conn.fetch(
            """SELECT DISTINCT lead_id, visitor_id FROM leads.touches
               WHERE site_id = $1 AND lead_id = ANY($2::uuid[]) AND visitor_id IS NOT NULL""",
            site_id,
            list(root_of),
        )
        for row in touched:
            keys[root_of[row["lead_id"]]].add(PersonKey("visitor", row["visitor_id"]))
        return {lead_id: frozenset(found) for lead_id, found in keys.items()}

    async def visitor_roots(self, site_id: str, visitor_id: str) -> list[Person]:
        """The leads of a visitor (captured on it or touched from it, or their survivors),
        newest first."""
        await self.flush()  # what this unit held back is read too
        rows = await self.conn.fetch(
            """SELECT lead_id FROM (
                   SELECT lead_id, created_at FROM leads.leads
                   WHERE site_id = $1 AND visitor_id = $2
                   UNION
                   SELECT l.lead_id, l.created_at FROM leads.touches t
                   JOIN leads.leads l ON l.lead_id = t.lead_id
                   WHERE t.site_id = $1 AND t.visitor_id = $2) AS mine
               ORDER BY created_at DESC, lead_id DESC""",
            site_id,
            visitor_id,
        )
        ordered: list[Person] = []
        seen: set[UUID] = set()
        for row in rows:
            for root in await self.roots(site_id, [row["lead_id"]]):
                if root not in seen:
                    seen.add(root)
                    ordered.extend(await self.people(site_id, [root]))
        return ordered

    async def conversation_roots(self, site_id: str, conversation_id: UUID) -> list[UUID]:
        await self.flush()  # what this unit held back is read too
        rows = await self.conn.fetch(
            """SELECT lead_id FROM leads.lead_conversations
               WHERE site_id = $1 AND conversation_id = $2""",
            site_id,
            conversation_id,
        )
        return await self.roots(site_id, (row["lead_id"] for row in rows)) if rows else []

    # --- writing a lead --------------------------------------------------------------------

    async def insert_lead(self, fields: Mapping[str, Any], sources: TraitSources) -> Person:
        columns = list(fields)
        values = [
            _json(value) if column == "capture" else value for column, value in fields.items()
        ]
        casts = ["::jsonb" if column == "capture" else "" for column in columns]
        placeholders = ", ".join(f"${i + 1}{cast}" for i, cast in enumerate(casts))
        row = await self.conn.fetchrow(
            f"""INSERT INTO leads.leads ({", ".join(columns)}, traits)
                VALUES ({placeholders}, ${len(columns) + 1}::jsonb)
                RETURNING {LEAD_COLUMNS}, traits AS trait_sources""",  # noqa: S608
            *values,
            _json(sources),
        )
        person = _person(row)
        lead = person.lead
        self._keys_taken(row_keys(lead.email_key, lead.phone_key, lead.visitor_id))
        return person

    async def update_person(
        self,
        site_id: str,
        lead_id: UUID,
        *,
        traits: Mapping[TraitName, Trait],
        validation: str,
        now: datetime,
    ) -> Person:
        """Write a lead's traits (and their keys) and validation."""
        email = traits.get("email")
        email_key = identity.normalize_email(email.value).key if email else None
        phone = traits.get("phone")
        row = await self.conn.fetchrow(
            f"""UPDATE leads.leads SET name = $3, company = $4, email = $5, email_key = $6,
                       phone = $7, phone_key = $7, traits = $8::jsonb, validation = $9,
                       updated_at = $10
                WHERE site_id = $1 AND lead_id = $2
                RETURNING {LEAD_COLUMNS}, traits AS trait_sources""",  # noqa: S608
            site_id,
            lead_id,
            traits["name"].value if "name" in traits else None,
            traits["company"].value if "company" in traits else None,
            email.value if email else None,
            email_key,
            phone.value if phone else None,
            _json(sources_of(traits)),
            validation,
            now,
        )
        person = _person(row)
        lead = person.lead
        self._keys_taken(row_keys(lead.email_key, lead.phone_key, lead.visitor_id))
        return person

    async def add_touch(
        self,
        site_id: str,
        lead_id: UUID,
        *,
        kind: str,
        source_event_id: UUID | None,
        occurred_at: datetime,
        visitor_id: str | None = None,
        conversation_id: UUID | None = None,
        agent_id: str | None = None,
        validation: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> UUID | None:
        """One touch (None when this event touched the lead before)."""
        if visitor_id is not None:
            self._keys_taken([PersonKey("visitor", visitor_id)])
        touch_id: UUID | None = await self.conn.fetchval(
            """INSERT INTO leads.touches (touch_id, lead_id, site_id, kind, source_event_id,
                   conversation_id, agent_id, validation, details, occurred_at, visitor_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
               ON CONFLICT (lead_id, source_event_id) WHERE source_event_id IS NOT NULL
               DO NOTHING RETURNING touch_id""",
            uuid7(),
            lead_id,
            site_id,
            kind,
            source_event_id,
            conversation_id,
            agent_id,
            validation,
            _json(dict(details or {})),
            occurred_at,
            visitor_id,
        )
        return touch_id

    async def add_conversation(self, site_id: str, lead_id: UUID, conversation_id: UUID) -> None:
        await self.conn.execute(
            """INSERT INTO leads.lead_conversations (lead_id, conversation_id, site_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
            lead_id,
            conversation_id,
            site_id,
        )

    # --- merges ----------------------------------------------------------------------------

    async def absorb(
        self, site_id: str, *, absorbed_id: UUID, survivor_id: UUID, now: datetime
    ) -> tuple[list[UUID], list[UUID]]:
        """Mark a lead merged into another and move its touches and conversations there
        (but those the survivor has already); returns the touch and conversation ids moved."""
        await self.flush()  # what this unit held back is read too
        await self.conn.execute(
            """UPDATE leads.leads SET merged_into = $3, updated_at = $4
               WHERE site_id = $1 AND lead_id = $2""",
            site_id,
            absorbed_id,
            survivor_id,
            now,
        )
        touches = await self.conn.fetch(
            """UPDATE leads.touches t SET lead_id = $3
               WHERE t.site_id = $1 AND t.lead_id = $2 AND NOT EXISTS (
                   SELECT 1 FROM leads.touches s
                   WHERE s.lead_id = $3 AND s.source_event_id = t.source_event_id)
               RETURNING touch_id""",
            site_id,
            absorbed_id,
            survivor_id,
        )
        conversations = await self.conn.fetch(
            """UPDATE leads.lead_conversations c SET lead_id = $3
               WHERE c.site_id = $1 AND c.lead_id = $2 AND NOT EXISTS (
                   SELECT 1 FROM leads.lead_conversations s
                   WHERE s.lead_id = $3 AND s.conversation_id = c.conversation_id)
               RETURNING conversation_id""",
            site_id,
            absorbed_id,
            survivor_id,
        )
        return [r["touch_id"] for r in touches], [r["conversation_id"] for r in conversations]

    async def insert_merge(
        self,
        site_id: str,
        *,
        survivor_id: UUID,
        absorbed_id: UUID,
        reason: str,
        moved_touches: list[UUID],
        moved_conversations: list[UUID],
        snapshot: Mapping[str, Any],
        merged_by: str | None,
        now: datetime,
    ) -> UUID:
        merge_id = uuid7()
        await self.conn.execute(
            """INSERT INTO leads.merges (merge_id, site_id, survivor_id, merged_id, reason,
                   moved_touches, moved_conversations, snapshot, merged_by, merged_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)""",
            merge_id,
            site_id,
            survivor_id,
            absorbed_id,
            reason,
            moved_touches,
            moved_conversations,
            _json(dict(snapshot)),
            merged_by,
            now,
        )
        return merge_id

    async def lock_merge(self, site_id: str, merge_id: UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(
            """SELECT merge_id, survivor_id, merged_id, moved_touches, moved_conversations,
                      snapshot, undone_at
               FROM leads.merges WHERE site_id = $1 AND merge_id = $2 FOR UPDATE""",
            site_id,
            merge_id,
        )
        return row

    async def restore(
        self,
        site_id: str,
        *,
        merge_id: UUID,
        absorbed_id: UUID,
        survivor_id: UUID,
        touches: list[UUID],
        conversations: list[UUID],
        by_agent_id: str,
        now: datetime,
    ) -> None:
        """Undo a merge's rows: the absorbed lead open again with its touches and
        conversations; the merge marked undone."""
        await self.flush()
        self._keys_taken(None)
        await self.conn.execute(
            """UPDATE leads.leads SET merged_into = NULL, updated_at = $3
               WHERE site_id = $1 AND lead_id = $2""",
            site_id,
            absorbed_id,
            now,
        )
        await self.conn.execute(
            """UPDATE leads.touches SET lead_id = $2
               WHERE site_id = $1 AND lead_id = $3 AND touch_id = ANY($4::uuid[])""",
            site_id,
            absorbed_id,
            survivor_id,
            touches,
        )
        await self.conn.execute(
            """UPDATE leads.lead_conversations c SET lead_id = $2
               WHERE c.site_id = $1 AND c.lead_id = $3 AND c.conversation_id = ANY($4::uuid[])
                 AND NOT EXISTS (SELECT 1 FROM leads.lead_conversations s
                                 WHERE s.lead_id = $2 AND s.conversation_id = c.conversation_id)""",
            site_id,
            absorbed_id,
            survivor_id,
            conversations,
        )
        await self.conn.execute(
            """UPDATE leads.merges SET undone_at = $3, undone_by = $4
               WHERE site_id = $1 AND merge_id = $2""",
            site_id,
            merge_id,
            now,
            by_agent_id,
        )

    # --- dead letters ----------------------------------------------------------------------

    async def record_dead_letter(
        self,
        *,
        site_id: str | None,
        topic: str,
        partition: int | None,
        offset: int | None,
        reason: str,
        detail: str,
        value: bytes,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO leads.dead_letters
                   (site_id, source_topic, partition, "offset", reason, detail, value)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            site_id,
            topic,
            partition,
            offset,
            reason,
            detail,
            value,
        )
