"""The webhook sender: every instance runs one. It claims due deliveries (`FOR UPDATE SKIP
LOCKED` and a lease, so two instances never send one row at once and a crashed instance's
claims come back when the lease ends), POSTs each signed per Standard Webhooks to an address
the SSRF guard checked, and writes what each attempt came to in batches.

- At most `concurrency` requests are in flight per instance; a delivery counts until its
  result is written, so a slow database slows claiming instead of piling results up.
- The connection goes to the checked address (`SafeTarget.pinned`): the host is never resolved
  again by the HTTP client (DNS rebinding), no proxy from the environment is used, redirects are
  not followed. One client per origin (scheme, host, port), so a kept-alive TLS connection made
  for one name is never reused for another name on the same address.
- The clock, the random source (jitter) and the resolver are parameters: tests drive a
  receiver's outage through hours of retries in a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    WebhookDisabledPayload,
    WebhookEndpointDisabled,
    webhook_disabled_key,
)
from beckon_contracts.topics import LEADS_EVENTS
from beckon_messaging.outbox import OutboxRecord, add_outbox

from leads.adapters.bus import OUTBOX_TABLE
from leads.config import Settings
from leads.domain.webhooks import (
    MAX_LOGGED_RESPONSE_BYTES,
    Random,
    Resolver,
    SafeTarget,
    UnsafeTarget,
    WebhookSecret,
    is_success,
    judge_attempt,
    resolve_target,
    signing_secrets,
    system_resolver,
    webhook_headers,
)
from leads.webhooks.store import Claimed, Endpoint, Result, WebhookStore

log = logging.getLogger("leads.webhooks")
Clock = Callable[[], datetime]
Origin = tuple[str, str, int]  # scheme, host, port
USER_AGENT = "Beckon-Webhooks/1.0"
DNS_CACHE_S = 30.0  # a checked answer is reused this long (the address it gives is pinned)
MAX_CLIENTS = 256  # origins with a client (and kept-alive connections) at once
MAX_ERROR_CHARS = 1000
# Requests in flight to one origin at most: a receiver is not flooded by one instance, and
# httpcore's pool (which scans its connections per request) stays small and fast.
PER_ORIGIN = 10
# An idle kept-alive connection is dropped after this: below the 5 s at which common servers
# (uvicorn, Node.js) close theirs, so a request rarely goes out on one closing at that moment.
KEEPALIVE_EXPIRY_S = 4.0
# What a request on a kept-alive connection the receiver had just closed fails with (no
# answer read); it is sent once more, on a fresh connection.
STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def utc_now() -> datetime:
    return datetime.now(UTC)


def webhook_sender(settings: Settings, pool: asyncpg.Pool) -> Sender:
    """This instance's sender as the settings say (`start()` it to run)."""
    return Sender(
        pool,
        instance=settings.instance_id,
        timeout_s=settings.webhook_timeout_s,
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private_targets,
        concurrency=settings.webhook_concurrency,
        poll_s=settings.webhook_poll_s,
        lease_s=settings.webhook_lease_s,
    )


@dataclass(frozen=True, slots=True)
class Sent:
    """What one POST came to: the receiver's status (None: no answer, see `error`)."""

    started_at: datetime
    duration_ms: int
    status: int | None
    error: str | None
    retry_after: str | None


