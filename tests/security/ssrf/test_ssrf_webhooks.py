"""SSRF through the CRM webhooks, on the real Postgres with real HTTP servers on this machine:
a canary that records every request it gets, and a redirector. Every attack of `attacks.py`
is refused at registration (422 naming the reason) and at delivery (the delivery log says
`refused target (<reason>)`), a name that resolved public at registration and private at
delivery (DNS rebinding) is refused at delivery, a redirect is never followed, and the canary
gets nothing. Positive control: with the dev switch that lets private targets through, the
same sender reaches the canary (so "nothing arrived" is not a broken receiver)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from aiohttp import web
from attacks import LITERALS, NAME, PUBLIC_ADDRESS, RESOLVED
from beckon_contracts.leads import LeadCreated
from beckon_devstack.ports import free_port
from beckon_edge.console_sessions import Caller
from leads.adapters import migrations
from leads.api.deps import current_agent
from leads.config import Settings
from leads.domain.webhooks import WebhookSecret
from leads.events import emit
from leads.lead import LeadStore
from leads.main import create_app
from leads.runtime import Runtime
from leads.uow import UnitOfWorkFactory
from leads.webhooks.sender import Sender
from leads.webhooks.store import WebhookStore
from leads_testing import create_database, drop_database, unique

pytestmark = pytest.mark.integration
SECRET = str(WebhookSecret(bytes(range(32))))
REBIND = "rebind.example.com"


@dataclass
class Canary:
    """A server on 127.0.0.1 that answers 200 to anything and records it."""

    port: int = field(default_factory=free_port)
    requests: list[str] = field(default_factory=list)
    redirect_to: str | None = None  # a redirector answers 307 to here
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path_qs}")
        if self.redirect_to is not None:
            return web.Response(status=307, headers={"Location": self.redirect_to})
        return web.Response(text="canary")


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    name, url = await create_database(database_url, "leads_ssrf")
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        made = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            yield made
        finally:
            await made.close()
    finally:
        await drop_database(database_url, name)


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    found = Canary()
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


def for_delivery(url: str, port: int) -> str:
    """An attack URL aimed at the canary's port, over http (the test servers speak plain
    http; the sender's `allow_http` is on, so the scheme is not what refuses it)."""
    return url.replace("PORT", str(port)).replace("https://", "http://", 1)


def resolver_to(answers: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    return resolve


def sender(pool, *, allow_private: bool, resolver, allow_http: bool = True) -> Sender:
    return Sender(
        pool,
        instance=unique("ssrf"),
        timeout_s=5.0,
        allow_http=allow_http,
        allow_private=allow_private,
        rand=lambda: 0.5,
        resolver=resolver,
    )


async def add_endpoint(uow, site: str, url: str) -> uuid.UUID:
    """An endpoint stored as registration stores it (the URL passed the guard back then: a
    name that resolved public, or a URL from before the guard)."""
    endpoint_id = uuid.uuid4()
    async with uow(site) as tx:
        await tx.store(WebhookStore).add_endpoint(
            site_id=site,
            endpoint_id=endpoint_id,
            url=url,
            description="",
            event_types=["lead.created"],
            secret=SECRET,
            now=datetime.now(UTC),
        )
    return endpoint_id


async def emit_lead_created(uow, pool, site: str) -> None:
    lead_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, email, email_key)
           VALUES ($1, $2, $3, 'qualified', $4, $4)""",
        lead_id,
        site,
        f"v-{lead_id.hex[:8]}",
        f"ann.{lead_id.hex[:8]}@example.com",
    )
    async with uow(site) as tx:
        lead = await tx.store(LeadStore).lock(site, lead_id)
        touch = {
            "kind": "lead_marked",
            "source_event_id": uuid.uuid4(),
            "validation": "qualified",
            "at": datetime.now(UTC),
        }
        await emit(tx, LeadCreated, lead, now=datetime.now(UTC), touch=touch)


async def delivery_log(pool, site: str) -> dict[str, tuple[str, str | None, int | None]]:
    """url -> (status, last_error, last_status) of the site's deliveries."""
    rows = await pool.fetch(
        """SELECT e.url, d.status, d.last_error, d.last_status
             FROM leads.webhook_deliveries d JOIN leads.webhook_endpoints e USING (endpoint_id)
            WHERE e.site_id = $1""",
        site,
    )
    return {r["url"]: (r["status"], r["last_error"], r["last_status"]) for r in rows}


