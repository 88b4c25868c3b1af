"""The sender: due e-mails claimed (`FOR UPDATE SKIP LOCKED`, so any number of instances
share the work), rendered, sent over the instance's SMTP connections, and each result
written with the try in the delivery log.

- An e-mail is claimed for a lease longer than an SMTP timeout. Each result is written as
  soon as its send ends, by one statement outside a transaction (in effect the moment
  Postgres has it), with the others that ended meanwhile; a write that fails (Postgres away)
  is tried again until it holds. Only a crash after the server took the message and before
  that statement left this process leaves it claimed (`notifier_result_unwritten_seconds`
  measures that window); once the lease ends it is sent again with the same Message-ID
  (derived from its idempotency key), which receivers and threads treat as the same
  message, logged and counted (`notifier_lapsed_claims_total`). SMTP has no idempotent
  submit: the window can be made short, not closed.
- 4xx answers and an SMTP server away or slow: tried again after a growing pause, up to
  `max_attempts` tries; 5xx answers: failed at once (permanent).
- A scheduled e-mail (unread messages) is composed when it is claimed: the agents'
  messages the visitor has not seen and no earlier e-mail carried. None left: cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from beckon_messaging.consumer import finish_then_cancel
from beckon_messaging.postgres import retry_delays
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from notifier.adapters.smtp import Result, SmtpPool, outcome
from notifier.conversations.store import ConversationStore
from notifier.emails.service import Limits, hold_back
from notifier.emails.store import Attempt, Email, EmailStore
from notifier.sites import SiteEmail, SiteStore
from notifier.uow import EVERY_SITE, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("notifier.sender")


@dataclass(frozen=True, slots=True)
class Letter:
    """An e-mail ready for SMTP."""

    message: bytes  # as it goes on the wire (notifier.domain.compose.build_bytes)
    sender: str  # the envelope sender
    subject: str


@dataclass(frozen=True, slots=True)
class Ended:
    """A send's result on its way to the writer."""

    attempt: Attempt
    retry_at: datetime | None  # when to try again (a 4xx, the server away)
    answered: float  # the loop's time of the server's answer


@dataclass(frozen=True, slots=True)
class SendPolicy:
    instance: str
    batch: int = 200
    lease_s: float = 120.0
    poll_s: float = 0.5
    retry_initial_s: float = 30.0
    retry_max_s: float = 3600.0
    max_attempts: int = 20

    def retry_after(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.retry_max_s, self.retry_initial_s * 2 ** min(attempts - 1, 20))
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


# How often the sender counts what is due for the gauge, and the most it counts
MEASURE_EVERY_S = 15.0
DUE_CAP = 100_000
# A write of sends' results that failed is tried again after these pauses (growing)
WRITE_RETRY_INITIAL_S = 0.2
WRITE_RETRY_MAX_S = 5.0


