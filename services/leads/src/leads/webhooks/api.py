"""Admin routes of the CRM webhooks (`/v1/leads/webhooks`): endpoints, secret rotation, a test
send, the delivery log and replay. Site admins only; every query is scoped to the caller's
site. A secret is in the answer that makes it (create, rotate) and never again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from beckon_contracts.leads import LEAD_EVENT_TYPES
from beckon_edge.refusals import Unavailable
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.api.openapi import errors
from leads.domain.webhooks import MAX_URL_LENGTH
from leads.webhooks import service
from leads.webhooks.sender import Sender
from leads.webhooks.store import Attempt, Delivery, DeliveryStatus, Endpoint

router = APIRouter(
    prefix="/v1/leads/webhooks", tags=["webhooks"], responses=errors(401, 403, 422, 503)
)


def _sender(request: Request) -> Sender:
    sender: Sender | None = getattr(request.app.state, "webhooks", None)
    if sender is None:
        raise Unavailable("starting", "the webhook sender is not ready yet")
    return sender


Hooks = Annotated[Sender, Depends(_sender)]


# the lead events, and each service's report that it erased a visitor's data (docs/privacy.md)
WEBHOOK_EVENT_TYPES = (*LEAD_EVENT_TYPES, "privacy.erased")


def _known_type(value: str) -> str:
    if value not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; one of {', '.join(WEBHOOK_EVENT_TYPES)}")
    return value


EventType = Annotated[str, AfterValidator(_known_type)]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
Description = Annotated[str, Field(max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewEndpoint(_Body):
    url: Url
    event_types: Annotated[
        list[EventType], Field(min_length=1, max_length=len(WEBHOOK_EVENT_TYPES))
    ]
    description: Description = ""


class EndpointChange(_Body):
    url: Url | None = None
    event_types: (
        Annotated[list[EventType], Field(min_length=1, max_length=len(WEBHOOK_EVENT_TYPES))] | None
    ) = None
    description: Description | None = None
    enabled: bool | None = None


class Rotation(_Body):
    overlap_hours: float = Field(
        default=24.0, ge=0, le=168, description="how long the current secret keeps signing too"
    )


def _endpoint(endpoint: Endpoint, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_id": str(endpoint.endpoint_id),
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": _iso(endpoint.failing_since),
        "previous_secret_until": _iso(endpoint.previous_until),
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
        **extra,
    }


def _delivery(delivery: Delivery, attempts: list[Attempt] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "delivery_id": delivery.delivery_id,
        "endpoint_id": str(delivery.endpoint_id),
        "message_id": delivery.message_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "delivered_at": _iso(delivery.delivered_at),
        "created_at": _iso(delivery.created_at),
    }
    if attempts is not None:
        found["attempt_log"] = [
            {
                "attempt": a.attempt,
                "started_at": _iso(a.started_at),
                "duration_ms": a.duration_ms,
                "status": a.status,
                "error": a.error,
            }
            for a in attempts
        ]
    return found


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@router.post("", status_code=201, summary="Add an endpoint (its secret is shown once)")
async def create(rt: Rt, hooks: Hooks, caller: CurrentAdmin, body: Valid[NewEndpoint]) -> Any:
    endpoint, secret = await service.create_endpoint(
        rt.uow,
        hooks,
        site_id=caller.site_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        now=hooks.clock(),
    )
    return _endpoint(endpoint, secret=secret)


@router.get("", summary="The site's endpoints")
async def list_all(rt: Rt, caller: CurrentAdmin) -> Any:
    endpoints = await service.list_endpoints(rt.uow, site_id=caller.site_id)
    return {
        "endpoints": [_endpoint(e) for e in endpoints],
        "event_types": list(WEBHOOK_EVENT_TYPES),
    }


@router.get("/{endpoint_id}", summary="One endpoint")
async def get_one(rt: Rt, caller: CurrentAdmin, endpoint_id: UUID) -> Any:
    endpoint = await service.get_endpoint(rt.uow, site_id=caller.site_id, endpoint_id=endpoint_id)
    return _endpoint(endpoint)


@router.patch("/{endpoint_id}", summary="Change an endpoint; enable or disable it")
async def update(
    rt: Rt, hooks: Hooks, caller: CurrentAdmin, endpoint_id: UUID, body: Valid[EndpointChange]
) -> Any:
    endpoint = await service.update_endpoint(
        rt.uow,
        hooks,
        site_id=caller.site_id,
        endpoint_id=endpoint_id,
        now=hooks.clock(),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return _endpoint(endpoint)


@router.delete("/{endpoint_id}", status_code=204, summary="Remove an endpoint and its log")
async def delete(rt: Rt, caller: CurrentAdmin, endpoint_id: UUID) -> Response:
    await service.delete_endpoint(rt.uow, site_id=caller.site_id, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate", summary="A new secret; the old one signs too for a while")
async def rotate(
    rt: Rt, hooks: Hooks, caller: CurrentAdmin, endpoint_id: UUID, body: Valid[Rotation]
) -> Any:
    endpoint, secret = await service.rotate_secret(
        rt.uow,
        site_id=caller.site_id,
        endpoint_id=endpoint_id,
        now=hooks.clock(),
        overlap=timedelta(hours=body.overlap_hours),
    )
    return _endpoint(endpoint, secret=secret)


@router.post("/{endpoint_id}/test", summary="Send a webhook.test message now")
async def test_send(rt: Rt, hooks: Hooks, caller: CurrentAdmin, endpoint_id: UUID) -> Any:
    sent = await service.send_test(
        rt.uow, hooks, site_id=caller.site_id, endpoint_id=endpoint_id, now=hooks.clock()
    )
    return {
        "delivered": sent.delivered,
        "delivery_id": sent.delivery_id,
        "message_id": sent.message_id,
        "status": sent.status,
        "error": sent.error,
        "duration_ms": sent.duration_ms,
    }


@router.get("/{endpoint_id}/deliveries", summary="The delivery log, newest first")
async def deliveries(
    rt: Rt,
    caller: CurrentAdmin,
    endpoint_id: UUID,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    before: Annotated[int | None, Query(ge=1, description="a delivery_id: older ones")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    log = await service.delivery_log(
        rt.uow,
        site_id=caller.site_id,
        endpoint_id=endpoint_id,
        status=status,
        before=before,
        limit=limit,
    )
    return {
        "deliveries": [_delivery(d, attempts) for d, attempts in log],
        "next_before": log[-1][0].delivery_id if len(log) == limit else None,
    }


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    summary="Send a delivery again (same webhook-id)",
)
async def replay(
    rt: Rt, hooks: Hooks, caller: CurrentAdmin, endpoint_id: UUID, delivery_id: int
) -> Any:
    delivery = await service.replay(
        rt.uow,
        hooks,
        site_id=caller.site_id,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        now=hooks.clock(),
    )
    return _delivery(delivery)