async def remove_site(pool, site: str) -> None:
    await pool.execute("DELETE FROM leads.webhook_endpoints WHERE site_id = $1", site)


async def pump_all(sending: Sender) -> int:
    """Rounds until nothing is due (a round claims up to the sender's concurrency)."""
    made = 0
    try:
        while attempts := await sending.pump():
            made += attempts
    finally:
        await sending.close()
    return made


# ---- registration ---------------------------------------------------------------------------
ATTACKS_AT_REGISTRATION = [(url, code) for url, code in LITERALS] + [
    (f"https://{NAME}:PORT/hook", code) for _answers, code in RESOLVED
]


async def test_every_attack_is_refused_at_registration_with_its_reason(pool, canary):
    site = unique("ssrf-site")
    settings = Settings(environment="test")
    app = create_app(settings)
    app.state.leads = Runtime(
        settings=settings,
        pool=pool,
        uow=UnitOfWorkFactory(pool, on_commit=lambda: None),
        bus=None,  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
        ready=True,
    )
    app.dependency_overrides[current_agent] = lambda: Caller(site, "admin-1", "admin")
    refused = 0
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://leads"
    ) as http:
        for url, _code in LITERALS:
            app.state.webhooks = sender(
                pool, allow_private=False, allow_http=False, resolver=resolver_to({})
            )
            answer = await http.post(
                "/v1/leads/webhooks",
                json={
                    "url": url.replace("PORT", str(canary.port)),
                    "event_types": ["lead.created"],
                },
            )
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["error"] == "unsafe_url", (url, answer.text)
            assert answer.json()["errors"][0]["loc"] == "url"
            refused += 1
        for answers, _code in RESOLVED:
            app.state.webhooks = sender(
                pool, allow_private=False, resolver=resolver_to({NAME: answers})
            )
            answer = await http.post(
                "/v1/leads/webhooks",
                json={"url": f"https://{NAME}:{canary.port}/hook", "event_types": ["lead.created"]},
            )
            assert answer.status_code == 422, (answers, answer.text)
            assert "public addresses only" in answer.json()["detail"], answer.text
            refused += 1
        # a public name still registers: the refusals are the guard's, not a broken route
        app.state.webhooks = sender(
            pool, allow_private=False, resolver=resolver_to({NAME: [PUBLIC_ADDRESS]})
        )
        answer = await http.post(
            "/v1/leads/webhooks",
            json={"url": f"https://{NAME}/hook", "event_types": ["lead.created"]},
        )
        assert answer.status_code == 201, answer.text
    await remove_site(pool, site)
    assert refused == len(ATTACKS_AT_REGISTRATION)
    assert canary.requests == []


# ---- delivery -------------------------------------------------------------------------------
DELIVERY_ATTACKS = [(url, code) for url, code in LITERALS if code not in ("scheme", "credentials")]


async def test_every_attack_is_refused_at_delivery_and_nothing_arrives(pool, canary):
    site = unique("ssrf-site")
    uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
    expected: dict[str, str] = {}
    for url, code in DELIVERY_ATTACKS:
        expected[for_delivery(url, canary.port)] = code
    names = {}
    for index, (answers, code) in enumerate(RESOLVED):
        name = f"crm{index}.example.com"
        names[name] = answers
        expected[f"http://{name}:{canary.port}/hook"] = code
    for url in expected:
        await add_endpoint(uow, site, url)
    await emit_lead_created(uow, pool, site)

    guarded = sender(pool, allow_private=False, resolver=resolver_to(names))
    attempts = await pump_all(guarded)
    assert canary.requests == []
    assert attempts == len(expected)

    log = await delivery_log(pool, site)
    assert set(log) == set(expected)
    for url, code in expected.items():
        status, error, http_status = log[url]
        assert http_status is None, url
        assert status == "pending", url  # retried later: a name's answer may change back
        assert error is not None, url
        assert error.startswith(f"refused target ({code})"), (url, error)
    assert canary.requests == []
    await remove_site(pool, site)


