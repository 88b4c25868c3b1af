"""One builder for the records on the dead-letter twins (`beckon_contracts.dead_letter`).

Every service rejects input the same way: where it came from (an HTTP route, or a topic,
partition and offset), a reason code, the offending fields, the raw input untouched, and
when. Building the record here keeps those fields the same whoever writes them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from beckon_contracts.dead_letter import DeadLettered, DeadLetterPayload, FieldError, ReasonCode
from beckon_contracts.envelope import is_identifier, is_site_id
from beckon_contracts.ids import uuid7
from pydantic import ValidationError

UNKNOWN_SITE = "unknown"
MAX_DETAIL = 2000
MAX_ERRORS = 100
MAX_ERROR_MSG = 500
MAX_SOURCE = 200

ErrorLike = FieldError | Mapping[str, Any]


def field_errors(errors: Iterable[ErrorLike]) -> list[FieldError]:
    """Pydantic's error details (`loc` a tuple) or `FieldError`s, as the contract's (≤ 100)."""
    converted: list[FieldError] = []
    for error in errors:
        if len(converted) == MAX_ERRORS:
            break
        if isinstance(error, FieldError):
            converted.append(error)
            continue
        loc = error.get("loc", ())
        converted.append(
            FieldError(
                loc=loc if isinstance(loc, str) else ".".join(str(part) for part in loc),
                msg=str(error.get("msg", ""))[:MAX_ERROR_MSG],
                type=str(error.get("type", "value_error")),
            )
        )
    return converted


def classify(error: BaseException) -> tuple[ReasonCode, list[FieldError]]:
    """The reason code and field errors an exception stands for: undecodable JSON is
    `malformed_json`, a contract's refusal `schema_invalid`, anything else `processing_failed`."""
    if isinstance(error, json.JSONDecodeError):  # orjson's JSONDecodeError is one too
        return "malformed_json", []
    if isinstance(error, ValidationError):
        details = error.errors(include_url=False, include_input=False)
        if details and details[0]["type"] == "json_invalid":
            return "malformed_json", []
        return "schema_invalid", field_errors(details)
    return "processing_failed", []


def dead_letter(
    raw: bytes | str,
    *,
    reason: ReasonCode,
    detail: str,
    source: str,
    errors: Iterable[ErrorLike] = (),
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    site_id: str | None = None,
    visitor_id: str | None = None,
    at: datetime | None = None,
) -> DeadLettered:
    """The `dead_lettered` record for one rejected input.

    `source` says who rejected it where (an HTTP route, or `consumer:topic`); `topic`,
    `partition` and `offset` locate a consumed record. Without `site_id`, the site and visitor
    are taken from the raw record when it names valid ones (else the site is "unknown").
    `at` is when it was received (default: now).
    """
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if site_id is None:
        site_id, visitor_id = _named_in(raw)
    when = at or datetime.now(UTC)
    return DeadLettered(
        event_id=uuid7(),
        occurred_at=when,
        received_at=when,
        site_id=site_id if is_site_id(site_id) else UNKNOWN_SITE,
        visitor_id=visitor_id if is_identifier(visitor_id) else None,
        payload=DeadLetterPayload(
            source=source[:MAX_SOURCE],
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
            detail=detail[:MAX_DETAIL],
            errors=field_errors(errors),
            raw=text,
        ),
    )


def dead_letter_for(error: BaseException, raw: bytes | str, **where: Any) -> DeadLettered:
    """`dead_letter` with the reason, detail and field errors read from the exception."""
    reason, errors = classify(error)
    detail = str(error) if reason != "processing_failed" else f"{type(error).__name__}: {error}"
    return dead_letter(raw, reason=reason, detail=detail, errors=errors, **where)


def encode_dead_letter(letter: DeadLettered) -> bytes:
    """The record's value on the wire."""
    return letter.model_dump_json(exclude_none=True).encode()


def _named_in(raw: bytes | str) -> tuple[str | None, str | None]:
    with contextlib.suppress(Exception):  # undecodable: the letter says so, the site is unknown
        data = json.loads(raw)
        if isinstance(data, dict):
            site, visitor = data.get("site_id"), data.get("visitor_id")
            return (
                site if is_site_id(site) else None,
                visitor if is_identifier(visitor) else None,
            )
    return None, None
