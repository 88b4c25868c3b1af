"""`beckon rules backtest FILE`: replay recorded `tracking.events` through the rules, no effects.

Two parts:

* `Backtest` (pure): decoded records in, in order; one `VisitorState` per visitor in memory;
  every event goes through `triggers.domain.engine.step`, exactly as the worker's visitor
  stage does. A candidate is then decided the way admission would decide it *with unlimited
  agent capacity*: the rule's per-visitor limits (`visitor_limit_reason`, against the marks
  this replay recorded), an invitation still outstanding for the visitor, the site's and the
  rule's hourly caps, then the holdout draw (`in_holdout`). A decision is recorded as an
  `InvitationMark` in the visitor's state, so later events see it (once-per-session,
  cooldown), like the feedback the worker gets from admission. Event time (`occurred_at`) is
  the clock; the wall clock never matters. Nothing is written anywhere.

* `run_backtest_command` (I/O): reads `tracking.events` from the beginning up to each
  partition's high watermark as of the start, without a consumer group (no offsets are
  committed, nothing is produced), with a plain-text progress bar on stderr, then prints the
  report (a table, or JSON with `--json`).

Ordering: one visitor's events are on one partition (key `site:visitor`), so per-visitor order
is the order recorded. Partitions are not merged by event time: each fetched batch is replayed
as it arrives, and the fetches of all partitions advance together, so the order across
visitors is only approximately event time. Nothing per visitor depends on it; the hourly caps
are counted per clock hour of event time (not admission's rolling 60 minutes), which does not
depend on the order either.

Sizing: fires per hour are averaged over the replayed span (a span under an hour counts as one
hour) and taken at the peak clock hour. Expected conversations = fires x acceptance rate.
Agents needed at handling time H, by Little's law: concurrent chats = conversations per hour
at the peak hour x H (in hours); agents = ceil(concurrent chats / chats per agent).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from beckon_contracts import topics
from beckon_contracts.rules import Rule, SiteRules, parse_duration
from beckon_messaging import PLAINTEXT, KafkaSecurity

from triggers.domain.engine import Candidate, Site, Sites, step
from triggers.domain.observation import BadRecord, iso, observe
from triggers.domain.rules import in_holdout, visitor_limit_reason
from triggers.domain.state import (
    MAX_INVITATIONS,
    InvitationMark,
    VisitorState,
    remember,
    seen_before,
)

DEFAULT_CHATS_PER_AGENT = 3
MAX_SKIP_REASONS = 20  # distinct reasons tallied; the rest count as "other"
HOUR_S = 3600.0


def _iso(epoch_s: float | None) -> str | None:
    return None if epoch_s is None else iso(epoch_s)


def parse_instant(text: str) -> float:
    """Epoch seconds from ISO 8601 ("2026-11-02", "2026-11-02T10:00Z", ...); naive is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}; use ISO 8601, e.g. 2026-11-02 or 2026-11-02T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# ---- the replay -----------------------------------------------------------------------------
@dataclass(slots=True)
class RuleTally:
    eligible: int = 0  # (visitor session, rule) that passed the per-visitor limits, once each
    fired: int = 0  # invitations that would have been issued (the invited arm)
    held_out: int = 0  # would have been invited, but drawn into the control group
    refused: Counter[str] = field(default_factory=Counter)  # per candidate: caps, outstanding
    by_hour: Counter[int] = field(default_factory=Counter)  # fires per clock hour


@dataclass(slots=True)
class SiteTally:
    site: Site
    events: int = 0
    first_at: float | None = None
    last_at: float | None = None
    rules: dict[str, RuleTally] = field(default_factory=dict)
    by_hour: Counter[int] = field(default_factory=Counter)  # fires of all rules per clock hour
    hourly: Counter[int] = field(default_factory=Counter)  # decisions counted against the caps
    rule_hourly: Counter[tuple[str, int]] = field(default_factory=Counter)

    def saw(self, at: float) -> None:
        self.events += 1
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


