"""The SLA's tables: a site's policies and hours and a lead's timers (`SlaStore`, one site per
query), and the due-timer queue every scheduler claims from (`TimerQueue`, all sites).

Every statement of a scheduler's batch handles the whole batch (arrays through `unnest`), so a
batch of hundreds of timers costs a handful of round trips, not a few per timer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from leads.domain.sla import FirstContactPlan, SlaPolicy, TimerKind, default_policy
from leads.lead import LEAD_COLUMNS, Lead
from leads.sla.models import POLICY_COLUMNS, POLICY_FIELDS, SiteHours, SitePolicy
from leads.uow import team_lock_key

# Postgres NOTIFY channel: a timer due soon was stored (payload: its due_at, ISO 8601)
TIMERS_CHANNEL = "leads_sla_timers"
_PENDING = "fired_at IS NULL AND cancelled_at IS NULL"
# the policy's columns of `p` (a LEFT JOIN: all NULL when the team has none for the level)
_P_COLUMNS = ", ".join(f"p.{name}" for name in POLICY_FIELDS)


@dataclass(frozen=True, slots=True)
class PlanContext:
    """What planning a lead's first contact reads: its team's policy for the lead's level
    (None: the default), the site's hours, and the deadline already running (if any)."""

    policy: SitePolicy | None
    site: SiteHours
    running_deadline: datetime | None


