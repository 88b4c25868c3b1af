"""Records on the dead-letter twins: what was rejected, why, and the raw input, untouched.

Build them with `beckon_messaging.dead_letter` (one builder for every service).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from beckon_contracts.envelope import Envelope

ReasonCode = Literal[
    "malformed_json",
    "schema_invalid",
    "too_large",
    "processing_failed",
]


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loc: str = Field(description="Dotted path to the offending field, e.g. events.2.payload.price")
    msg: str
    type: str


class DeadLetterPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="Where it was rejected: an HTTP route or a topic name"
    )
    topic: Annotated[str, StringConstraints(max_length=249)] | None = Field(
        default=None, description="The topic the rejected record was read from (None: HTTP)"
    )
    partition: int | None = Field(default=None, ge=0)
    offset: int | None = Field(default=None, ge=0)
    reason: ReasonCode
    detail: Annotated[str, StringConstraints(max_length=2000)]
    errors: list[FieldError] = Field(default_factory=list, max_length=100)
    raw: str = Field(description="The rejected input as received (UTF-8, invalid bytes replaced)")


class DeadLettered(Envelope):
    type: Literal["dead_lettered"] = "dead_lettered"
    payload: DeadLetterPayload
