"""`POST /v1/inbound/mail`: raw RFC 5322 messages for the reply domain, the shape of the
inbound webhooks of common mail providers (and of the dev stack's SMTP sink's hand-off).

Authenticated with `Authorization: Bearer <NOTIFIER_INBOUND_SECRET>` (or HTTP Basic with it
as the password, which providers' webhook URLs carry). The body is the message itself
(`message/rfc822`, or any type: it is read raw), at most `MAX_MAIL_BYTES`; the envelope's
recipients may come as `?to=` (repeatable) when the provider sends them apart. Answers:
202 accepted, 200 for a duplicate, an automatic reply, a bounce or a complaint, 403 for a
forged or expired reply token (the provider bounces it), 422 for mail that cannot be read
or says nothing, 404 for a token of an unknown conversation.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from beckon_edge import BadContentLength, BodyTooLarge, read_limited
from beckon_edge.refusals import (
    Forbidden,
    Invalid,
    Malformed,
    NotAuthenticated,
    NotFound,
    TooLarge,
)
from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse

from notifier.api.deps import Rt
from notifier.inbound import service
from notifier.inbound.service import Refused

router = APIRouter(tags=["inbound mail"])
MAX_MAIL_BYTES = 25 * 1024 * 1024
FORBIDDEN_CODES = frozenset({"malformed", "forged", "expired", "no_token"})


def _authorized(request: Request, secret: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


@router.post("/v1/inbound/mail", status_code=202)
async def inbound_mail(
    request: Request, rt: Rt, to: Annotated[list[str] | None, Query(max_length=50)] = None
) -> Any:
    """A raw e-mail for the reply domain: a reply goes into its conversation."""
    if not _authorized(request, rt.settings.inbound_secret.get_secret_value()):
        raise NotAuthenticated(
            "inbound_unauthorized", "send the inbound secret as `Authorization: Bearer ...`"
        )
    try:
        raw = await read_limited(
            request.stream(), MAX_MAIL_BYTES, request.headers.get("content-length")
        )
    except BodyTooLarge:
        raise TooLarge("too_large", f"the message is larger than {MAX_MAIL_BYTES} bytes") from None
    except BadContentLength as exc:
        raise Malformed("bad_request", str(exc)) from None
    if not raw.strip():
        raise Malformed("empty_body", "the body must be the raw RFC 5322 message")
    try:
        received = await service.receive(
            rt.uow, raw, tokens=rt.tokens, recipients=list(to or []), now=datetime.now(UTC)
        )
    except Refused as refused:
        if refused.code in FORBIDDEN_CODES:
            raise Forbidden(f"token_{refused.code}", refused.detail) from None
        if refused.code == "unknown_conversation":
            raise NotFound(refused.code, refused.detail) from None
        raise Invalid(refused.code, refused.detail) from None
    body = {
        "outcome": received.outcome,
        "reason": received.reason,
        "conversation_id": str(received.conversation_id) if received.conversation_id else None,
    }
    return JSONResponse(body, status_code=202 if received.outcome == "accepted" else 200)
