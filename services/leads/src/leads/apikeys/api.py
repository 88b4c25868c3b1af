"""Admin routes of the site's API keys: create (the key is in this one answer only), list,
revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.api.openapi import body_of, errors
from leads.apikeys import service

router = APIRouter(prefix="/v1/admin/api-keys", tags=["admin"])


class ApiKeyView(BaseModel):
    key_id: UUID
    name: str
    hint: str = Field(description="The key's first characters, to tell keys apart")
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None = Field(description="To the minute")
    revoked_at: datetime | None


class NewApiKey(BaseModel):
    key: str = Field(description="The key itself: shown only in this answer; store it now")
    api_key: ApiKeyView


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyView]


class NewKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=service.MAX_NAME_CHARS)] = (
        Field(description="What the key is for, e.g. 'HubSpot sync'")
    )


@router.get("", response_model=ApiKeyList, summary="List API keys", responses=errors(401, 403, 503))
async def list_keys(rt: Rt, admin: CurrentAdmin) -> ApiKeyList:
    """The site's API keys, live ones first (never the keys themselves)."""
    found = await service.list_keys(uow=rt.uow, caller=admin)
    return ApiKeyList.model_validate({"api_keys": found})


@router.post(
    "",
    status_code=201,
    response_model=NewApiKey,
    summary="Create an API key",
    responses=errors(400, 401, 403, 422, 503),
    openapi_extra=body_of(NewKeyBody),
)
async def create_key(rt: Rt, admin: CurrentAdmin, body: Valid[NewKeyBody]) -> NewApiKey:
    """A new key for the REST API (`Authorization: Bearer bk_...`); shown once."""
    made = await service.create(uow=rt.uow, caller=admin, name=body.name, now=datetime.now(UTC))
    return NewApiKey.model_validate({"key": made.secret, "api_key": made.key})


@router.delete(
    "/{key_id}",
    response_model=ApiKeyView,
    summary="Revoke an API key",
    responses=errors(401, 403, 404, 422, 503),
)
async def revoke_key(rt: Rt, admin: CurrentAdmin, key_id: UUID) -> ApiKeyView:
    """The key stops working at once."""
    revoked = await service.revoke(uow=rt.uow, caller=admin, key_id=key_id, now=datetime.now(UTC))
    return ApiKeyView.model_validate(revoked)
