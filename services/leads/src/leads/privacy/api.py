"""`POST /v1/privacy/export`: what leads holds of visitors and addresses (site admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.privacy import service

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])

VisitorId = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x20\x7f]{1,128}$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_ids: list[VisitorId] = Field(default_factory=list, max_length=20)
    emails: list[Email] = Field(default_factory=list, max_length=20)


@router.post("/export")
async def export(rt: Rt, admin: CurrentAdmin, body: Valid[SubjectBody]) -> dict[str, Any]:
    return await service.export(
        uow=rt.uow, site_id=admin.site_id, visitor_ids=body.visitor_ids, emails=body.emails
    )