class Sender:
    """Sends due webhook deliveries; `start()` runs it, `pump()` is one round (tests)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        instance: str,
        timeout_s: float,
        allow_http: bool = False,
        allow_private: bool = False,
        concurrency: int = 50,
        poll_s: float = 0.25,
        lease_s: float = 120.0,
        clock: Clock = utc_now,
        rand: Random = random.random,
        resolver: Resolver = system_resolver,
        per_origin: int = PER_ORIGIN,
    ) -> None:
        self.pool = pool
        self.instance = instance
        self.timeout_s = timeout_s
        self.allow_http = allow_http
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.lease = timedelta(seconds=lease_s)
        self.clock = clock
        self.rand = rand
        self.resolver = resolver
        self.attempts = 0  # made by this instance (a metric)
        self._in_flight: dict[int, Claimed] = {}
        self._results: list[Result] = []
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._wake_results = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.per_origin = min(per_origin, concurrency)
        self._clients: OrderedDict[Origin, tuple[httpx.AsyncClient, asyncio.Semaphore]] = (
            OrderedDict()
        )
        self._dns: dict[str, tuple[float, SafeTarget]] = {}

    # ---- running ---------------------------------------------------------------------------
    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="webhook-sender")
        self._writer = asyncio.create_task(self._write_loop(), name="webhook-results")

    def kick(self) -> None:
        """Look for due deliveries now instead of at the next poll."""
        self._wake.set()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop claiming, let requests in flight finish (up to `grace_s`), write their results
        and give back the claims of those that did not finish."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        with contextlib.suppress(Exception):
            await self._flush()
        unfinished = list(self._in_flight)  # sent but not written: sent again (at least once)
        if unfinished:
            with contextlib.suppress(Exception):
                async with self.pool.acquire() as conn:
                    await WebhookStore(conn).release(
                        instance=self.instance, delivery_ids=unfinished
                    )
        self._in_flight.clear()
        await self.close()

    async def close(self) -> None:
        """Close the HTTP clients."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client, _ in clients:
            await client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                claimed = await self._claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming webhook deliveries failed; trying again")
                claimed = 0
            if len(self._in_flight) >= self.concurrency:
                self._slot_free.clear()
                await self._slot_free.wait()
            elif claimed == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()

    async def _claim_and_start(self) -> int:
        claimed = await self._claim()
        for item in claimed:
            task = asyncio.create_task(self._attempt_and_keep(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return []
        now = self.clock()
        async with self.pool.acquire() as conn:
            claimed = await WebhookStore(conn).claim(
                instance=self.instance, now=now, lease_until=now + self.lease, limit=free
            )
        for item in claimed:
            self._in_flight[item.delivery_id] = item
        return claimed

    async def pump(self) -> int:
        """One round: claim what is due now, send it and write the results; returns how many
        attempts were made (tests drive the sender with this and their clock)."""
        claimed = await self._claim()
        await asyncio.gather(*(self._attempt_and_keep(item) for item in claimed))
        await self._flush()
        return len(claimed)

    async def _attempt_and_keep(self, claimed: Claimed) -> None:
        try:
            result = await self.attempt(claimed)
        except Exception as exc:  # a bug must not strand the claim until its lease ends
            log.exception("webhook attempt failed unexpectedly")
            now = self.clock()
            verdict = judge_attempt(
                attempts_made=claimed.round_attempt,
                status=None,
                retry_after=None,
                now=now,
                health=claimed.health,
                rand=self.rand,
            )
            result = Result(
                claimed=claimed,
                started_at=now,
                duration_ms=0,
                http_status=None,
                error=f"internal error: {exc!r}"[:MAX_ERROR_CHARS],
                outcome=verdict.outcome,
                finished_at=now,
                retry_at=verdict.retry_at,
                disable=verdict.disable,
            )
        self.attempts += 1
        self._results.append(result)
        self._wake_results.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake_results.wait()
            self._wake_results.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing webhook results failed; trying again")
                await asyncio.sleep(1.0)
                self._wake_results.set()

    async def _flush(self) -> None:
        """Write the results gathered so far in one transaction."""
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                disabled = await WebhookStore(conn).record(instance=self.instance, results=batch)
                # the site's admins hear of it by e-mail (the notifier), once: the record
                # goes out with the change that disabled the endpoint
                await add_outbox(conn, OUTBOX_TABLE, [_disabled(e, batch) for e in disabled])
        except BaseException:
            self._results[:0] = batch
            raise
        for result in batch:
            self._in_flight.pop(result.claimed.delivery_id, None)
        self._slot_free.set()
        self._wake.set()  # slots are free: look for more at once
        for endpoint in disabled:
            log.warning(
                "webhook endpoint disabled",
                extra={
                    "site_id": endpoint.site_id,
                    "endpoint_id": str(endpoint.endpoint_id),
                    "url": endpoint.url,
                    "reason": endpoint.disabled_reason,
                },
            )

    # ---- one attempt -----------------------------------------------------------------------
    async def attempt(self, claimed: Claimed) -> Result:
        """Send one claimed delivery and judge the answer."""
        started = self.clock()
        sent = await self.send(
            url=claimed.url,
            msg_id=claimed.message_id,
            body=claimed.body,
            secrets=signing_secrets(claimed.secrets, now=started),
            sent_at=started,
        )
        finished = started + timedelta(milliseconds=sent.duration_ms)
        verdict = judge_attempt(
            attempts_made=claimed.round_attempt,
            status=sent.status,
            retry_after=sent.retry_after,
            now=finished,
            health=claimed.health,
            rand=self.rand,
        )
        return Result(
            claimed=claimed,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
            http_status=sent.status,
            error=sent.error,
            outcome=verdict.outcome,
            finished_at=finished,
            retry_at=verdict.retry_at,
            disable=verdict.disable,
        )

    async def target(self, url: str) -> SafeTarget:
        """`url` checked by the SSRF guard (with this sender's dev switches), every address
        its host resolves to included; `UnsafeTarget` says why not."""
        cached = self._dns.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        target = await resolve_target(
            url,
            resolver=self.resolver,
            allow_http=self.allow_http,
            allow_private=self.allow_private,
        )
        if len(self._dns) > 4 * MAX_CLIENTS:
            self._dns.clear()
        self._dns[url] = (time.monotonic() + DNS_CACHE_S, target)
        return target

    async def send(
        self,
        *,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[WebhookSecret],
        sent_at: datetime,
    ) -> Sent:
        """POST `body` to `url`, signed with `secrets` as of `sent_at`."""
        began = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - began) * 1000)

        try:
            target = await self.target(url)
        except UnsafeTarget as exc:
            return Sent(sent_at, took(), None, f"refused target ({exc.code}): {exc}", None)
        pinned = target.pinned()
        headers = webhook_headers(msg_id=msg_id, sent_at=sent_at, body=body, secrets=secrets)
        headers["host"] = pinned.host_header
        headers["user-agent"] = USER_AGENT
        extensions = {"sni_hostname": pinned.sni_hostname} if pinned.sni_hostname else None
        client, slots = self._client(target)

        async def post() -> tuple[httpx.Response, bytes]:
            async with client.stream(
                "POST", pinned.url, content=body, headers=headers, extensions=extensions
            ) as response:
                return response, await _read_some(response, MAX_LOGGED_RESPONSE_BYTES)

        try:
            async with slots, asyncio.timeout(self.timeout_s):
                try:
                    response, excerpt = await post()
                except STALE_CONNECTION:
                    # A kept-alive connection the receiver closed as the request went out (its
                    # idle timeout ran out at that moment): once more, on a fresh connection.
                    # The same webhook-id: a receiver that did take the first deduplicates.
                    response, excerpt = await post()
        except TimeoutError:
            return Sent(sent_at, took(), None, f"no answer within {self.timeout_s:g} s", None)
        except httpx.TimeoutException:
            return Sent(sent_at, took(), None, f"no answer within {self.timeout_s:g} s", None)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Sent(
                sent_at, took(), None, f"{type(exc).__name__}: {reason}"[:MAX_ERROR_CHARS], None
            )
        status = response.status_code
        error: str | None = None
        if not is_success(status):
            if 300 <= status <= 399:
                location = response.headers.get("location", "")
                error = f"redirect to {location!r} not followed"[:MAX_ERROR_CHARS]
            else:
                error = excerpt.decode("utf-8", "replace")[:MAX_ERROR_CHARS] or None
        return Sent(sent_at, took(), status, error, response.headers.get("retry-after"))

    def _client(self, target: SafeTarget) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The origin's client, and the slots of its requests in flight."""
        key = (target.url.scheme, target.url.host, target.url.port)
        found = self._clients.get(key)
        if found is not None:
            self._clients.move_to_end(key)
            return found
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0)),
            follow_redirects=False,
            trust_env=False,  # a proxy would resolve the host itself: no pinning then
            limits=httpx.Limits(
                max_connections=self.per_origin,
                max_keepalive_connections=self.per_origin,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        )
        found = self._clients[key] = (client, asyncio.Semaphore(self.per_origin))
        if len(self._clients) > MAX_CLIENTS:
            _, (oldest, _slots) = self._clients.popitem(last=False)
            task = asyncio.create_task(oldest.aclose())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return found


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the answer (for the log); the rest is not read."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept.extend(chunk[: limit - len(kept)])
        if len(kept) >= limit:
            break
    return bytes(kept)


def _disabled(endpoint: Endpoint, batch: list[Result]) -> OutboxRecord:
    """`webhook.disabled` for `leads.events`, with the error of the try that disabled it."""
    last = next((r for r in reversed(batch) if r.claimed.endpoint_id == endpoint.endpoint_id), None)
    error = None
    if last is not None and last.http_status:
        error = f"HTTP {last.http_status}" + (f": {last.error}" if last.error else "")
    elif last is not None:
        error = last.error
    record = WebhookEndpointDisabled(
        event_id=uuid7(),
        occurred_at=endpoint.updated_at,
        site_id=endpoint.site_id,
        payload=WebhookDisabledPayload(
            endpoint_id=endpoint.endpoint_id,
            url=endpoint.url,
            reason="gone" if endpoint.disabled_reason == "gone" else "failing",
            failing_since=endpoint.failing_since,
            last_error=error[:500] if error else None,
        ),
    )
    return OutboxRecord(
        LEADS_EVENTS.name,
        webhook_disabled_key(endpoint.endpoint_id),
        record.model_dump_json(exclude_none=True).encode(),
    )
