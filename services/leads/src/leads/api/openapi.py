"""What the OpenAPI document says about routes whose bodies `Valid[Model]` reads (FastAPI
cannot see them), and the shape of every error answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProblemItem(BaseModel):
    loc: str = Field(description="Where: a field (`reason`), or `query.status`")
    msg: str


class Problem(BaseModel):
    """Every refusal: a stable code, a sentence, and each problem at its place."""

    error: str = Field(description="A stable code, e.g. `not_logged_in`, `lead_not_found`")
    detail: str = Field(description="What is wrong, for people")
    errors: list[ProblemItem] | None = None


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the route's JSON body."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route documents (each a `Problem`)."""
    said = {
        400: "The body cannot be read",
        401: "No valid session or API key",
        403: "Not allowed for this caller",
        404: "No such thing on the caller's site",
        409: "The lead's state does not allow it",
        422: "A field is invalid (`errors` names it)",
        503: "A part this depends on is not answering",
    }
    return {status: {"model": Problem, "description": said[status]} for status in statuses}
