"""The webhook admin routes on the real Postgres, in process (httpx ASGI transport), with a
real receiver for test sends and replays: a secret shown once, 422s that name the field, the
SSRF guard on the URL, rotation signing with both secrets, the delivery log, replay; another
site's ids are not found and an agent's session is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from beckon_contracts.leads import LEAD_EVENT_TYPES
from leads.api.deps import Caller, current_agent
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime
from leads.uow import UnitOfWorkFactory
from leads.webhooks.sender import Sender
from leads_testing import unique
from leads_webhook_receiver import Receiver, TestClock

pytestmark = pytest.mark.integration
CRM_NAME = "crm.example.com"


async def resolver(host: str, port: int) -> list[str]:
    """A name that resolves to this machine (the receiver listens there)."""
    return ["127.0.0.1"] if host == CRM_NAME else ["203.0.113.9"]


class Admin:
    """The app with its runtime on the test database; `as_(site, role)` picks the caller."""

    def __init__(self, pool, clock: TestClock, *, allow_private: bool) -> None:
        settings = Settings(
            environment="test",
            webhook_allow_http=True,
            webhook_allow_private_targets=allow_private,
        )
        self.app = create_app(settings)
        self.app.state.leads = Runtime(
            settings=settings,
            pool=pool,
            uow=UnitOfWorkFactory(pool, on_commit=lambda: None),
            bus=None,  # type: ignore[arg-type]
            relay=None,  # type: ignore[arg-type]
            ready=True,
        )
        self.sender = Sender(
            pool,
            instance=unique("api"),
            timeout_s=5.0,
            allow_http=True,
            allow_private=allow_private,
            clock=clock,
            rand=lambda: 0.5,
            resolver=resolver,
        )
        self.app.state.webhooks = self.sender
        self.caller = Caller(site_id="nobody", agent_id="a-1", role="admin")
        self.app.dependency_overrides[current_agent] = lambda: self.caller
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://leads"
        )

    def as_(self, site: str, role: str = "admin") -> Admin:
        self.caller = Caller(site_id=site, agent_id="a-1", role=role)  # type: ignore[arg-type]
        return self

    async def close(self) -> None:
        await self.http.aclose()
        await self.sender.close()


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def receiver(clock: TestClock) -> AsyncIterator[Receiver]:
    found = Receiver(clock, secrets=[])
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


@pytest.fixture
async def sites(leads_pool) -> AsyncIterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(unique("site"))
        return made[-1]

    try:
        yield make
    finally:
        await leads_pool.execute(
            "DELETE FROM leads.webhook_endpoints WHERE site_id = ANY($1::text[])", made
        )


@pytest.fixture
async def admin(leads_pool, clock) -> AsyncIterator[Admin]:
    found = Admin(leads_pool, clock, allow_private=True)
    try:
        yield found
    finally:
        await found.close()


@pytest.fixture
async def guarded(leads_pool, clock) -> AsyncIterator[Admin]:
    found = Admin(leads_pool, clock, allow_private=False)
    try:
        yield found
    finally:
        await found.close()


def crm_url(receiver: Receiver) -> str:
    return f"http://{CRM_NAME}:{receiver.port}/hooks/beckon"


async def create(admin: Admin, site: str, url: str, **extra) -> dict:
    answer = await admin.as_(site).http.post(
        "/v1/leads/webhooks", json={"url": url, "event_types": ["lead.created"], **extra}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_an_endpoint_is_made_with_a_secret_shown_once(admin, sites, receiver):
    site = sites()
    made = await create(admin, site, crm_url(receiver), description="our CRM")
    assert made["secret"].startswith("whsec_")
    assert made["event_types"] == ["lead.created"]
    assert made["enabled"] is True
    listed = (await admin.http.get("/v1/leads/webhooks")).json()
    assert [e["endpoint_id"] for e in listed["endpoints"]] == [made["endpoint_id"]]
    assert list(listed["event_types"]) == [*LEAD_EVENT_TYPES, "privacy.erased"]
    one = (await admin.http.get(f"/v1/leads/webhooks/{made['endpoint_id']}")).json()
    assert "secret" not in one
    assert "secret" not in listed["endpoints"][0]
    assert made["secret"] not in (await admin.http.get("/v1/leads/webhooks")).text

    changed = await admin.http.patch(
        f"/v1/leads/webhooks/{made['endpoint_id']}",
        json={"event_types": ["lead.won", "lead.lost"], "enabled": False},
    )
    assert changed.status_code == 200
    assert changed.json()["event_types"] == ["lead.lost", "lead.won"]
    assert changed.json()["disabled_reason"] == "disabled by an admin"
    enabled = await admin.http.patch(
        f"/v1/leads/webhooks/{made['endpoint_id']}", json={"enabled": True}
    )
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)

    gone = await admin.http.delete(f"/v1/leads/webhooks/{made['endpoint_id']}")
    assert gone.status_code == 204
    assert (await admin.http.get(f"/v1/leads/webhooks/{made['endpoint_id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": ["lead.created"]}, "url"),
        ({"url": "https://crm.example.org/hook", "event_types": []}, "event_types"),
        (
            {"url": "https://crm.example.org/hook", "event_types": ["lead.created", "lead.eaten"]},
            "event_types.1",
        ),
        ({"url": "https://crm.example.org/hook", "event_types": ["lead.won"], "x": 1}, "x"),
        ({"url": "ftp://crm.example.org/hook", "event_types": ["lead.won"]}, "url"),
        ({"url": "https://user:pw@crm.example.org/", "event_types": ["lead.won"]}, "url"),
        ({"url": "https://10.0.0.8/hook", "event_types": ["lead.won"]}, "url"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(guarded, sites, body, field):
    answer = await guarded.as_(sites()).http.post("/v1/leads/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["detail"].startswith(f"{field}:")
    assert problem["errors"][0]["loc"] == field


async def test_a_url_resolving_to_loopback_is_refused_unless_the_dev_setting_allows_it(
    guarded, admin, sites, receiver
):
    site = sites()
    refused = await guarded.as_(site).http.post(
        "/v1/leads/webhooks", json={"url": crm_url(receiver), "event_types": ["lead.created"]}
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "unsafe_url"
    assert refused.json()["errors"] == [
        {
            "loc": "url",
            "msg": f"{CRM_NAME} (127.0.0.1) is a loopback address; webhooks go to "
            "public addresses only",
        }
    ]
    await create(admin, site, crm_url(receiver))  # LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS


async def test_a_test_send_is_signed_delivered_and_logged(admin, sites, receiver):
    site = sites()
    made = await create(admin, site, crm_url(receiver))
    receiver.secrets = [made["secret"]]
    sent = await admin.http.post(f"/v1/leads/webhooks/{made['endpoint_id']}/test")
    assert sent.status_code == 200
    assert sent.json() | {"duration_ms": 0} == {
        "delivered": True,
        "delivery_id": sent.json()["delivery_id"],
        "message_id": sent.json()["message_id"],
        "status": 200,
        "error": None,
        "duration_ms": 0,
    }
    (request,) = receiver.requests
    assert request.verified
    assert request.webhook_id == sent.json()["message_id"]
    assert b'"type":"webhook.test"' in request.body

    receiver.answer(500)
    failed = (await admin.http.post(f"/v1/leads/webhooks/{made['endpoint_id']}/test")).json()
    assert (failed["delivered"], failed["status"], failed["error"]) == (False, 500, "thanks")

    log = (await admin.http.get(f"/v1/leads/webhooks/{made['endpoint_id']}/deliveries")).json()
    assert [(d["event_type"], d["status"]) for d in log["deliveries"]] == [
        ("webhook.test", "failed"),
        ("webhook.test", "delivered"),
    ]
    assert [a["status"] for a in log["deliveries"][0]["attempt_log"]] == [500]


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    admin, sites, receiver, clock
):
    site = sites()
    made = await create(admin, site, crm_url(receiver))
    rotated = await admin.http.post(f"/v1/leads/webhooks/{made['endpoint_id']}/rotate", json={})
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != made["secret"]
    until = datetime.fromisoformat(rotated.json()["previous_secret_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24, minutes=1)

    for secret in (made["secret"], new_secret):  # a receiver with either one accepts it
        receiver.secrets = [secret]
        assert (await admin.http.post(f"/v1/leads/webhooks/{made['endpoint_id']}/test")).json()[
            "delivered"
        ]
    assert len(receiver.requests[-1].signature.split(" ")) == 2

    clock.advance(timedelta(hours=24, minutes=1))  # the old one stops signing
    receiver.secrets = [made["secret"]]
    late = (await admin.http.post(f"/v1/leads/webhooks/{made['endpoint_id']}/test")).json()
    assert (late["delivered"], late["status"]) == (False, 401)
    assert len(receiver.requests[-1].signature.split(" ")) == 1


async def test_a_delivery_is_replayed_with_its_webhook_id(admin, sites, receiver, leads_pool):
    site = sites()
    made = await create(admin, site, crm_url(receiver))
    receiver.secrets = [made["secret"]]
    endpoint_id = uuid.UUID(made["endpoint_id"])
    await leads_pool.execute(
        """INSERT INTO leads.webhook_deliveries
                  (endpoint_id, site_id, message_id, event_type, body, status, attempts,
                   round_attempts, last_status)
           VALUES ($1, $2, 'msg_0123', 'lead.created', '{"type":"lead.created"}', 'failed', 8,
                   8, 500)""",
        endpoint_id,
        site,
    )
    log = (await admin.http.get(f"/v1/leads/webhooks/{endpoint_id}/deliveries")).json()
    (delivery,) = log["deliveries"]
    replayed = await admin.http.post(
        f"/v1/leads/webhooks/{endpoint_id}/deliveries/{delivery['delivery_id']}/replay"
    )
    assert replayed.status_code == 202
    assert replayed.json()["status"] == "pending"
    assert await admin.sender.pump() == 1
    (request,) = receiver.requests
    assert (request.webhook_id, request.verified) == ("msg_0123", True)
    after = (await admin.http.get(f"/v1/leads/webhooks/{endpoint_id}/deliveries")).json()
    assert after["deliveries"][0]["status"] == "delivered"
    assert after["deliveries"][0]["attempts"] == 9


async def test_another_sites_ids_are_not_found_and_agents_are_refused(admin, sites, receiver):
    mine, theirs = sites(), sites()
    made = await create(admin, theirs, crm_url(receiver))
    endpoint = f"/v1/leads/webhooks/{made['endpoint_id']}"
    calls = [
        ("GET", endpoint, None),
        ("PATCH", endpoint, {"description": "mine now"}),
        ("DELETE", endpoint, None),
        ("POST", f"{endpoint}/rotate", {}),
        ("POST", f"{endpoint}/test", None),
        ("GET", f"{endpoint}/deliveries", None),
        ("POST", f"{endpoint}/deliveries/1/replay", None),
    ]
    for method, path, body in calls:
        answer = await admin.as_(mine).http.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    for method, path, body in [*calls, ("GET", "/v1/leads/webhooks", None)]:
        answer = await admin.as_(theirs, "agent").http.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    assert receiver.requests == []
    assert (await admin.as_(theirs).http.get(endpoint)).json()["description"] == ""
