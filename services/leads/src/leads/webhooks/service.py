"""CRM webhook use cases: endpoints (add, list, change, remove), secret rotation, a test send,
the delivery log and replay. Each runs in one unit of work on the caller's site; another
site's endpoint is "not found"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_edge.refusals import Conflict, Invalid, NotFound
from pydantic import BaseModel, ConfigDict

from leads.domain.webhooks import (
    ROTATION_OVERLAP,
    UnsafeTarget,
    WebhookSecret,
    message_id,
    rotate,
    signing_secrets,
)
from leads.uow import UnitsOfWork
from leads.webhooks.sender import Sender
from leads.webhooks.store import Attempt, Delivery, DeliveryStatus, Endpoint, WebhookStore

TEST_EVENT_TYPE: Literal["webhook.test"] = "webhook.test"
ADMIN_DISABLED = "disabled by an admin"


class TestMessage(BaseModel):
    """The body of a test send: shaped like a `leads.events` event, so a receiver's parser
    sees the envelope it will get (and can ignore the type)."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    type: Literal["webhook.test"] = TEST_EVENT_TYPE
    schema_version: int = 1
    occurred_at: datetime
    site_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TestSent:
    """What a test send came to."""

    delivered: bool
    delivery_id: int
    message_id: str
    status: int | None
    error: str | None
    duration_ms: int


async def _unsafe_url(sender: Sender, url: str) -> str:
    """The checked URL (normalised), or a 422 at `url` saying why it is refused."""
    try:
        target = await sender.target(url)
    except UnsafeTarget as exc:
        raise Invalid(
            "unsafe_url", f"url: {exc}", errors=[{"loc": "url", "msg": str(exc)}]
        ) from None
    return target.url.url


async def _endpoint(
    store: WebhookStore, site_id: str, endpoint_id: UUID, *, lock: bool = False
) -> Endpoint:
    found = await store.endpoint(site_id, endpoint_id, lock=lock)
    if found is None:
        raise NotFound("no_endpoint", f"no webhook endpoint {endpoint_id} on this site")
    return found


async def create_endpoint(
    uow: UnitsOfWork,
    sender: Sender,
    *,
    site_id: str,
    url: str,
    event_types: Sequence[str],
    description: str,
    now: datetime,
) -> tuple[Endpoint, str]:
    """Add an endpoint with a new `whsec_` secret; returns it and the secret (shown once)."""
    checked = await _unsafe_url(sender, url)
    secret = str(WebhookSecret.generate())
    async with uow(site_id) as tx:
        endpoint = await tx.store(WebhookStore).add_endpoint(
            site_id=site_id,
            endpoint_id=uuid7(),
            url=checked,
            description=description,
            event_types=sorted(set(event_types)),
            secret=secret,
            now=now,
        )
    return endpoint, secret


async def list_endpoints(uow: UnitsOfWork, *, site_id: str) -> list[Endpoint]:
    """The site's endpoints, oldest first."""
    async with uow.read(site_id) as tx:
        endpoints: list[Endpoint] = await tx.store(WebhookStore).endpoints(site_id)
    return endpoints


async def get_endpoint(uow: UnitsOfWork, *, site_id: str, endpoint_id: UUID) -> Endpoint:
    """One endpoint of the site."""
    async with uow.read(site_id) as tx:
        return await _endpoint(tx.store(WebhookStore), site_id, endpoint_id)