@dataclass(slots=True)
class _Visitor:
    state: VisitorState
    eligible: set[tuple[str, str | None]] = field(default_factory=set)


class Backtest:
    """Replays decoded `tracking.events` records for the given sites; see the module doc."""

    def __init__(
        self,
        sites: Sequence[SiteRules],
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> None:
        self.since = since
        self.until = until
        self._sites = Sites()
        for rules in sites:
            self._sites.put(rules)
        self.tallies: dict[str, SiteTally] = {}
        for rules in sites:
            site = self._sites.get(rules.site_id)
            self.tallies[rules.site_id] = SiteTally(
                site=site, rules={rule.id: RuleTally() for rule in site.rules.rules}
            )
        self._visitors: dict[tuple[str, str], _Visitor] = {}
        self.read = 0
        self.replayed = 0
        self.other_sites = 0
        self.out_of_range = 0
        self.duplicates = 0
        self.skipped: Counter[str] = Counter()

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def visitors(self, site_id: str) -> int:
        return sum(1 for site, _ in self._visitors if site == site_id)

    def _skip(self, reason: str) -> None:
        if reason not in self.skipped and len(self.skipped) >= MAX_SKIP_REASONS:
            reason = "other"
        self.skipped[reason] += 1

    def feed_bytes(self, value: bytes | None) -> None:
        """One raw record value from the topic (JSON)."""
        try:
            data = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            self.read += 1
            self._skip("$: not JSON")
            return
        self.feed(data)

    def feed(self, data: object) -> None:
        """One decoded record. Never raises for a bad record: it is counted as skipped."""
        self.read += 1
        if isinstance(data, dict):
            site_id = data.get("site_id")
            if isinstance(site_id, str) and site_id not in self.tallies:
                self.other_sites += 1
                return
        try:
            obs = observe(data)
        except BadRecord as exc:
            self._skip(f"{exc.field}: {exc.reason}")
            return
        if (self.since is not None and obs.at < self.since) or (
            self.until is not None and obs.at >= self.until
        ):
            self.out_of_range += 1
            return
        tally = self.tallies[obs.site_id]
        key = (obs.site_id, obs.visitor_id)
        visitor = self._visitors.get(key)
        if visitor is None:
            visitor = self._visitors[key] = _Visitor(VisitorState(obs.site_id, obs.visitor_id))
        state = visitor.state
        if seen_before(state, obs.event_id, None, None):
            self.duplicates += 1
            return
        self.replayed += 1
        tally.saw(obs.at)
        result = step(tally.site, state, obs)
        if result.candidate is not None:
            self._decide(tally, visitor, result.candidate)
        remember(state, obs.event_id, None, None)

    def _decide(self, tally: SiteTally, visitor: _Visitor, candidate: Candidate) -> None:
        """Admission with unlimited capacity: limits, outstanding, hourly caps, holdout."""
        rules = tally.site.rules
        rule = rules.rule(candidate.rule_id)
        if rule is None or not rule.enabled:
            return
        counts = tally.rules[rule.id]
        state = visitor.state
        now = candidate.at
        if visitor_limit_reason(rule, state.invitations, candidate.session_id, now) is not None:
            return
        first = (rule.id, candidate.session_id)
        if first not in visitor.eligible:
            visitor.eligible.add(first)
            counts.eligible += 1
        reason = self._refusal(tally, rule, state, now)
        if reason is not None:
            counts.refused[reason] += 1
            return
        hour = int(now // HOUR_S)
        tally.hourly[hour] += 1  # held-out decisions count too, as in admission
        tally.rule_hourly[(rule.id, hour)] += 1
        held_out = in_holdout(state.site_id, state.visitor_id, rule.id, rule.holdout_percent)
        if held_out:
            counts.held_out += 1
        else:
            counts.fired += 1
            counts.by_hour[hour] += 1
            tally.by_hour[hour] += 1
        state.invitations.append(
            InvitationMark(
                invitation_id=candidate.invitation_id,
                rule_id=rule.id,
                arm="held_out" if held_out else "invited",
                at=now,
                session_id=candidate.session_id,
                team=rule.team,
            )
        )
        del state.invitations[:-MAX_INVITATIONS]

    @staticmethod
    def _refusal(tally: SiteTally, rule: Rule, state: VisitorState, now: float) -> str | None:
        rules = tally.site.rules
        for mark in reversed(state.invitations):
            if mark.arm != "invited":
                continue
            shown = rules.rule(mark.rule_id)
            expires_after = shown.expires_after if shown is not None else rule.expires_after
            if mark.at <= now < mark.at + expires_after:
                return "outstanding"  # the visitor still has an invitation up
        hour = int(now // HOUR_S)
        cap = rules.max_invitations_per_hour
        if cap is not None and tally.hourly[hour] >= cap:
            return "site_hourly_cap"
        rule_cap = rule.limits.max_per_hour
        if rule_cap is not None and tally.rule_hourly[(rule.id, hour)] >= rule_cap:
            return "rule_hourly_cap"
        return None

    # ---- the report --------------------------------------------------------------------
    def report(
        self,
        *,
        handling_time_s: float,
        acceptance_rate: float | None = None,
        chats_per_agent: int = DEFAULT_CHATS_PER_AGENT,
    ) -> Report:
        sites = []
        for site_id, tally in self.tallies.items():
            rules = tally.site.rules
            rate = rules.acceptance_rate if acceptance_rate is None else acceptance_rate
            span_s = (
                tally.last_at - tally.first_at
                if tally.first_at is not None and tally.last_at is not None
                else 0.0
            )
            sizing = _Sizing(span_s / HOUR_S, rate, handling_time_s, chats_per_agent)
            rows = [
                sizing.row(
                    rule.id,
                    rule.name,
                    rule.enabled,
                    tally.rules[rule.id].eligible,
                    tally.rules[rule.id].fired,
                    tally.rules[rule.id].held_out,
                    tally.rules[rule.id].refused,
                    tally.rules[rule.id].by_hour,
                )
                for rule in rules.rules
            ]
            refused: Counter[str] = Counter()
            for row in rows:
                refused.update(row.refused)
            total = sizing.row(
                "*",
                "all rules",
                True,
                sum(row.eligible for row in rows),
                sum(row.fired for row in rows),
                sum(row.held_out for row in rows),
                refused,
                tally.by_hour,
            )
            sites.append(
                SiteReport(
                    site_id=site_id,
                    version=rules.version,
                    acceptance_rate=rate,
                    events=tally.events,
                    visitors=self.visitors(site_id),
                    first_event=_iso(tally.first_at),
                    last_event=_iso(tally.last_at),
                    span_hours=span_s / HOUR_S,
                    rules=rows,
                    total=total,
                )
            )
        return Report(
            since=_iso(self.since),
            until=_iso(self.until),
            handling_time_s=handling_time_s,
            chats_per_agent=chats_per_agent,
            read=self.read,
            replayed=self.replayed,
            other_sites=self.other_sites,
            out_of_range=self.out_of_range,
            duplicates=self.duplicates,
            skipped=dict(self.skipped.most_common()),
            sites=sites,
        )


@dataclass(frozen=True, slots=True)
class _Sizing:
    span_hours: float
    acceptance_rate: float
    handling_time_s: float
    chats_per_agent: int

    def row(
        self,
        rule_id: str,
        name: str,
        enabled: bool,
        eligible: int,
        fired: int,
        held_out: int,
        refused: Counter[str],
        by_hour: Counter[int],
    ) -> RuleReport:
        peak_hour, peak = max(
            by_hour.items(), key=lambda item: (item[1], -item[0]), default=(None, 0)
        )
        peak_conversations = peak * self.acceptance_rate
        concurrent = peak_conversations * self.handling_time_s / HOUR_S
        return RuleReport(
            rule_id=rule_id,
            name=name,
            enabled=enabled,
            eligible=eligible,
            fired=fired,
            held_out=held_out,
            refused=dict(sorted(refused.items())),
            fires_per_hour=fired / max(self.span_hours, 1.0),
            peak_hour=_iso(peak_hour * HOUR_S) if peak_hour is not None else None,
            peak_fires_per_hour=peak,
            expected_conversations=fired * self.acceptance_rate,
            peak_conversations_per_hour=peak_conversations,
            concurrent_chats=concurrent,
            agents_needed=agents_needed(concurrent, self.chats_per_agent),
        )


def agents_needed(concurrent_chats: float, chats_per_agent: int) -> int:
    """ceil(concurrent / chats per agent), without float noise turning 2.0000001 into 3."""
    return math.ceil(round(concurrent_chats / chats_per_agent, 9))


@dataclass(frozen=True, slots=True)
class RuleReport:
    rule_id: str
    name: str
    enabled: bool
    eligible: int
    fired: int
    held_out: int
    refused: dict[str, int]
    fires_per_hour: float
    peak_hour: str | None
    peak_fires_per_hour: int
    expected_conversations: float
    peak_conversations_per_hour: float
    concurrent_chats: float
    agents_needed: int

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class SiteReport:
    site_id: str
    version: int
    acceptance_rate: float
    events: int
    visitors: int
    first_event: str | None
    last_event: str | None
    span_hours: float
    rules: list[RuleReport]
    total: RuleReport

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["rules"] = [row.to_dict() for row in self.rules]
        data["total"] = self.total.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class Report:
    since: str | None
    until: str | None
    handling_time_s: float
    chats_per_agent: int
    read: int
    replayed: int
    other_sites: int
    out_of_range: int
    duplicates: int
    skipped: dict[str, int]
    sites: list[SiteReport]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"from": self.since, "to": self.until},
            "handling_time_s": self.handling_time_s,
            "chats_per_agent": self.chats_per_agent,
            "records": {
                "read": self.read,
                "replayed": self.replayed,
                "other_sites": self.other_sites,
                "out_of_range": self.out_of_range,
                "duplicates": self.duplicates,
                "skipped": sum(self.skipped.values()),
                "skipped_reasons": self.skipped,
            },
            "sites": [site.to_dict() for site in self.sites],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)


# ---- the table ------------------------------------------------------------------------------
_NAME_WIDTH = 34


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _table(rows: Sequence[Sequence[str]], right: Iterable[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligned = set(right)
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_report(report: Report) -> str:
    """The human-readable report: one aligned table per site, then what was read."""
    out: list[str] = []
    for site in report.sites:
        if site.first_event and site.last_event:
            window = f"{site.first_event} → {site.last_event} ({site.span_hours:.1f} h)"
        else:
            window = "no events"
        out.append(
            f"site {site.site_id} v{site.version}: {site.events} events, {site.visitors} visitors,"
            f" {window}"
        )
        out.append(
            f"  acceptance {site.acceptance_rate:.0%}, handling time"
            f" {_duration(report.handling_time_s)}, {report.chats_per_agent} chats per agent"
        )
        header = [
            "rule",
            "name",
            "eligible",
            "fired",
            "held out",
            "capped",
            "fires/h",
            "peak/h",
            "conversations",
            "agents",
        ]
        rows = [header]
        for row in [*site.rules, site.total]:
            capped = row.refused.get("site_hourly_cap", 0) + row.refused.get("rule_hourly_cap", 0)
            disabled = not row.enabled
            rows.append(
                [
                    "all rules" if row.rule_id == "*" else row.rule_id,
                    "" if row.rule_id == "*" else _short(row.name, _NAME_WIDTH),
                    "-" if disabled else str(row.eligible),
                    "-" if disabled else str(row.fired),
                    "-" if disabled else str(row.held_out),
                    "-" if disabled else str(capped),
                    "-" if disabled else f"{row.fires_per_hour:.2f}",
                    "-" if disabled else str(row.peak_fires_per_hour),
                    "disabled" if disabled else f"{row.expected_conversations:.1f}",
                    "-" if disabled else str(row.agents_needed),
                ]
            )
        lines = _table(rows, right=range(2, len(header)))
        rule_line = "-" * len(max(lines, key=len))
        out.extend(["", *lines[:1], rule_line, *lines[1:-1], rule_line, lines[-1], ""])
    records = [
        f"read {report.read} records: {report.replayed} replayed",
        f"{report.other_sites} of other sites",
        f"{report.out_of_range} outside the window",
        f"{report.duplicates} duplicates",
        f"{sum(report.skipped.values())} skipped",
    ]
    out.append(", ".join(records))
    for reason, count in report.skipped.items():
        out.append(f"  skipped {count}: {reason}")
    out.append(
        "fires/h: average over the replayed span (at least 1 h); peak/h: the busiest clock hour;"
        " capped: candidates refused by hourly caps\n"
        "agents = ceil(peak/h * acceptance * handling time / chats per agent), at the peak hour;"
        " agent capacity is assumed unlimited while replaying"
    )
    return "\n".join(out)


# ---- reading the topic ----------------------------------------------------------------------
class Progress:
    """`records read / total (percent), rate` on stderr, at most ~10 times a second.

    On a terminal the line is redrawn in place (`\\r`); otherwise only the final line is
    written, so logs and pipes stay clean.
    """

    def __init__(self, stream: TextIO, interval_s: float = 0.1) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._shown = 0.0
        self._width = 0  # of the line on screen, to blank what a shorter line leaves

    def _line(self, done: int, total: int | None) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        if total:
            share = min(done / total, 1.0)
            filled = int(share * 30)
            bar = "#" * filled + "." * (30 - filled)
            return f"[{bar}] {done}/{total} records ({share:.0%}), {rate:,.0f}/s"
        return f"{done} records, {rate:,.0f}/s"

    def _padded(self, line: str) -> str:
        padded = line.ljust(self._width)
        self._width = len(line)
        return padded

    def update(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.tty or now - self._shown < self.interval_s:
            return
        self._shown = now
        self.stream.write("\r" + self._padded(self._line(done, total)))
        self.stream.flush()

    def finish(self, done: int, total: int | None) -> None:
        elapsed = time.monotonic() - self.started
        line = self._line(done, total) + f" in {elapsed:.1f}s"
        self.stream.write(("\r" + self._padded(line) if self.tty else line) + "\n")
        self.stream.flush()


class BrokerUnavailable(RuntimeError):
    pass


async def replay_topic(
    bootstrap: str,
    backtest: Backtest,
    *,
    topic: str = topics.TRACKING_EVENTS.name,
    progress: Progress | None = None,
    timeout_s: float = 30.0,
    start_at: float | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> int:
    """Feed every record of `topic` up to its high watermarks as of the start; return the
    number of records read. Raises `BrokerUnavailable` if the broker can't be reached or
    stops answering for `timeout_s`. With `start_at` (epoch seconds), each partition starts
    at its first record appended since then, where the broker can say (else from the start)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="beckon-backtest",
        group_id=None,  # no group: nothing is committed anywhere
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout_s * 1000),
        **security.aiokafka_options(),
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout=timeout_s)
    except (KafkaError, OSError, TimeoutError) as exc:
        await consumer.stop()
        raise BrokerUnavailable(str(exc) or type(exc).__name__) from None
    read = 0
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + min(timeout_s, 3.0)
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()  # no public way in aiokafka
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.2)
        if not partitions:
            return 0  # nothing was ever recorded
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        if start_at is not None:
            await _seek_to_time(consumer, assigned, start_at)
        start = {tp: await consumer.position(tp) for tp in assigned}
        # what the topic holds now: later appends are not this replay's
        highwater: dict[TopicPartition, int] = dict(await consumer.end_offsets(assigned))
        pending = {tp for tp in assigned if start[tp] < highwater[tp]}
        last_progress = time.monotonic()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batches.items():
                end = highwater[tp]
                for record in records:
                    if record.offset >= end:
                        break
                    backtest.feed_bytes(record.value)
                    read += 1
                last_progress = time.monotonic()
            for tp in list(pending):
                if await consumer.position(tp) >= highwater[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
            if progress is not None:
                progress.update(read, _total(start, highwater, assigned))
            if pending and time.monotonic() - last_progress > timeout_s:
                raise BrokerUnavailable(
                    f"no answer for {timeout_s:.0f}s while reading {topic}"
                    f" ({len(pending)} partitions unfinished)"
                )
        if progress is not None:
            progress.finish(read, _total(start, highwater, assigned))
        return read
    finally:
        await consumer.stop()


async def _seek_to_time(consumer: Any, assigned: Sequence[Any], start_at: float) -> None:
    """Skip what was appended before `start_at` (record timestamps are append times, never
    later than the events they carry). A broker that can't answer leaves the beginning."""
    from aiokafka.errors import KafkaError

    try:
        found = await asyncio.wait_for(
            consumer.offsets_for_times({tp: int(start_at * 1000) for tp in assigned}), 5.0
        )
    except (KafkaError, OSError, TimeoutError, ValueError):
        return
    for tp, at in found.items():
        if at is not None:
            consumer.seek(tp, at.offset)


def _total(start: dict[Any, int], highwater: dict[Any, int], assigned: Sequence[Any]) -> int:
    return sum(max(highwater[tp] - start[tp], 0) for tp in assigned)


def run_backtest_command(args: argparse.Namespace, sites: list[SiteRules]) -> int:
    """The CLI entry: 0 ok, 1 broker unreachable, 2 bad arguments (bad rules exit in cli)."""
    try:
        since_text = getattr(args, "since", None)
        until_text = getattr(args, "until", None)
        since = parse_instant(since_text) if since_text else None
        until = parse_instant(until_text) if until_text else None
        if since is not None and until is not None and until <= since:
            raise ValueError("--to must be after --from")
        handling_time_s = parse_duration(getattr(args, "handling_time", "8m"))
        if handling_time_s <= 0:
            raise ValueError("--handling-time must be more than zero")
        acceptance_rate = getattr(args, "acceptance_rate", None)
        if acceptance_rate is not None and not 0 < acceptance_rate <= 1:
            raise ValueError("--acceptance-rate must be in (0, 1], e.g. 0.3")
        chats_per_agent = int(getattr(args, "chats_per_agent", DEFAULT_CHATS_PER_AGENT))
        if chats_per_agent < 1:
            raise ValueError("--chats-per-agent must be at least 1")
    except ValueError as exc:
        print(f"beckon rules backtest: {exc}", file=sys.stderr)
        return 2
    bootstrap = getattr(args, "bootstrap", "127.0.0.1:9092")
    # our message below says what went wrong; aiokafka's own connection errors are noise here
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    backtest = Backtest(sites, since=since, until=until)
    progress = Progress(sys.stderr)
    try:
        asyncio.run(
            replay_topic(
                bootstrap,
                backtest,
                progress=progress,
                timeout_s=float(getattr(args, "timeout", 30.0)),
                security=getattr(args, "security", PLAINTEXT),
            )
        )
    except BrokerUnavailable as exc:
        print(
            f"could not read {topics.TRACKING_EVENTS.name} from the broker at {bootstrap}: {exc}\n"
            "is it running? (`make dev` starts one; --bootstrap points elsewhere)",
            file=sys.stderr,
        )
        return 1
    report = backtest.report(
        handling_time_s=handling_time_s,
        acceptance_rate=acceptance_rate,
        chats_per_agent=chats_per_agent,
    )
    if getattr(args, "json", False):
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        print(format_report(report))
    return 0
