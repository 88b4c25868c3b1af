"""The battery's load: visitors, widgets, agents, a CRM and mailboxes, speaking the services'
real protocols, spread over every instance of each service.

- **Visitors** browse through the tracker, half with the snippet's `/v1/collect` batches, half
  with Segment `/v1/batch` calls: a home page, a product and a cart of 129 EUR, their times
  set back 30 s so the demo rules' `min_browsing` (20 s) has passed and `big-cart` fires at once.
- **Widgets** hold the socket widget.js holds (`/v1/widget/ws`), report the invitation shown,
  accept it, start the conversation from it (or without one, when none came), leave the
  person's e-mail and chat with `{"t":"message","client_id"}` frames, resent with the same
  `client_id` until their stored copy comes back.
- **Agents** (the demo seed's) log in, go online and hold console sockets on several chat
  instances; they answer every visitor line over HTTP with a `client_id`, mark the person as
  a lead and close the conversation, so the notifier mails the transcript.
- **A CRM**: `receiver.WebhookReceiver`, registered as a leads webhook endpoint.
- **Mailboxes**: some visitors answer their transcript by SMTP to the sink, at the Reply-To
  the notifier put in it; the sink hands reply-domain mail to the notifier and the reply comes
  back into the conversation, which an agent answers and closes again.

Everything is retried through faults (connection errors, timeouts, 5xx, 503, 429 with
`Retry-After`) with the protocols' idempotency keys, and only what was acknowledged goes in
the ledger. The same code serves the short test (a few dozen visitors) and the long bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.utils
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import yaml
from beckon_contracts.ids import uuid7
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from beckon_devstack.chaos.ledger import (
    AGENT,
    VISITOR,
    AckedMessage,
    Ledger,
    Mark,
    Reply,
    status_kind,
)
from beckon_devstack.chaos.receiver import WebhookReceiver
from beckon_devstack.chaos.target import Target
from beckon_devstack.config import DEMO_CHAT_SEED_FILE

log = logging.getLogger("beckon.chaos.traffic")

COOKIE = "beckon_agent"
LEAD_EVENT_TYPES = (
    "lead.created",
    "lead.merged",
    "lead.routed",
    "lead.assigned",
    "lead.sla_warning",
    "lead.sla_breached",
    "lead.escalated",
    "lead.reassigned",
)
VALIDATIONS = ("contact_only", "interested", "qualified", "ready_to_buy")
BYE = "[bye]"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass(frozen=True)
class TrafficConfig:
    """Rates and sizes; the short test and the long bench differ only here."""

    visitors_per_s: float = 0.5
    max_visitors: int | None = None
    segment_share: float = 0.5
    # visitors who open a chat when no invitation came within `invitation_wait_s`
    chat_without_invitation: float = 1.0
    invitation_wait_s: float = 15.0
    messages_per_chat: int = 3
    # people (e-mail addresses) the visitors are drawn from: several conversations of one
    # person test the leads' dedup; 0 = half as many as `max_visitors` (or 50)
    persons: int = 0
    mark_share: float = 0.8
    reply_share: float = 0.5
    sockets_per_agent: int = 2
    # the demo site's SLA for every team and level, around the clock, so timers fire within
    # the run; None keeps the seed's (business hours: rarely due in a short run)
    sla_first_contact_s: int | None = 20
    webhook_fail_ratio: float = 0.1
    # how long one acknowledgement is waited for before the call is made again
    ack_timeout_s: float = 10.0
    # how long a call is retried through faults before the visitor gives up
    retry_for_s: float = 180.0
    # how long stop() waits for visitors, replies and agents to finish their work
    drain_s: float = 120.0
    seed: int = 1


class GaveUp(Exception):
    """A call kept failing for `retry_for_s`: the visitor or agent drops this piece of work."""


@dataclass
class _Plan:
    """What one visitor's conversation is to go through (shared by its widget and agent)."""

    visitor_id: str
    tag: str
    email: str
    mark: str | None
    reply: bool
    listening: bool = True  # the widget's socket is held: agents' lines must reach it


@dataclass
class _AgentState:
    email: str
    agent_id: str = ""
    cookie: str = ""
    held: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # visitor message ids answered
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