async def test_dns_rebinding_is_refused_at_delivery(pool, canary):
    """Public when registered, this machine when delivered: the check is made on the answer
    the connection uses (the sender pins the address it checked)."""
    site = unique("ssrf-site")
    settings = Settings(environment="test", webhook_allow_http=True)
    app = create_app(settings)
    app.state.leads = Runtime(
        settings=settings,
        pool=pool,
        uow=UnitOfWorkFactory(pool, on_commit=lambda: None),
        bus=None,  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
        ready=True,
    )
    app.dependency_overrides[current_agent] = lambda: Caller(site, "admin-1", "admin")
    registering = sender(
        pool, allow_private=False, resolver=resolver_to({REBIND: [PUBLIC_ADDRESS]})
    )
    app.state.webhooks = registering
    url = f"http://{REBIND}:{canary.port}/hook"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://leads"
    ) as http:
        answer = await http.post(
            "/v1/leads/webhooks", json={"url": url, "event_types": ["lead.created"]}
        )
    await registering.close()
    assert answer.status_code == 201, answer.text

    uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
    await emit_lead_created(uow, pool, site)
    rebound = sender(pool, allow_private=False, resolver=resolver_to({REBIND: ["127.0.0.1"]}))
    attempts = await pump_all(rebound)
    assert canary.requests == []
    assert attempts == 1
    _status, error, http_status = (await delivery_log(pool, site))[url]
    assert http_status is None
    assert error is not None
    assert error.startswith("refused target (loopback)"), error
    assert canary.requests == []
    await remove_site(pool, site)


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:CANARY/stolen",
        "http://localhost:CANARY/stolen",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:127.0.0.1]:CANARY/stolen",
        "http://10.0.0.1/admin",
    ],
)
async def test_a_redirect_is_never_followed(pool, canary, location):
    """Even from a first hop the sender may reach (the dev switch on, so a test server on
    this machine can be that hop), a redirect is reported, not followed."""
    redirector = Canary(redirect_to=location.replace("CANARY", str(canary.port)))
    await redirector.start()
    site = unique("ssrf-site")
    uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
    url = f"http://127.0.0.1:{redirector.port}/hook"
    await add_endpoint(uow, site, url)
    await emit_lead_created(uow, pool, site)
    hop = sender(pool, allow_private=True, resolver=resolver_to({}))
    try:
        assert await pump_all(hop) == 1
    finally:
        await redirector.stop()
    _status, error, http_status = (await delivery_log(pool, site))[url]
    assert http_status == 307
    assert error is not None
    assert "not followed" in error, error
    assert redirector.requests == ["POST /hook"]
    assert canary.requests == []
    await remove_site(pool, site)


async def test_positive_control_the_dev_switch_reaches_the_canary(pool, canary):
    """The same endpoint and sender with private targets allowed (dev only): the request
    arrives, so the refusals above are the guard's doing."""
    site = unique("ssrf-site")
    uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
    url = f"http://{NAME}:{canary.port}/hook"
    await add_endpoint(uow, site, url)
    await emit_lead_created(uow, pool, site)
    allowed = sender(pool, allow_private=True, resolver=resolver_to({NAME: ["127.0.0.1"]}))
    assert await pump_all(allowed) == 1
    assert canary.requests == ["POST /hook"]
    status, error, http_status = (await delivery_log(pool, site))[url]
    assert (status, http_status) == ("delivered", 200), error
    await remove_site(pool, site)