class DeliveryMetrics:
    """`notifier_smtp_attempts_total{outcome}`, `notifier_emails_due`,
    `notifier_result_unwritten_seconds` and `notifier_lapsed_claims_total`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "notifier_smtp_attempts",
            "SMTP attempts by outcome: sent, temporary (4xx), permanent (5xx), unreachable",
            ["outcome"],
            registry=registry,
        )
        self.due = Gauge(
            "notifier_emails_due",
            f"E-mails due and not yet claimed by a sender (counted up to {DUE_CAP})",
            registry=registry,
        )
        self.unwritten = Histogram(
            "notifier_result_unwritten_seconds",
            "From the SMTP server's answer to its result written: the window in which an "
            "instance that dies leaves a sent e-mail to be sent again after its lease",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.lapsed = Counter(
            "notifier_lapsed_claims",
            "E-mails claimed again after an instance stopped mid-send (its lease ran out): sent "
            "again with the same Message-ID, the first send's outcome unknown",
            registry=registry,
        )


class Sender:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        smtp: SmtpPool,
        letters: LetterMaker,
        policy: SendPolicy,
        *,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: DeliveryMetrics | None = None,
        stop_grace_s: float = 30.0,
        measure_every_s: float = MEASURE_EVERY_S,
    ) -> None:
        self.metrics = metrics or DeliveryMetrics()
        self.stop_grace_s = stop_grace_s
        self.measure_every_s = measure_every_s
        self._last_measure = -measure_every_s
        self._stopping = False
        self.limits = limits or Limits()
        self.uow = uow
        self.smtp = smtp
        self.letters = letters
        self.policy = policy
        self.clock = clock
        self.sent = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-sender")

    async def stop(self) -> None:
        """Finish the round in hand (its sends and their results, up to `stop_grace_s`): an
        e-mail the server took is written as sent, not sent again after its lease."""
        self._stopping = True
        self._wake.set()
        await finish_then_cancel(self._task, self.stop_grace_s)

    async def _run(self) -> None:
        while not self._stopping:
            await self._measure_now_and_then()
            try:
                claimed = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # Postgres away: the claims wait for their lease, then again
                log.exception("the sender failed a round; trying again")
                claimed = 0
            if self._stopping:
                return
            if claimed >= self.policy.batch:
                continue  # more are due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_s)
            self._wake.clear()

    async def send_due(self) -> int:
        """One round: claim what is due, send it, write the results. How many were claimed."""
        now = self.clock()
        async with self.uow(EVERY_SITE) as tx:
            claimed = await tx.store(EmailStore).claim(
                instance=self.policy.instance,
                now=now,
                lease=timedelta(seconds=self.policy.lease_s),
                limit=self.policy.batch,
            )
            ready: list[Email] = []
            for email, was in claimed:
                if was == "sending":  # an instance stopped mid-send: it may have gone out
                    self.metrics.lapsed.inc()
                    log.warning(
                        "sending again an e-mail whose claim ran out mid-send (same Message-ID)",
                        extra={"email_id": str(email.email_id), "message_id": email.message_id},
                    )
                if was == "scheduled":
                    composed = await compose_unread(tx, email, now=now, limits=self.limits)
                    if composed is None:
                        continue
                    email = composed
                ready.append(email)
            sites = tx.store(SiteStore)
            settings = {site_id: await sites.get(site_id) for site_id in {e.site_id for e in ready}}
        # rendered once the claim is committed: the claim's locks are not held meanwhile
        letters: list[tuple[Email, Letter | Exception]] = []
        for email in ready:
            try:
                letters.append((email, self.letters.make(email, settings[email.site_id])))
            except Exception as error:  # a template or header refused this e-mail
                log.exception(
                    "an e-mail could not be rendered", extra={"email_id": str(email.email_id)}
                )
                letters.append((email, error))
        if not letters:
            return len(claimed)
        ended: asyncio.Queue[Ended | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write_as_they_end(ended), name="notifier-results")
        try:
            tries = await asyncio.gather(
                *(self._deliver(email, letter, ended) for email, letter in letters),
                return_exceptions=True,
            )
            for (email, _), broke in zip(letters, tries, strict=True):
                if isinstance(broke, BaseException):  # not tried: sent after its lease
                    log.error(
                        "an e-mail's send broke",
                        exc_info=broke,
                        extra={"email_id": str(email.email_id)},
                    )
            ended.put_nowait(None)  # no more results: the writer ends once it wrote them
            await writer
        finally:
            writer.cancel()  # stopping (cancelled): nothing more is written
        return len(claimed)

    async def _deliver(
        self,
        email: Email,
        letter: Letter | Exception,
        ended: asyncio.Queue[Ended | None],
    ) -> None:
        """One e-mail's try, its result handed to the writer as soon as it is known."""
        result = await self._send(email, letter)
        answered = asyncio.get_running_loop().time()
        if isinstance(letter, Letter):  # one SMTP attempt (a letter not rendered: none)
            self.metrics.attempts.labels(outcome(result)).inc()
        verdict = result.verdict
        if verdict == "retry" and email.attempts >= self.policy.max_attempts:
            verdict = "failed"
        retry_at = (
            self.clock() + self.policy.retry_after(email.attempts) if verdict == "retry" else None
        )
        subject = letter.subject if isinstance(letter, Letter) else None
        attempt = Attempt(
            email.email_id, email.attempts, verdict, result.code, result.detail, subject
        )
        ended.put_nowait(Ended(attempt, retry_at, answered))

    async def _write_as_they_end(self, ended: asyncio.Queue[Ended | None]) -> None:
        """The results written as the sends end: each write at once, with all that ended
        while the one before it ran (no waiting for more: every millisecond a sent e-mail's
        result is not written is one in which a crash sends it twice)."""
        last = False
        while not last:
            group, last = await self._next_group(ended)
            if group:
                await self._write_until_it_holds(group)

    @staticmethod
    async def _next_group(ended: asyncio.Queue[Ended | None]) -> tuple[list[Ended], bool]:
        """The results of the next write: the first to come and every one already in, and
        whether the round's sends are all in (its None came)."""
        first = await ended.get()
        if first is None:
            return [], True
        group = [first]
        while not ended.empty():
            item = ended.get_nowait()
            if item is None:
                return group, True
            group.append(item)
        return group, False

    async def _write_until_it_holds(self, group: list[Ended]) -> None:
        """A write that fails (Postgres away) is tried again until it holds: an e-mail the
        server took is written as sent, never left to its lease and sent twice because the
        database blinked."""
        for pause in retry_delays(WRITE_RETRY_INITIAL_S, WRITE_RETRY_MAX_S):
            try:
                await self._record(group)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "could not write the results of %d e-mail(s) (%s: %s); trying again in %.1f s",
                    len(group),
                    type(error).__name__,
                    error,
                    pause,
                )
                await asyncio.sleep(pause)
                continue
            written = asyncio.get_running_loop().time()
            for item in group:
                self.metrics.unwritten.observe(written - item.answered)
            self.sent += sum(1 for item in group if item.attempt.outcome == "sent")
            return

    async def _record(self, group: list[Ended]) -> None:
        async with self.uow.alone(EVERY_SITE) as tx:  # one statement, no BEGIN/COMMIT
            await tx.store(EmailStore).record(
                [item.attempt for item in group],
                now=self.clock(),
                instance=self.policy.instance,
                retry_at={i.attempt.email_id: i.retry_at for i in group if i.retry_at},
            )

    async def measure_due(self) -> int:
        """The e-mails due now, into `notifier_emails_due`."""
        async with self.uow.read(EVERY_SITE) as tx:
            due = await tx.store(EmailStore).count_due(now=self.clock(), cap=DUE_CAP)
        self.metrics.due.set(due)
        return due

    async def _measure_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_measure < self.measure_every_s:
            return
        self._last_measure = now
        try:
            await self.measure_due()
        except asyncio.CancelledError:
            raise
        except Exception:  # Postgres away: the round below says so
            log.warning("could not count the e-mails due")

    async def _send(self, email: Email, letter: Letter | Exception) -> Result:
        if isinstance(letter, Exception):
            return Result("failed", None, f"not rendered: {type(letter).__name__}: {letter}"[:500])
        return await self.smtp.send(letter.message, sender=letter.sender, recipient=email.recipient)