class SlaStore:
    """A site's SLA settings and a lead's timers; every query names the site."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        # (site, team, validation) → its policy and the site's hours, read once per unit
        self._settings: dict[tuple[str, str, str], tuple[SitePolicy | None, SiteHours]] = {}
        # sites whose every policy and hours this unit has read (`_read_site`)
        self._sites_read: set[str] = set()
        self._hours: dict[str, SiteHours] = {}
        # the timers of leads inserted in this unit, written in one query when it ends
        self._held: list[tuple[UUID, str, str | None, datetime, str, int, datetime]] = []
        self._notify_before: datetime | None = None

    # ---- a lead's timers --------------------------------------------------------------------
    async def plan_context(self, lead: Lead, team: str, *, fresh: bool = False) -> PlanContext:
        """The policy, hours and running deadline of `lead`'s first contact. `fresh`: the lead
        was inserted in this unit (no timer runs), and the policy and hours another lead of
        the unit read serve again."""
        key = (lead.site_id, team, lead.validation)
        if fresh:
            if lead.site_id not in self._sites_read:
                await self._read_site(lead.site_id)
            policy, site = self._settings.get(key) or (None, self._hours[lead.site_id])
            return PlanContext(policy=policy, site=site, running_deadline=None)
        await self.flush()  # the running deadline may be one this unit holds back
        row = await self.conn.fetchrow(
            f"""SELECT {_P_COLUMNS}, p.site_id AS has_policy,
                       s.timezone, s.business_hours, s.holidays,
                       -- the pending ones as a FILTER, not in WHERE: no index of
                       -- pending timers (timers_due holds every lead's) fits the query,
                       -- so the plan Postgres keeps reads this lead's few (timers_once)
                       (SELECT max(t.deadline_at)
                                 FILTER (WHERE t.fired_at IS NULL AND t.cancelled_at IS NULL)
                          FROM leads.timers t
                         WHERE t.lead_id = $4 AND t.site_id = $1) AS running
                FROM (SELECT 1) AS one
                LEFT JOIN leads.sla_policies p
                       ON p.site_id = $1 AND p.team = $2 AND p.validation = $3
                LEFT JOIN leads.sites s ON s.site_id = $1""",  # noqa: S608
            lead.site_id,
            team,
            lead.validation,
            lead.lead_id,
        )
        assert row is not None  # one row always
        policy = SitePolicy.of_row(row) if row["has_policy"] is not None else None
        site = (
            SiteHours.of_row(row["timezone"], row["business_hours"], row["holidays"])
            if row["timezone"] is not None
            else SiteHours()
        )
        self._settings[key] = (policy, site)
        return PlanContext(policy=policy, site=site, running_deadline=row["running"])

    async def _read_site(self, site_id: str) -> None:
        """Every policy of the site and its hours, in one query: the new leads of a unit span
        teams and levels, and each would otherwise read its own."""
        rows = await self.conn.fetch(
            f"""SELECT {_P_COLUMNS}, p.site_id AS has_policy,
                       s.timezone, s.business_hours, s.holidays
                FROM (SELECT 1) AS one
                LEFT JOIN leads.sites s ON s.site_id = $1
                LEFT JOIN leads.sla_policies p ON p.site_id = $1""",  # noqa: S608
            site_id,
        )
        first = rows[0]  # one row at least: the site's hours, with or without policies
        site = (
            SiteHours.of_row(first["timezone"], first["business_hours"], first["holidays"])
            if first["timezone"] is not None
            else SiteHours()
        )
        self._hours[site_id] = site
        for row in rows:
            if row["has_policy"] is not None:
                policy = SitePolicy.of_row(row)
                self._settings[(site_id, policy.team, policy.validation)] = (policy, site)
        self._sites_read.add(site_id)

    async def add_timers(self, lead: Lead, plan: FirstContactPlan) -> tuple[int, datetime | None]:
        """Store the plan's timers (a timer already stored for this deadline is kept); returns
        how many were new and the earliest new due time."""
        row = await self.conn.fetchrow(
            """WITH new AS (
                   INSERT INTO leads.timers
                       (lead_id, site_id, kind, at_percent, assignee, deadline_at, due_at)
                   SELECT $1, $2, kind, at_percent, $3, $4, due_at
                   FROM unnest($5::text[], $6::smallint[], $7::timestamptz[])
                        AS t(kind, at_percent, due_at)
                   ON CONFLICT (lead_id, deadline_at, at_percent) DO NOTHING
                   RETURNING due_at)
               SELECT count(*) AS added, min(due_at) AS earliest FROM new""",
            lead.lead_id,
            lead.site_id,
            lead.assignee,
            plan.due_at,
            [timer.kind for timer in plan.timers],
            [round(timer.elapsed * 100) for timer in plan.timers],
            [timer.due_at for timer in plan.timers],
        )
        assert row is not None
        return int(row["added"]), row["earliest"]

    def hold_timers(self, lead: Lead, plan: FirstContactPlan, *, notify_before: datetime) -> None:
        """`add_timers` for a lead inserted in this unit (it has none to collide with),
        written when the unit ends (`flush`), which also wakes the schedulers when one of
        them is due before `notify_before`."""
        for timer in plan.timers:
            self._held.append(
                (
                    lead.lead_id,
                    lead.site_id,
                    lead.assignee,
                    plan.due_at,
                    timer.kind,
                    round(timer.elapsed * 100),
                    timer.due_at,
                )
            )
        if self._notify_before is None or notify_before > self._notify_before:
            self._notify_before = notify_before

    async def flush(self) -> None:
        """Write the timers this unit held back (the unit of work calls it before
        committing; a query of this store that reads timers calls it first)."""
        if not self._held:
            return
        held, self._held = self._held, []
        notify_before, self._notify_before = self._notify_before, None
        earliest: datetime | None = await self.conn.fetchval(
            """WITH new AS (
                   INSERT INTO leads.timers
                       (lead_id, site_id, assignee, deadline_at, kind, at_percent, due_at)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[],
                                        $4::timestamptz[], $5::text[], $6::smallint[],
                                        $7::timestamptz[])
                   ON CONFLICT (lead_id, deadline_at, at_percent) DO NOTHING
                   RETURNING due_at)
               SELECT min(due_at) FROM new""",
            *(list(column) for column in zip(*held, strict=True)),
        )
        if earliest is not None and notify_before is not None and earliest < notify_before:
            await self.notify_due(earliest)

    async def notify_due(self, due_at: datetime) -> None:
        """Wake the schedulers (on commit): a timer is due at `due_at`."""
        await self.conn.execute("SELECT pg_notify($1, $2)", TIMERS_CHANNEL, due_at.isoformat())

    async def cancel_pending(
        self, site_id: str, lead_id: UUID, *, now: datetime, reason: str
    ) -> int:
        await self.flush()
        status: str = await self.conn.execute(
            f"""UPDATE leads.timers SET cancelled_at = $3, cancel_reason = $4
                WHERE site_id = $1 AND lead_id = $2 AND {_PENDING}""",  # noqa: S608
            site_id,
            lead_id,
            now,
            reason,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def latest_deadline(self, site_id: str, lead_id: UUID) -> datetime | None:
        """The lead's latest first-contact deadline, running or breached (not one stopped)."""
        await self.flush()
        found: datetime | None = await self.conn.fetchval(
            """SELECT max(deadline_at) FROM leads.timers
               WHERE site_id = $1 AND lead_id = $2 AND kind = 'breach'
                 AND cancelled_at IS NULL""",
            site_id,
            lead_id,
        )
        return found

    # ---- a site's settings ------------------------------------------------------------------
    async def policies(self, site_id: str) -> list[SitePolicy]:
        rows = await self.conn.fetch(
            f"""SELECT {POLICY_COLUMNS} FROM leads.sla_policies WHERE site_id = $1
                ORDER BY team, validation""",  # noqa: S608
            site_id,
        )
        return [SitePolicy.of_row(row) for row in rows]

    async def replace_policies(
        self, site_id: str, policies: Sequence[SitePolicy], *, now: datetime
    ) -> None:
        self._forget(site_id)
        await self.conn.execute("DELETE FROM leads.sla_policies WHERE site_id = $1", site_id)
        await self.conn.executemany(
            f"""INSERT INTO leads.sla_policies (site_id, {POLICY_COLUMNS}, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",  # noqa: S608
            [
                (
                    site_id,
                    policy.team,
                    policy.validation,
                    None if policy.first_contact is None else int(policy.first_contact),
                    policy.warn_at_percent,
                    policy.escalate,
                    policy.reassign,
                    policy.max_reassignments,
                    policy.business_hours_only,
                    now,
                )
                for policy in policies
            ],
        )

    def _forget(self, site_id: str) -> None:
        """What this unit read of the site's settings, before it changes them."""
        self._sites_read.discard(site_id)
        self._hours.pop(site_id, None)
        for key in [key for key in self._settings if key[0] == site_id]:
            del self._settings[key]

    async def team_names(self, site_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT team FROM leads.teams WHERE site_id = $1 ORDER BY team", site_id
        )
        return [row["team"] for row in rows]

    async def site_hours(self, site_id: str) -> SiteHours:
        row = await self.conn.fetchrow(
            "SELECT timezone, business_hours, holidays FROM leads.sites WHERE site_id = $1",
            site_id,
        )
        if row is None:
            return SiteHours()
        return SiteHours.of_row(row["timezone"], row["business_hours"], row["holidays"])

    async def set_site_hours(self, site_id: str, site: SiteHours, *, now: datetime) -> None:
        self._forget(site_id)
        await self.conn.execute(
            """INSERT INTO leads.sites (site_id, timezone, business_hours, holidays, updated_at)
               VALUES ($1, $2, $3::jsonb, $4, $5)
               ON CONFLICT (site_id) DO UPDATE SET timezone = EXCLUDED.timezone,
                   business_hours = EXCLUDED.business_hours, holidays = EXCLUDED.holidays,
                   updated_at = EXCLUDED.updated_at""",
            site_id,
            site.timezone,
            site.weekly_json(),
            site.holidays,
            now,
        )


# ---- the scheduler's queue ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DueTimer:
    """A claimed timer row (locked until its transaction ends)."""

    timer_id: int
    timer_uuid: UUID
    lead_id: UUID
    site_id: str
    kind: TimerKind
    at_percent: int
    deadline_at: datetime
    due_at: datetime

    @property
    def elapsed(self) -> float:
        return self.at_percent / 100


@dataclass(frozen=True, slots=True)
class BreachContext:
    """What a breach of one lead needs: its team's policy, team lead, reassignments so far."""

    policy: SlaPolicy
    team_lead: str | None
    reassignments: int


_TIMER_COLUMNS = "timer_id, timer_uuid, lead_id, site_id, kind, at_percent, deadline_at, due_at"


class TimerQueue:
    """Due timers of every site, claimed with `FOR UPDATE SKIP LOCKED`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim(
        self, now: datetime, limit: int, *, only: Sequence[int] | None = None
    ) -> list[DueTimer]:
        """Up to `limit` pending timers due at `now`, oldest first, locked; rows another
        transaction holds are skipped (they are someone else's)."""
        if only is None:
            rows = await self.conn.fetch(
                f"""SELECT {_TIMER_COLUMNS} FROM leads.timers
                    WHERE {_PENDING} AND due_at <= $1
                    ORDER BY due_at, timer_id LIMIT $2
                    FOR UPDATE SKIP LOCKED""",  # noqa: S608
                now,
                limit,
            )
        else:
            rows = await self.conn.fetch(
                f"""SELECT {_TIMER_COLUMNS} FROM leads.timers
                    WHERE {_PENDING} AND due_at <= $1 AND timer_id = ANY($3::bigint[])
                    ORDER BY due_at, timer_id LIMIT $2
                    FOR UPDATE SKIP LOCKED""",  # noqa: S608
                now,
                limit,
                list(only),
            )
        return [DueTimer(**dict(row)) for row in rows]

    async def due_ids(self, now: datetime, limit: int) -> list[int]:
        rows = await self.conn.fetch(
            f"""SELECT timer_id FROM leads.timers WHERE {_PENDING} AND due_at <= $1
                ORDER BY due_at, timer_id LIMIT $2""",  # noqa: S608
            now,
            limit,
        )
        return [row["timer_id"] for row in rows]

    async def next_due(self) -> datetime | None:
        found: datetime | None = await self.conn.fetchval(
            f"SELECT min(due_at) FROM leads.timers WHERE {_PENDING}"  # noqa: S608
        )
        return found

    async def lock_leads(self, lead_ids: Iterable[UUID]) -> dict[UUID, Lead]:
        """The leads, locked; a lead another transaction is changing is left out (its timers
        wait for the next pass, and the change it is in may well stop them)."""
        rows = await self.conn.fetch(
            f"""SELECT {LEAD_COLUMNS} FROM leads.leads
                WHERE lead_id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED""",  # noqa: S608
            list(set(lead_ids)),
        )
        return {row["lead_id"]: Lead.of(row) for row in rows}

    async def breach_contexts(self, leads: Sequence[Lead]) -> dict[UUID, BreachContext]:
        rows = await self.conn.fetch(
            f"""SELECT l.lead_id, l.team AS lead_team, l.validation AS lead_validation,
                       {_P_COLUMNS}, p.site_id AS has_policy,
                       tm.lead_agent_id,
                       (SELECT count(*) FROM leads.timers r
                         WHERE r.lead_id = l.lead_id AND r.reassigned) AS reassignments
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                     AS l(lead_id, site_id, team, validation)
                LEFT JOIN leads.sla_policies p ON p.site_id = l.site_id AND p.team = l.team
                      AND p.validation = l.validation
                LEFT JOIN leads.teams tm ON tm.site_id = l.site_id AND tm.team = l.team""",  # noqa: S608
            [lead.lead_id for lead in leads],
            [lead.site_id for lead in leads],
            [lead.team for lead in leads],
            [lead.validation for lead in leads],
        )
        contexts: dict[UUID, BreachContext] = {}
        for row in rows:
            policy: SlaPolicy = (
                SitePolicy.of_row(row)
                if row["has_policy"] is not None
                else default_policy(row["lead_team"], row["lead_validation"])
            )
            contexts[row["lead_id"]] = BreachContext(
                policy=policy, team_lead=row["lead_agent_id"], reassignments=row["reassignments"]
            )
        return contexts

    async def try_lock_team(self, site_id: str, team: str) -> bool:
        """The team's assignment lock (the one `UnitOfWork.lock_team` waits for), if it is free
        now: a scheduler holding claimed rows never waits for it, so it cannot deadlock."""
        got: bool = await self.conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
            team_lock_key(site_id, team),
        )
        return got

    async def settle(
        self,
        outcomes: Mapping[int, str | None],
        *,
        now: datetime,
        instance: str,
    ) -> None:
        """Mark claimed timers fired (`None`) or cancelled (with the reason), in one statement."""
        if not outcomes:
            return
        await self.conn.execute(
            """UPDATE leads.timers AS t
               SET fired_at = CASE WHEN c.reason IS NULL THEN $3::timestamptz END,
                   cancelled_at = CASE WHEN c.reason IS NULL THEN NULL ELSE $3::timestamptz END,
                   cancel_reason = c.reason, claimed_at = $3, claimed_by = $4
               FROM unnest($1::bigint[], $2::text[]) AS c(timer_id, reason)
               WHERE t.timer_id = c.timer_id""",
            list(outcomes),
            list(outcomes.values()),
            now,
            instance,
        )

    async def mark_reassigned(self, timer_id: int) -> None:
        await self.conn.execute(
            "UPDATE leads.timers SET reassigned = true WHERE timer_id = $1", timer_id
        )

    async def number_events(self, counts: Mapping[UUID, int]) -> dict[UUID, int]:
        """Reserve `counts[lead]` event numbers per lead; returns each lead's first one."""
        if not counts:
            return {}
        rows = await self.conn.fetch(
            """UPDATE leads.leads AS l SET event_seq = l.event_seq + c.n
               FROM unnest($1::uuid[], $2::int[]) AS c(lead_id, n)
               WHERE l.lead_id = c.lead_id
               RETURNING l.lead_id, l.event_seq - c.n + 1 AS first""",
            list(counts),
            list(counts.values()),
        )
        return {row["lead_id"]: row["first"] for row in rows}

    async def postpone(self, timer_id: int, *, until: datetime, error: str) -> None:
        """A timer whose firing failed: try again at `until`, keep the error."""
        await self.conn.execute(
            f"""UPDATE leads.timers
                SET due_at = $2, failures = LEAST(failures + 1, 32767), last_error = $3
                WHERE timer_id = $1 AND {_PENDING}""",  # noqa: S608
            timer_id,
            until,
            error[:2000],
        )
