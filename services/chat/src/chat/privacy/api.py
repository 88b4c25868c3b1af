"""`/v1/privacy`: a visitor's data erased or exported on request, and the sites' retention.

Admins only (the console's session, same-origin); erasure and export requests are
rate-limited per admin (`PRIVACY_RATE`), since each one walks the visitor's whole history.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from beckon_edge import RateLimiter
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chat.api.deps import COOKIE, CurrentAdmin, Rt, Valid
from chat.errors import TooMany, Unavailable
from chat.privacy import service
from chat.privacy.parts import ExportParts
from chat.refs import AgentRef
from chat.runtime import Runtime

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

# requests per admin: 10 at once, then one every 6 minutes
PRIVACY_BURST = 10
PRIVACY_RATE = 1 / 360


class PrivacyLimiter(RateLimiter):
    """The feature's limiter of erasure and export requests (one per process)."""

    def __init__(self) -> None:
        super().__init__(PRIVACY_RATE, PRIVACY_BURST)


VisitorId = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x20\x7f]{1,128}$")]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"),
]
Days = Annotated[int, Field(ge=1, le=3650)]


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_ids: list[VisitorId] = Field(default_factory=list, max_length=20)
    emails: list[Email] = Field(default_factory=list, max_length=20)


class RetentionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_days: Days | None = None
    transcript_days: Days | None = None


def _limit(rt: Runtime, admin: AgentRef) -> None:
    limiter = rt.running(PrivacyLimiter)
    if limiter is None:
        raise Unavailable("starting", "the privacy feature is starting; try again")
    wait = limiter.acquire((admin.site_id, admin.agent_id))
    if wait:
        raise TooMany(
            "rate_limited", f"too many privacy requests; retry in {wait:.0f} s", retry_after=wait
        )


@router.post("/erasure", status_code=202)
async def erasure(rt: Rt, admin: CurrentAdmin, body: Valid[SubjectBody]) -> dict[str, Any]:
    """Erase what every service holds of these visitors and addresses (asynchronously: each
    service reports `privacy.erased`; `GET /v1/privacy/requests` shows chat's part)."""
    _limit(rt, admin)
    return await service.request_erasure(
        uow=rt.uow, admin=admin, visitor_ids=body.visitor_ids, emails=body.emails
    )


@router.post("/export")
async def export(
    rt: Rt, admin: CurrentAdmin, request: Request, body: Valid[SubjectBody]
) -> dict[str, Any]:
    """What chat, leads and the notifier hold of these visitors and addresses, as one JSON
    document (a section per service; one that did not answer is listed in `missing`)."""
    _limit(rt, admin)
    parts = rt.running(ExportParts)
    if parts is None:
        raise Unavailable("starting", "the privacy feature is starting; try again")
    cookie = request.cookies.get(COOKIE, "")
    return await service.export(
        uow=rt.uow,
        parts=partial(parts.collect, cookie),
        site_id=admin.site_id,
        visitor_ids=body.visitor_ids,
        emails=body.emails,
    )


@router.get("/requests")
async def requests(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    return {"requests": await service.requests(uow=rt.uow, site_id=admin.site_id)}


@router.get("/retention")
async def retention(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    return await service.retention(uow=rt.uow, site_id=admin.site_id)


@router.put("/retention")
async def set_retention(rt: Rt, admin: CurrentAdmin, body: Valid[RetentionBody]) -> dict[str, Any]:
    return await service.set_retention(
        uow=rt.uow,
        site_id=admin.site_id,
        activity_days=body.activity_days,
        transcript_days=body.transcript_days,
    )