async def update_endpoint(
    uow: UnitsOfWork,
    sender: Sender,
    *,
    site_id: str,
    endpoint_id: UUID,
    now: datetime,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change what is given. Enabling clears the disabled reason and the failure streak (its
    held deliveries go out again); an admin's disabling holds the pending ones until then."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = await _unsafe_url(sender, url)
    if event_types is not None:
        changes["event_types"] = sorted(set(event_types))
    if description is not None:
        changes["description"] = description
    async with uow(site_id) as tx:
        store: WebhookStore = tx.store(WebhookStore)
        current = await _endpoint(store, site_id, endpoint_id, lock=True)
        if enabled is True and not current.enabled:
            changes |= {"enabled": True, "disabled_reason": None, "failing_since": None}
        elif enabled is False and current.enabled:
            changes |= {"enabled": False, "disabled_reason": ADMIN_DISABLED}
        updated = await store.update_endpoint(site_id, endpoint_id, now=now, **changes)
    assert updated is not None
    return updated


async def delete_endpoint(uow: UnitsOfWork, *, site_id: str, endpoint_id: UUID) -> None:
    """Remove an endpoint with its deliveries and their log."""
    async with uow(site_id) as tx:
        if not await tx.store(WebhookStore).delete_endpoint(site_id, endpoint_id):
            raise NotFound("no_endpoint", f"no webhook endpoint {endpoint_id} on this site")


async def rotate_secret(
    uow: UnitsOfWork,
    *,
    site_id: str,
    endpoint_id: UUID,
    now: datetime,
    overlap: timedelta = ROTATION_OVERLAP,
) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the current one signs too until `now + overlap` (0:
    retire it at once, e.g. leaked). Returns the endpoint and the new secret (shown once)."""
    new = WebhookSecret.generate()
    async with uow(site_id) as tx:
        store: WebhookStore = tx.store(WebhookStore)
        current = await _endpoint(store, site_id, endpoint_id, lock=True)
        after = rotate(current.secrets(), new=new, now=now, overlap=overlap)
        previous = after[1] if len(after) > 1 else None
        updated = await store.update_endpoint(
            site_id,
            endpoint_id,
            now=now,
            secret=str(new),
            previous_secret=str(previous.secret) if previous else None,
            previous_until=previous.expires_at if previous else None,
        )
    assert updated is not None
    return updated, str(new)


async def send_test(
    uow: UnitsOfWork, sender: Sender, *, site_id: str, endpoint_id: UUID, now: datetime
) -> TestSent:
    """Send a `webhook.test` message to the endpoint now (enabled or not), log it as a
    delivery with one attempt and return what the receiver answered. No retries; the
    endpoint's health is not touched."""
    async with uow.read(site_id) as tx:
        endpoint = await _endpoint(tx.store(WebhookStore), site_id, endpoint_id)
    event_id = uuid7()
    body = (
        TestMessage(
            event_id=event_id,
            occurred_at=now,
            site_id=site_id,
            payload={
                "endpoint_id": str(endpoint_id),
                "message": "A test message from Beckon leads",
            },
        )
        .model_dump_json()
        .encode()
    )
    msg_id = message_id(event_id)
    sent = await sender.send(
        url=endpoint.url,
        msg_id=msg_id,
        body=body,
        secrets=signing_secrets(endpoint.secrets(), now=now),
        sent_at=now,
    )
    delivered = sent.status is not None and 200 <= sent.status <= 299
    status: DeliveryStatus = "delivered" if delivered else "failed"
    async with uow(site_id) as tx:
        delivery_id = await tx.store(WebhookStore).log_sent(
            site_id=site_id,
            endpoint_id=endpoint_id,
            msg_id=msg_id,
            event_type=TEST_EVENT_TYPE,
            body=body,
            status=status,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
            http_status=sent.status,
            error=sent.error,
        )
    return TestSent(delivered, delivery_id, msg_id, sent.status, sent.error, sent.duration_ms)


async def delivery_log(
    uow: UnitsOfWork,
    *,
    site_id: str,
    endpoint_id: UUID,
    status: DeliveryStatus | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[tuple[Delivery, list[Attempt]]]:
    """An endpoint's deliveries, newest first, each with its attempts."""
    async with uow.read(site_id) as tx:
        store: WebhookStore = tx.store(WebhookStore)
        await _endpoint(store, site_id, endpoint_id)
        deliveries = await store.deliveries(
            site_id, endpoint_id, status=status, before=before, limit=limit
        )
        attempts = await store.attempts([d.delivery_id for d in deliveries])
    return [(d, attempts[d.delivery_id]) for d in deliveries]


async def replay(
    uow: UnitsOfWork,
    sender: Sender | None,
    *,
    site_id: str,
    endpoint_id: UUID,
    delivery_id: int,
    now: datetime,
) -> Delivery:
    """Send a delivery again (same webhook-id and body): due now, with a new round of
    retries if it fails again. Refused while the endpoint is disabled."""
    async with uow(site_id) as tx:
        store: WebhookStore = tx.store(WebhookStore)
        endpoint = await _endpoint(store, site_id, endpoint_id, lock=True)
        found = await store.delivery(site_id, delivery_id)
        if found is None or found.endpoint_id != endpoint_id:
            raise NotFound("no_delivery", f"no delivery {delivery_id} of this endpoint")
        if not endpoint.enabled:
            raise Conflict(
                "endpoint_disabled",
                f"the endpoint is disabled ({endpoint.disabled_reason}); enable it first",
            )
        if found.event_type == TEST_EVENT_TYPE:
            raise Conflict("test_message", "a test message is not replayed; send a new test")
        requeued = await store.requeue(site_id, delivery_id, now=now)
    assert requeued is not None
    if sender is not None:
        sender.kick()
    return requeued
