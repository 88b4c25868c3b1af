"""A visitor's erasure and export, pure: who the request names, the records it makes, and the
export's one document (chat's part, leads' and the notifier's, or why one is missing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import orjson
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


# ---- export ----------------------------------------------------------------------------------

PART_SUBJECTS = 20  # visitor ids (and addresses) one of their export requests takes

MissingReason = Literal["not_configured", "unavailable", "refused", "invalid"]


@dataclass(frozen=True, slots=True)
class MissingPart:
    """A service whose part is not in the export, and why."""

    service: str
    reason: MissingReason
    detail: str


def part_requests(visitor_ids: Sequence[str], emails: Sequence[str]) -> list[dict[str, Any]]:
    """The bodies that ask another service for its part: every visitor id chat resolved (at
    most `PART_SUBJECTS` per body) with every address, so nothing is asked for by halves."""
    ids = list(visitor_ids)
    chunks = [ids[i : i + PART_SUBJECTS] for i in range(0, len(ids), PART_SUBJECTS)] or [[]]
    return [{"visitor_ids": chunk, "emails": list(emails)} for chunk in chunks]


def merge_answers(answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One service's answers to several bodies as one part: lists joined without repeats (an
    address names the same rows in each), other fields as first answered."""
    merged: dict[str, Any] = {}
    seen: dict[str, set[bytes]] = {}
    for answer in answers:
        for key, value in answer.items():
            if not isinstance(value, list):
                merged.setdefault(key, value)
                continue
            held = merged.setdefault(key, [])
            known = seen.setdefault(key, set())
            for item in value:
                marker = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                if marker not in known:
                    known.add(marker)
                    held.append(item)
    return merged


def export_document(
    *,
    site_id: str,
    visitor_ids: Sequence[str],
    emails: Sequence[str],
    chat: Mapping[str, Any],
    parts: Mapping[str, Mapping[str, Any] | MissingPart],
    now: datetime | None = None,
) -> dict[str, Any]:
    """The export as one document: a section per service; a service that did not give its
    part has a section that says so (and is listed in `missing`), never none."""
    document: dict[str, Any] = {
        "site_id": site_id,
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "subjects": {"visitor_ids": list(visitor_ids), "emails": list(emails)},
        "complete": True,
        "missing": [],
        "chat": dict(chat),
    }
    for service, part in parts.items():
        if isinstance(part, MissingPart):
            document["complete"] = False
            document["missing"].append(service)
            document[service] = {"missing": True, "reason": part.reason, "detail": part.detail}
        else:
            document[service] = dict(part)
    return document