class Traffic:
    def __init__(self, target: Target, config: TrafficConfig | None = None) -> None:
        self.target = target
        self.config = config or TrafficConfig()
        self.ledger = Ledger()
        self.receiver = WebhookReceiver(self.ledger, fail_ratio=self.config.webhook_fail_ratio)
        self._random = random.Random(self.config.seed)
        self._run = uuid.uuid4().hex[:8]
        # a browser's user agent: the tracker flags others as bots, and no rule fires for bots
        self._http = httpx.AsyncClient(
            timeout=self.config.ack_timeout_s, headers={"user-agent": BROWSER_UA}
        )
        self._rr = itertools.count()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._visitors: set[asyncio.Task[Any]] = set()
        self._replies: set[asyncio.Task[Any]] = set()
        self._agents: list[_AgentState] = []
        self._agent_tasks: list[asyncio.Task[Any]] = []
        self._plans: dict[str, _Plan] = {}  # conversation id -> plan
        self._origin = ""
        self._smtp: tuple[str, int] = ("127.0.0.1", 25)
        self.gave_up = 0
        self._spawner: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()  # set on every close an agent makes

    async def arrived(self) -> None:
        """Wait until `max_visitors` have arrived (only with a `max_visitors`)."""
        if self._spawner is not None:
            await asyncio.shield(self._spawner)

    # --- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up (origin, agents online, webhook endpoint, SLA), then start the load."""
        self._origin = await self._site_origin()
        health = (await self._http.get(f"{self.target.smtp_sink_url}/healthz")).json()
        host, _, port = str(health["smtp"]).rpartition(":")
        self._smtp = (host, int(port))
        await self.receiver.start()
        seed = yaml.safe_load(DEMO_CHAT_SEED_FILE.read_text())
        site = next(s for s in seed["sites"] if s["site_id"] == self.target.site_id)
        for agent in site["agents"]:
            state = _AgentState(email=agent["email"])
            await self._login(state, agent["password"])
            self._agents.append(state)
        admin = next(a for a in self._agents if a.email == self.target.agent_email)
        await self._set_up_leads(admin)
        for state in self._agents:
            for n in range(self.config.sockets_per_agent):
                self._agent_tasks.append(asyncio.create_task(self._agent_socket(state, n)))
        self._spawner = asyncio.create_task(self._visitor_spawner())

    async def stop(self) -> None:
        """Stop arriving visitors; let those here finish, replies land and agents close what
        replies reopened; then close every socket. The webhook receiver stays up for the
        checks (`close()` ends it)."""
        self._stopping.set()
        if self._spawner is not None:
            await self._spawner
        deadline = time.monotonic() + self.config.drain_s
        for group in (self._visitors, self._replies):
            while group and time.monotonic() < deadline:
                await asyncio.wait(list(group), timeout=max(0.1, deadline - time.monotonic()))
        # a reply by e-mail reopens its conversation a moment after the sink took it: wait
        # until an agent has answered and closed it again
        while time.monotonic() < deadline and self._reopened_pending():
            self._closed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 1.0)
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=max(0.1, deadline - time.monotonic()))
        for task in [*self._tasks, *self._visitors, *self._replies, *self._agent_tasks]:
            task.cancel()
        await asyncio.gather(
            *self._tasks,
            *self._visitors,
            *self._replies,
            *self._agent_tasks,
            return_exceptions=True,
        )

    async def _closed_by_an_unanswered_try(
        self, state: _AgentState, cid: str, answer: httpx.Response
    ) -> bool:
        """A close refused as already done after a try that got no answer: that try closed
        it (this agent holds the conversation, and nobody else closes it)."""
        if answer.status_code != 409:
            return False
        now = await self._agent_call(
            state, "console.conversation", "GET", f"/v1/console/conversations/{cid}"
        )
        return now.is_success and now.json()["conversation"]["status"] == "closed"

    def _reopened_pending(self) -> bool:
        return any(
            self.ledger.closes[reply.conversation_id] <= reply.closes_before
            for reply in self.ledger.replies
        )

    async def close(self) -> None:
        """The CRM goes away: its endpoint is disabled first (a later traffic on the same
        stack does not pay for this one's retries into a closed port), then the receiver."""
        endpoint = self.ledger.webhook_endpoint_id
        admin = next((a for a in self._agents if a.email == self.target.agent_email), None)
        if endpoint and admin is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self._http.patch(
                    f"{self.target.leads_urls[0]}/v1/leads/webhooks/{endpoint}",
                    json={"enabled": False},
                    headers=self._cookie(admin),
                    timeout=10.0,
                )
        await self.receiver.stop()
        await self._http.aclose()

    def _spawn(self, work: Awaitable[Any], group: set[asyncio.Task[Any]] | None = None) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        bucket = self._tasks if group is None else group
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        task.add_done_callback(_log_failure)

    # --- calls ----------------------------------------------------------------------------

    def _pick(self, urls: tuple[str, ...]) -> str:
        return urls[next(self._rr) % len(urls)]

    async def _call(
        self,
        path: str,
        method: str,
        urls: tuple[str, ...],
        route: str,
        *,
        ok: Callable[[httpx.Response], bool] = lambda r: r.is_success,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, made again (on the next instance) through connection errors, timeouts,
        5xx, 503 and 429 until it is answered or `retry_for_s` passed. 4xx answers other
        than 408/429 are returned as they are: the caller decides."""
        deadline = time.monotonic() + self.config.retry_for_s
        pause = 0.2
        while True:
            url = self._pick(urls) + route
            wait = pause
            try:
                answer = await self._http.request(method, url, **kwargs)
            except httpx.TimeoutException:
                self.ledger.error(path, "timeout")
            except httpx.TransportError:
                self.ledger.error(path, "connection")
            else:
                if ok(answer) or (
                    400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
                ):
                    if answer.is_success:
                        self.ledger.ok(path)
                    return answer
                self.ledger.error(path, status_kind(answer.status_code))
                with contextlib.suppress(ValueError):
                    wait = max(wait, float(answer.headers.get("retry-after", "0")))
            if time.monotonic() + wait > deadline:
                self.gave_up += 1
                raise GaveUp(f"{method} {route}: no answer for {self.config.retry_for_s:.0f} s")
            await asyncio.sleep(wait * (0.5 + self._random.random()))
            pause = min(pause * 2, 5.0)

    # --- set-up ---------------------------------------------------------------------------

    async def _site_origin(self) -> str:
        """An origin the demo site allows (the widget and the snippet must send one)."""
        conn = await asyncpg.connect(self.target.database_url)
        try:
            origins = await conn.fetchval(
                "SELECT allowed_origins FROM chat.sites WHERE site_id = $1", self.target.site_id
            )
        finally:
            await conn.close()
        if not origins:
            raise RuntimeError(f"site {self.target.site_id!r} allows no origin")
        return str(origins[0])

    async def _login(self, state: _AgentState, password: str) -> None:
        answer = await self._call(
            "console.login",
            "POST",
            self.target.chat_urls,
            "/v1/console/login",
            json={"email": state.email, "password": password},
        )
        answer.raise_for_status()
        state.agent_id = answer.json()["agent"]["id"]
        state.cookie = answer.cookies[COOKIE]
        await self._agent_call(
            state, "console.status", "POST", "/v1/console/status", json={"status": "online"}
        )

    def _cookie(self, state: _AgentState) -> dict[str, str]:
        return {"cookie": f"{COOKIE}={state.cookie}"}

    async def _agent_call(
        self, state: _AgentState, path: str, method: str, route: str, **kwargs: Any
    ) -> httpx.Response:
        return await self._call(
            path, method, self.target.chat_urls, route, headers=self._cookie(state), **kwargs
        )

    async def _set_up_leads(self, admin: _AgentState) -> None:
        """The CRM endpoint (every lead event), and an SLA that runs out within the run."""
        leads = self.target.leads_urls
        headers = self._cookie(admin)
        answer = await self._call(
            "leads.webhooks",
            "POST",
            leads,
            "/v1/leads/webhooks",
            headers=headers,
            json={
                "url": self.receiver.url,
                "event_types": list(LEAD_EVENT_TYPES),
                "description": "chaos battery CRM",
            },
        )
        answer.raise_for_status()
        created = answer.json()
        self.receiver.use_secret(created["secret"])
        self.ledger.webhook_endpoint_id = str(created["endpoint_id"])
        self.ledger.webhook_event_types = LEAD_EVENT_TYPES
        self.ledger.webhook_registered_at = time.time()
        seconds = self.config.sla_first_contact_s
        if seconds is None:
            return
        hours = await self._call(
            "leads.hours",
            "PUT",
            leads,
            "/v1/leads/business-hours",
            headers=headers,
            json={"timezone": "UTC", "hours": None, "holidays": []},
        )
        hours.raise_for_status()
        policies = [
            {
                "team": team,
                "validation": validation,
                "first_contact": seconds,
                "business_hours_only": False,
            }
            for team in ("sales", "support")
            for validation in VALIDATIONS
        ]
        answer = await self._call(
            "leads.sla",
            "PUT",
            leads,
            "/v1/leads/sla-policies",
            headers=headers,
            json={"policies": policies},
        )
        answer.raise_for_status()

    # --- visitors -------------------------------------------------------------------------

    async def _visitor_spawner(self) -> None:
        persons = self.config.persons or max(1, (self.config.max_visitors or 100) // 2)
        started = 0
        while not self._stopping.is_set():
            if self.config.max_visitors is not None and started >= self.config.max_visitors:
                return
            person = self._random.randrange(persons)
            self._spawn(self._visitor(started, person), self._visitors)
            started += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), self._random.expovariate(self.config.visitors_per_s)
                )

    async def _visitor(self, n: int, person: int) -> None:
        visitor_id = f"v-{self._run}-{n}"
        plan = _Plan(
            visitor_id=visitor_id,
            tag=f"c{self._run}x{n}",
            email=f"person{person}.{self._run}@example.com",
            mark=self._random.choice(VALIDATIONS)
            if self._random.random() < self.config.mark_share
            else None,
            reply=self._random.random() < self.config.reply_share,
        )
        try:
            await self._visit(plan, segment=self._random.random() < self.config.segment_share)
        except GaveUp as exc:
            log.info("visitor %s gave up: %s", visitor_id, exc)
        finally:
            plan.listening = False

    async def _visit(self, plan: _Plan, *, segment: bool) -> None:
        session = await self._call(
            "widget.session",
            "POST",
            self.target.chat_urls,
            "/v1/widget/session",
            headers={"origin": self._origin},
            json={"site_key": self.target.site_key, "visitor_id": plan.visitor_id, "lang": "en"},
        )
        session.raise_for_status()
        widget = _Widget(self, plan, session.json()["token"])
        await widget.open()
        try:
            if segment:
                await self._browse_segment(plan.visitor_id)
            else:
                await self._browse_snippet(plan.visitor_id)
            invitation = await widget.invitation(self.config.invitation_wait_s)
            body: dict[str, Any] = {"language": "en"}
            if invitation is not None:
                invitation_id = str(invitation["id"])
                await self._invitation_answer(widget, invitation_id, "shown")
                self.ledger.invitations_shown[invitation_id] = (
                    plan.visitor_id,
                    str(invitation.get("rule_id") or ""),
                )
                await self._invitation_answer(widget, invitation_id, "accepted")
                self.ledger.invitations_accepted.add(invitation_id)
                body["invitation_id"] = invitation_id
            elif self._random.random() < self.config.chat_without_invitation:
                body["team"] = self._random.choice(("sales", "sales", "support"))
            else:
                return
            started = await self._call(
                "widget.start",
                "POST",
                self.target.chat_urls,
                "/v1/widget/conversations",
                headers=widget.headers(),
                json=body,
            )
            started.raise_for_status()
            conversation_id = str(started.json()["conversation"]["id"])
            self._plans[conversation_id] = plan
            self.ledger.conversations[conversation_id] = plan.visitor_id
            await widget.use_token(started.json()["token"], conversation_id)
            captured = await self._call(
                "widget.email",
                "POST",
                self.target.chat_urls,
                "/v1/widget/email",
                headers=widget.headers(),
                json={"email": plan.email},
            )
            captured.raise_for_status()
            self.ledger.emails[conversation_id] = plan.email
            for i in range(1, self.config.messages_per_chat + 1):
                last = i == self.config.messages_per_chat
                text = f"{plan.tag} m{i}: what sizes does the boot come in?"
                await widget.say(text + (f" {BYE}" if last else ""))
                await widget.answered(i)
            await widget.closed()
        finally:
            plan.listening = False
            await widget.shut()
        if plan.reply:
            self._spawn(self._reply(conversation_id, plan), self._replies)

    async def _invitation_answer(self, widget: _Widget, invitation_id: str, outcome: str) -> None:
        answer = await self._call(
            f"widget.invitation.{outcome}",
            "POST",
            self.target.chat_urls,
            f"/v1/widget/invitations/{invitation_id}/{outcome}",
            headers=widget.headers(),
        )
        answer.raise_for_status()

    # --- tracking -------------------------------------------------------------------------

    def _browse_times(self) -> list[datetime]:
        now = datetime.now(UTC)
        return [now - timedelta(seconds=s) for s in (30, 25, 2)]

    async def _browse_snippet(self, visitor_id: str) -> None:
        home, product, cart = self._browse_times()
        session_id = f"s-{visitor_id}"
        pages = [
            ("/", [("page_viewed", home, {"page_type": "home"})]),
            ("/p/trail-boot", [("product_viewed", product, _PRODUCT)]),
            ("/p/trail-boot", [("cart_updated", cart, _CART)]),
        ]
        for path, events in pages:
            batch: list[dict[str, Any]] = [
                {
                    "event_id": str(uuid7(int(at.timestamp() * 1000))),
                    "type": kind,
                    "occurred_at": at.isoformat(),
                    "payload": payload,
                }
                for kind, at, payload in events
            ]
            answer = await self._call(
                "tracker.collect",
                "POST",
                self.target.tracker_urls,
                f"/v1/collect?k={self.target.site_key}",
                headers={"origin": self._origin},
                json={
                    "visitor_id": visitor_id,
                    "session_id": session_id,
                    "sent_at": datetime.now(UTC).isoformat(),
                    "context": {
                        "page": {"url": f"{self._origin}{path}", "title": "Ridgeline"},
                        "locale": "en-GB",
                    },
                    "events": batch,
                },
            )
            if answer.status_code in (200, 202):
                self.ledger.tracking_event_ids.update(event["event_id"] for event in batch)
            else:
                self.ledger.error("tracker.collect", status_kind(answer.status_code))

    async def _browse_segment(self, visitor_id: str) -> None:
        home, product, cart = self._browse_times()
        product_props = {**_PRODUCT, "url": f"{self._origin}/p/trail-boot"}
        calls: list[dict[str, Any]] = [
            {
                "type": "page",
                "name": "Home",
                "timestamp": home,
                "properties": {"url": f"{self._origin}/", "page_type": "home"},
            },
            {
                "type": "track",
                "event": "Product Viewed",
                "timestamp": product,
                "properties": product_props,
            },
            {
                "type": "track",
                "event": "Cart Updated",
                "timestamp": cart,
                "properties": {
                    "products": _CART["items"],
                    "value": _CART["value"],
                    "currency": "EUR",
                },
            },
        ]
        batch = [
            {
                **call,
                "anonymousId": visitor_id,
                "messageId": f"m-{uuid.uuid4().hex}",
                "timestamp": call["timestamp"].isoformat(),
            }
            for call in calls
        ]
        answer = await self._call(
            "tracker.batch",
            "POST",
            self.target.tracker_urls,
            "/v1/batch",
            auth=(self.target.write_key, ""),
            json={"batch": batch, "sentAt": datetime.now(UTC).isoformat()},
        )
        body = answer.json() if answer.status_code == 200 else {}
        if answer.status_code == 200 and not body.get("rejected"):
            self.ledger.segment_message_ids.update(call["messageId"] for call in batch)
        else:
            self.ledger.error("tracker.batch", status_kind(answer.status_code))

    # --- replies by e-mail ----------------------------------------------------------------

    async def _reply(self, conversation_id: str, plan: _Plan) -> None:
        """Answer the conversation's transcript by e-mail, at the Reply-To it carries."""
        deadline = time.monotonic() + self.config.drain_s
        found: dict[str, Any] | None = None
        while found is None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                mails = (
                    await self._http.get(
                        f"{self.target.smtp_sink_url}/api/messages", params={"to": plan.email}
                    )
                ).json()
                found = next(
                    (
                        m
                        for m in mails
                        if f"{plan.tag} m1" in (m.get("text") or "")
                        and any(self.target.reply_domain in r for r in m.get("reply_to", []))
                    ),
                    None,
                )
            if found is None:
                if time.monotonic() > deadline:
                    log.info("no transcript came for %s", conversation_id)
                    return
                await asyncio.sleep(1.0)
        assert found is not None
        reply_to = next(r for r in found["reply_to"] if self.target.reply_domain in r)
        marker = f"{plan.tag}-reply-{uuid.uuid4().hex[:8]}"
        message = email.message.EmailMessage()
        message["From"] = plan.email
        message["To"] = reply_to
        message["Subject"] = f"Re: {found.get('subject') or ''}"
        message_id = email.utils.make_msgid(domain="example.test")
        message["Message-ID"] = message_id
        if found.get("message_id"):
            message["In-Reply-To"] = found["message_id"]
        message.set_content(f"One more question ({marker}): do you ship to Norway?\n")
        pause = 0.5
        while True:
            try:
                await aiosmtplib.send(
                    message, hostname=self._smtp[0], port=self._smtp[1], timeout=30
                )
                break
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.ledger.error("smtp.reply", type(exc).__name__)
                if time.monotonic() > deadline:
                    self.gave_up += 1
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
        self.ledger.replies.append(
            Reply(
                conversation_id=conversation_id,
                marker=marker,
                message_id=message_id,
                closes_before=self.ledger.closes[conversation_id],
            )
        )
        self.ledger.ok("smtp.reply")

    # --- agents ---------------------------------------------------------------------------

    async def _agent_socket(self, state: _AgentState, n: int) -> None:
        """One console socket of the agent, on its own chat instance, held through faults."""
        urls = self.target.chat_urls
        base = urls[(n + len(self._agents)) % len(urls)]
        uri = base.replace("http", "ws", 1) + "/v1/console/ws"
        pause = 0.2
        first = True
        while True:
            try:
                async with connect(
                    uri, additional_headers=self._cookie(state), open_timeout=10
                ) as ws:
                    pause = 0.2
                    if not first:  # what the console showed when its socket dropped
                        self._spawn(self._agent_resync(state, set(state.held)))
                    first = False
                    pinger = asyncio.create_task(_ping(ws, {"t": "ping"}, 15.0))
                    try:
                        async for raw in ws:
                            self._agent_frame(state, json.loads(raw))
                    finally:
                        pinger.cancel()
            except (OSError, WebSocketException, TimeoutError):
                self.ledger.error("console.ws", "connection")
            await asyncio.sleep(pause * (0.5 + self._random.random()))
            pause = min(pause * 2, 5.0)

    def _agent_frame(self, state: _AgentState, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "conversation":
            conversation = frame["conversation"]
            cid = str(conversation["id"])
            if conversation.get("agent_id") == state.agent_id and conversation["status"] == "open":
                if cid not in state.held:
                    state.held.add(cid)
                    self._spawn(self._agent_catch_up(state, cid))
            else:
                state.held.discard(cid)
        elif kind == "message":
            message = frame["message"]
            cid = str(message["conversation_id"])
            if cid in self._plans:
                self.ledger.socket_saw(str(message["id"]), AGENT)
            if cid in state.held and message["author"] == "visitor":
                self._spawn(self._answer(state, cid, message))

    async def _agent_resync(self, state: _AgentState, on_screen: set[str]) -> None:
        """After a reconnect: online again (a long outage lets the presence sweep set the
        agent offline), what the agent holds, and every line it may have missed: of the
        open conversations it holds, and, as console.js reloads the one on screen whatever
        became of it, of those it held when the socket dropped (closed or handed on since:
        read, not answered)."""
        await self._agent_call(
            state, "console.status", "POST", "/v1/console/status", json={"status": "online"}
        )
        answer = await self._agent_call(
            state, "console.list", "GET", "/v1/console/conversations", params={"scope": "mine"}
        )
        if not answer.is_success:
            return
        holds = {
            str(conversation["id"])
            for conversation in answer.json()["conversations"]
            if conversation["status"] == "open" and conversation.get("agent_id") == state.agent_id
        }
        for cid in holds:
            state.held.add(cid)
            self._spawn(self._agent_catch_up(state, cid))
        for cid in on_screen - holds:
            state.held.discard(cid)
            self._spawn(self._agent_catch_up(state, cid))

    async def _agent_catch_up(self, state: _AgentState, cid: str) -> None:
        answer = await self._agent_call(
            state, "console.conversation", "GET", f"/v1/console/conversations/{cid}"
        )
        if not answer.is_success:
            return
        messages = answer.json()["messages"]
        last_answer = max((m["seq"] for m in messages if m["author"] == "agent"), default=0)
        for message in messages:
            self.ledger.fetched(str(message["id"]), AGENT)
            # what came after the last answer (a reopened chat's old lines were answered)
            if message["author"] == "visitor" and message["seq"] > last_answer:
                await self._answer(state, cid, message)

    async def _answer(self, state: _AgentState, cid: str, message: dict[str, Any]) -> None:
        """Answer one visitor line once; after the goodbye or a reply by e-mail, mark the
        person and close the conversation."""
        lock = state.locks.setdefault(cid, asyncio.Lock())
        async with lock:
            message_id = str(message["id"])
            if message_id in state.answered or cid not in state.held:
                return
            plan = self._plans.get(cid)
            client_id = f"a-{message_id}"
            sent = await self._agent_call(
                state,
                "console.message",
                "POST",
                f"/v1/console/conversations/{cid}/messages",
                json={"client_id": client_id, "text": f"Answer to seq {message['seq']}."},
            )
            if not sent.is_success:
                return  # 409: no longer ours (closed, transferred); the holder answers
            state.answered.add(message_id)
            stored = sent.json()["message"]
            expected = plan is not None and plan.listening
            self.ledger.message_acked(
                AckedMessage(
                    message_id=str(stored["id"]),
                    conversation_id=cid,
                    seq=int(stored["seq"]),
                    author="agent",
                    client_id=client_id,
                    text=str(stored["text"]),
                    acked_at=time.time(),
                    visitor_expected=expected,
                )
            )
            ending = BYE in str(message["text"]) or message.get("channel") == "email"
            if not ending:
                return
            if plan is not None and plan.mark is not None:
                marked = await self._agent_call(
                    state,
                    "console.lead",
                    "POST",
                    f"/v1/console/conversations/{cid}/lead",
                    json={"validation": plan.mark, "note": "chaos battery"},
                )
                if marked.is_success:
                    self.ledger.marks.append(
                        Mark(
                            email=plan.email,
                            conversation_id=cid,
                            visitor_id=plan.visitor_id,
                            validation=plan.mark,
                        )
                    )
            closed = await self._agent_call(
                state, "console.close", "POST", f"/v1/console/conversations/{cid}/close"
            )
            if closed.is_success or await self._closed_by_an_unanswered_try(state, cid, closed):
                state.held.discard(cid)
                self.ledger.closes[cid] += 1
                self._closed.set()


class _Widget:
    """One visitor's widget socket, as widget.js holds it: reconnects with back-off, syncs
    after every hello, resends unconfirmed messages with the same `client_id`."""

    def __init__(self, traffic: Traffic, plan: _Plan, token: str) -> None:
        self.traffic = traffic
        self.plan = plan
        self.token = token
        self.conversation_id: str | None = None
        self.invitations: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last_seq = 0
        self.agent_lines = 0
        self.closed_event = asyncio.Event()
        self.changed = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seen: set[str] = set()

    def headers(self) -> dict[str, str]:
        return {"origin": self.traffic._origin, "authorization": f"Bearer {self.token}"}

    async def open(self) -> None:
        self._task = asyncio.create_task(self._hold())
        await self._wait_connected()

    async def _wait_connected(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), self.traffic.config.retry_for_s)
        except TimeoutError:
            self.traffic.gave_up += 1
            raise GaveUp("the widget's socket never opened") from None

    async def use_token(self, token: str, conversation_id: str) -> None:
        """The conversation's token: the socket reopens with it (as widget.js does)."""
        self.conversation_id = conversation_id
        if token == self.token:
            return
        self.token = token
        self._connected.clear()
        if self._ws is not None:
            await self._ws.close()
        await self._wait_connected()

    async def shut(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _hold(self) -> None:
        ledger = self.traffic.ledger
        pause = 0.2
        while True:
            base = self.traffic._pick(self.traffic.target.chat_urls)
            uri = base.replace("http", "ws", 1) + f"/v1/widget/ws?token={self.token}"
            try:
                async with connect(
                    uri,
                    origin=Origin(self.traffic._origin),
                    open_timeout=10,
                    user_agent_header=BROWSER_UA,
                ) as ws:
                    self._ws = ws
                    pinger = asyncio.create_task(_ping(ws, {"t": "ping"}, 20.0))
                    try:
                        async for raw in ws:
                            await self._frame(ws, json.loads(raw))
                    finally:
                        pinger.cancel()
                        self._ws = None
                        self._connected.clear()
            except (OSError, WebSocketException, TimeoutError):
                ledger.error("widget.ws", "connection")
            await asyncio.sleep(pause * (0.5 + self.traffic._random.random()))
            pause = min(pause * 2, 5.0)

    async def _frame(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind = frame.get("t")
        if kind == "hello":
            for invitation in frame.get("invitations") or []:
                self.invitations.put_nowait(invitation)
            conversation = frame.get("conversation")
            if conversation and self.conversation_id and conversation["id"] == self.conversation_id:
                await self._conversation(conversation)
            await ws.send(json.dumps({"t": "sync", "after": self.last_seq}))
            self._connected.set()
        elif kind == "invitation":
            self.invitations.put_nowait(frame["invitation"])
        elif kind == "message":
            self._message(frame["message"])
        elif kind == "messages":
            for message in frame["messages"]:
                self._message(message)
        elif kind == "conversation":
            await self._conversation(frame["conversation"])

    async def _conversation(self, conversation: dict[str, Any]) -> None:
        if conversation["id"] == self.conversation_id and conversation["status"] == "closed":
            self.closed_event.set()
            self.changed.set()

    def _message(self, message: dict[str, Any]) -> None:
        if str(message["conversation_id"]) != self.conversation_id:
            return
        message_id = str(message["id"])
        self.traffic.ledger.socket_saw(message_id, VISITOR)
        self.last_seq = max(self.last_seq, int(message["seq"]))
        if message_id in self._seen:
            return
        self._seen.add(message_id)
        if message["author"] == "agent":
            self.agent_lines += 1
        ack = self._acks.get(str(message.get("client_id") or ""))
        if message["author"] == "visitor" and ack is not None and not ack.done():
            ack.set_result(message)
        self.changed.set()

    async def invitation(self, wait_s: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.invitations.get(), wait_s)
        except TimeoutError:
            return None

    async def say(self, text: str) -> None:
        """Send a line until its stored copy comes back; record the acknowledgement."""
        traffic = self.traffic
        client_id = uuid.uuid4().hex
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[client_id] = ack
        deadline = time.monotonic() + traffic.config.retry_for_s
        while not ack.done():
            if time.monotonic() > deadline:
                traffic.gave_up += 1
                raise GaveUp(f"message {client_id} never acknowledged")
            ws = self._ws
            if ws is None or not self._connected.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connected.wait(), traffic.config.ack_timeout_s)
                continue
            with contextlib.suppress(WebSocketException, OSError):
                await ws.send(json.dumps({"t": "message", "client_id": client_id, "text": text}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ack), traffic.config.ack_timeout_s)
            if not ack.done():
                traffic.ledger.error("widget.message", "timeout")
                with contextlib.suppress(WebSocketException, OSError, AttributeError):
                    await ws.send(json.dumps({"t": "sync", "after": self.last_seq}))
        stored = ack.result()
        assert self.conversation_id is not None
        traffic.ledger.message_acked(
            AckedMessage(
                message_id=str(stored["id"]),
                conversation_id=self.conversation_id,
                seq=int(stored["seq"]),
                author="visitor",
                client_id=client_id,
                text=str(stored["text"]),
                acked_at=time.time(),
                visitor_expected=True,
            )
        )

    async def _until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.traffic.config.retry_for_s
        while not done():
            if time.monotonic() > deadline:
                self.traffic.gave_up += 1
                raise GaveUp("the agent never answered or closed")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), self.traffic.config.ack_timeout_s)
            if not done() and self._ws is not None:
                with contextlib.suppress(WebSocketException, OSError, AttributeError):
                    await self._ws.send(json.dumps({"t": "sync", "after": self.last_seq}))

    async def answered(self, n: int) -> None:
        await self._until(lambda: self.agent_lines >= n)

    async def closed(self) -> None:
        await self._until(self.closed_event.is_set)


async def _ping(ws: ClientConnection, frame: dict[str, Any], every_s: float) -> None:
    with contextlib.suppress(WebSocketException, OSError):
        while True:
            await asyncio.sleep(every_s)
            await ws.send(json.dumps(frame))


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("traffic task failed", exc_info=task.exception())


_PRODUCT: dict[str, Any] = {
    "product_id": "trail-boot",
    "name": "Trail boot",
    "category": "boots",
    "price": 129.0,
    "currency": "EUR",
}
_CART: dict[str, Any] = {
    "items": [{"product_id": "trail-boot", "name": "Trail boot", "price": 129.0, "quantity": 1}],
    "value": 129.0,
    "currency": "EUR",
}