class LetterMaker(Protocol):
    """Renders an e-mail row into a message (notifier.delivery.letters.Letters)."""

    def make(self, email: Email, site: SiteEmail) -> Letter: ...


async def compose_unread(
    tx: UnitOfWork, email: Email, *, now: datetime, limits: Limits
) -> Email | None:
    """A due "unread messages" e-mail with the agents' lines the visitor has not seen and no
    earlier e-mail carried; None (and cancelled) when there are none, or (suppressed) when the
    suppression list or a limit holds it back now."""
    store = tx.store(EmailStore)
    conversations = tx.store(ConversationStore)
    assert email.conversation_id is not None
    conversation = await conversations.get(email.site_id, email.conversation_id, lock=True)
    if conversation is None or conversation.closed_at is not None:
        await store.set_status(email.email_id, "cancelled", "closed")
        return None
    after = max(conversation.seen_seq, conversation.emailed_seq)
    lines = await conversations.lines(email.conversation_id, after_seq=after, author="agent")
    if not lines:
        await store.set_status(email.email_id, "cancelled", "seen")
        return None
    held = await hold_back(
        store,
        email.site_id,
        email.recipient,
        email.visitor_id,
        now=now,
        limits=limits,
        besides=email.email_id,
    )
    if held is not None:
        await store.set_status(email.email_id, "suppressed", held)
        return None
    context = {
        **email.context,
        "messages": [line.to_json() for line in lines],
        "thread": {
            "in_reply_to": conversation.last_email_id,
            "references": [
                i for i in (conversation.first_email_id, conversation.last_email_id) if i
            ],
        },
    }
    await store.compose(email.email_id, context)
    await conversations.emailed(
        email.conversation_id, up_to_seq=lines[-1].seq, message_id=email.message_id
    )
    return Email(**{**{name: getattr(email, name) for name in Email.__slots__}, "context": context})  # type: ignore[attr-defined]
