"""A visitor's data erased on request: the command on `privacy.requests` and the facts on
`privacy.erased` (key: the site, so one site's requests stay in order).

Chat's admin API takes an erasure request (by visitor ids and/or e-mail addresses), resolves
the addresses to the visitor ids it knows and publishes `privacy.erasure_requested` through
its outbox. Every service that holds a visitor's data (chat, leads, the notifier, triggers)
consumes the command in a group of its own, deletes or anonymises what it holds, and
publishes one `privacy.erased` (request id, service, counts) that other consumers can act on
(leads forwards it to CRM webhooks).

The records never carry an e-mail address in clear: addresses travel as `subject_hash`es
(SHA-256 of the trimmed, lower-cased address), which each service compares with the hash of
what it holds. Visitor ids travel in the command (triggers must find their table keys) but
not in `privacy.erased`, which names its subjects by hash too.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.envelope import Envelope, Identifier

MAX_SUBJECTS = 100
Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ServiceName = Literal["chat", "leads", "notifier", "triggers"]


def subject_hash(value: str) -> str:
    """The hash a subject (an e-mail address or a visitor id) travels and is kept as:
    SHA-256 hex of the trimmed, lower-cased text. Postgres computes the same with
    `encode(sha256(convert_to(lower(btrim(x)), 'UTF8')), 'hex')`."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErasureRequest(_Payload):
    request_id: UUID
    visitor_ids: list[Identifier] = Field(default_factory=list, max_length=MAX_SUBJECTS)
    email_hashes: list[Hash] = Field(
        default_factory=list,
        max_length=MAX_SUBJECTS,
        description="subject_hash of each e-mail address (never the address itself)",
    )
    requested_by: Identifier = Field(description="The admin (agent id) who asked")


class ErasureRequested(Envelope):
    """Erase everything held of these visitors and addresses (imperative: a command)."""

    type: Literal["privacy.erasure_requested"] = "privacy.erasure_requested"
    payload: ErasureRequest


class Erased(_Payload):
    request_id: UUID
    service: ServiceName
    counts: dict[Annotated[str, StringConstraints(max_length=64)], int] = Field(
        default_factory=dict, description="What the service deleted or anonymised, by kind"
    )
    visitor_hashes: list[Hash] = Field(default_factory=list, max_length=MAX_SUBJECTS)
    email_hashes: list[Hash] = Field(default_factory=list, max_length=MAX_SUBJECTS)
    lead_ids: list[UUID] = Field(
        default_factory=list, description="The leads erased (leads only), for CRMs that hold them"
    )


class PrivacyErased(Envelope):
    """One service has erased what it held of the request's subjects."""

    type: Literal["privacy.erased"] = "privacy.erased"
    payload: Erased


PrivacyCommand = Annotated[ErasureRequested, Field(discriminator="type")]
privacy_command_adapter: TypeAdapter[PrivacyCommand] = TypeAdapter(PrivacyCommand)


def parse_privacy_command(data: bytes | str) -> PrivacyCommand:
    return privacy_command_adapter.validate_json(data)


def parse_privacy_erased(data: bytes | str) -> PrivacyErased:
    return PrivacyErased.model_validate_json(data)


def privacy_key(site_id: str) -> bytes:
    return site_id.encode()


class ForgetRequest(_Payload):
    request_id: UUID


class ForgetVisitor(Envelope):
    """Triggers' own re-keyed command on `triggers.feedback` (key `site_id:visitor_id`): the
    visitors stage deletes the visitor's table key (a changelog tombstone) and tombstones its
    `visitors.state`. Made from `privacy.erasure_requested`, one per visitor id."""

    type: Literal["privacy.forget_visitor"] = "privacy.forget_visitor"
    payload: ForgetRequest
