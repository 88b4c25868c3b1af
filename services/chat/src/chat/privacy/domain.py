"""A visitor's erasure and export, pure: who the request names, the records it makes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import (
    Erased,
    ErasureRequest,
    ErasureRequested,
    PrivacyErased,
    privacy_key,
    subject_hash,
)
from beckon_contracts.topics import PRIVACY_ERASED, PRIVACY_REQUESTS
from beckon_messaging.outbox import OutboxRecord

from chat.errors import Invalid

MAX_SUBJECTS = 20  # visitor ids and addresses in one request


def subjects(visitor_ids: Iterable[str], emails: Iterable[str]) -> tuple[list[str], list[str]]:
    """The request's visitor ids and addresses (trimmed, lower-cased, without repeats), or
    Invalid when it names nobody or too many."""
    ids = sorted({value.strip() for value in visitor_ids if value.strip()})
    addresses = sorted({value.strip().lower() for value in emails if value.strip()})
    if not ids and not addresses:
        raise Invalid("no_subject", "name at least one visitor id or e-mail address")
    if len(ids) + len(addresses) > MAX_SUBJECTS:
        raise Invalid("too_many_subjects", f"at most {MAX_SUBJECTS} visitor ids and addresses")
    return ids, addresses


def erasure_command(
    *,
    site_id: str,
    request_id: UUID,
    visitor_ids: Sequence[str],
    emails: Sequence[str],
    requested_by: str,
    now: datetime | None = None,
) -> OutboxRecord:
    """The `privacy.erasure_requested` command: addresses as hashes only."""
    command = ErasureRequested(
        event_id=uuid7(),
        occurred_at=now or datetime.now(UTC),
        site_id=site_id,
        payload=ErasureRequest(
            request_id=request_id,
            visitor_ids=list(visitor_ids),
            email_hashes=[subject_hash(email) for email in emails],
            requested_by=requested_by,
        ),
    )
    return OutboxRecord(
        PRIVACY_REQUESTS.name, privacy_key(site_id), command.model_dump_json().encode()
    )


def erased_record(
    command: ErasureRequested,
    *,
    visitor_ids: Sequence[str],
    counts: dict[str, int],
    now: datetime | None = None,
) -> OutboxRecord:
    """Chat's `privacy.erased` for the command: counts, and its subjects as hashes."""
    fact = PrivacyErased(
        event_id=uuid7(),
        occurred_at=now or datetime.now(UTC),
        site_id=command.site_id,
        payload=Erased(
            request_id=command.payload.request_id,
            service="chat",
            counts=counts,
            visitor_hashes=[subject_hash(visitor) for visitor in visitor_ids],
            email_hashes=list(command.payload.email_hashes),
        ),
    )
    return OutboxRecord(
        PRIVACY_ERASED.name, privacy_key(command.site_id), fact.model_dump_json().encode()
    )
