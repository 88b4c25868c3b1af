"""`POST /v1/privacy/export`: what leads holds of visitors and addresses (site admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.api.openapi import body_of, errors
from leads.privacy import service

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

VisitorId = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x20\x7f]{1,128}$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_ids: list[VisitorId] = Field(default_factory=list, max_length=20)
    emails: list[Email] = Field(default_factory=list, max_length=20)


class ExportView(BaseModel):
    """What leads holds of the subject (see docs/privacy.md)."""

    model_config = ConfigDict(extra="allow")


@router.post(
    "/export",
    response_model=ExportView,
    summary="Export what leads holds of visitors or e-mail addresses",
    responses=errors(401, 403, 422, 503),
    openapi_extra=body_of(SubjectBody),
)
async def export(rt: Rt, admin: CurrentAdmin, body: Valid[SubjectBody]) -> dict[str, Any]:
    """Leads, touches and webhook deliveries of the site's subject (site admins)."""
    return await service.export(
        uow=rt.uow, site_id=admin.site_id, visitor_ids=body.visitor_ids, emails=body.emails
    )
