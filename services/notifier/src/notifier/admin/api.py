"""The console's e-mail views (a site's admins; the offline inbox for every agent), and the
visitors' one-click unsubscribe.

- `GET/PUT /v1/admin/email/settings`: from name and address, reply domain, team inboxes,
  when unseen answers go out, transcripts on or off.
- `GET /v1/admin/email/log` (filters: status, recipient, before) and
  `GET /v1/admin/email/log/{id}` (with each try), `POST /v1/admin/email/log/{id}/resend`.
- `GET /v1/admin/email/templates`: the templates' names and the languages they come in;
  `GET /v1/admin/email/templates/{name}/preview?language=fi`: a template with sample data.
- `DELETE /v1/admin/email/suppressions/{address}`: mail the address again.
- `GET /v1/email/offline`: the site's offline messages, newest first, answered or not.
- `GET|POST /v1/unsubscribe?t=...` (RFC 8058 one-click; no login).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_edge.answers import read_body
from beckon_edge.refusals import Invalid, NotFound
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from starlette.responses import HTMLResponse

from notifier.api.deps import CurrentAdmin, CurrentAgent, Rt
from notifier.domain.contexts import LANGUAGES, TEMPLATE_NAMES
from notifier.emails import service as emails
from notifier.emails.service import Intent, Limits
from notifier.emails.store import EmailStore, address_hash
from notifier.sites import SiteEmail, SiteStore
from notifier.unsubscribe import BadUnsubscribeLink

router = APIRouter(tags=["e-mail"])
Address = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Domain = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"),
]
Team = Annotated[str, StringConstraints(pattern=r"^(\*|[^\x00-\x20\x7f]{1,128})$")]
STATUSES = ("scheduled", "pending", "sending", "sent", "failed", "suppressed", "cancelled")


class EmailSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_name: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = None
    from_address: Address | None = None
    reply_domain: Domain | None = None
    team_inboxes: dict[Team, list[Address]] = Field(default_factory=dict, max_length=100)
    unread_after_s: int | None = Field(default=None, ge=0, le=86_400)
    transcripts: bool = True

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\x00"):
            raise ValueError("the from name is one line of text")
        return value

    @field_validator("team_inboxes")
    @classmethod
    def _few(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if any(len(addresses) > 20 for addresses in value.values()):
            raise ValueError("at most 20 inbox addresses per team")
        return {
            team: sorted({a.strip().lower() for a in addresses})
            for team, addresses in value.items()
        }


@router.get("/v1/admin/email/settings")
async def get_settings(rt: Rt, caller: CurrentAdmin) -> dict[str, Any]:
    async with rt.uow.read(caller.site_id) as tx:
        site = await tx.store(SiteStore).get(caller.site_id)
    return {
        **site.to_json(),
        "defaults": {
            "from_address": rt.settings.from_address,
            "reply_domain": rt.settings.reply_domain,
            "unread_after_s": rt.settings.unread_after_s,
        },
    }


@router.put("/v1/admin/email/settings")
async def put_settings(request: Request, rt: Rt, caller: CurrentAdmin) -> dict[str, Any]:
    body = await read_body(request, EmailSettingsBody)
    site = SiteEmail(caller.site_id, **body.model_dump())
    async with rt.uow(caller.site_id) as tx:
        await tx.store(SiteStore).put(site)
    return site.to_json()


@router.get("/v1/admin/email/log")
async def email_log(
    rt: Rt,
    caller: CurrentAdmin,
    status: Annotated[Literal[STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    recipient: Annotated[str | None, Query(max_length=254)] = None,
    before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    async with rt.uow.read(caller.site_id) as tx:
        found = await tx.store(EmailStore).log(
            caller.site_id, status=status, recipient=recipient, before=before, limit=limit
        )
    return {"emails": [email.to_json() for email in found]}


@router.get("/v1/admin/email/log/{email_id}")
async def email_entry(rt: Rt, caller: CurrentAdmin, email_id: UUID) -> dict[str, Any]:
    async with rt.uow.read(caller.site_id) as tx:
        store = tx.store(EmailStore)
        email = await store.get(caller.site_id, email_id)
        if email is None:
            raise NotFound("no_such_email", "no e-mail of this site has that id")
        return {**email.to_json(), "tries": await store.attempts_of(email_id)}


@router.post("/v1/admin/email/log/{email_id}/resend", status_code=201)
async def resend(rt: Rt, caller: CurrentAdmin, email_id: UUID) -> dict[str, Any]:
    """The same e-mail again, as a new intent (its own key and Message-ID). Limits do not
    apply to an admin's resend; the suppression list does."""
    now = datetime.now(UTC)
    async with rt.uow(caller.site_id) as tx:
        store = tx.store(EmailStore)
        email = await store.get(caller.site_id, email_id)
        if email is None:
            raise NotFound("no_such_email", "no e-mail of this site has that id")
        if email.recipient_kind == "staff" and email.recipient.startswith("agent:"):
            raise Invalid("no_address", "the agent has no address in the directory")
        if email.template == "unread_messages" and not email.context.get("messages"):
            raise Invalid("nothing_to_send", "this e-mail was never composed (nothing was unseen)")
        site = await tx.store(SiteStore).get(caller.site_id)
        intended = await emails.intend(
            tx,
            Intent(
                template=email.template,
                site_id=email.site_id,
                recipient=email.recipient,
                recipient_kind=email.recipient_kind,  # type: ignore[arg-type]
                language=email.language,
                source_event_id=email.source_event_id,
                context=email.context,
                conversation_id=email.conversation_id,
                visitor_id=email.visitor_id,
                key_suffix=f"resend:{uuid7()}",
            ),
            now=now,
            limits=Limits(10**9, 10**9, 10**9),
            mail_domain=site.reply_domain or rt.settings.reply_domain,
        )
    return {
        "email_id": str(intended.email_id),
        "status": intended.status,
        "reason": intended.reason,
    }


@router.get("/v1/admin/email/templates")
async def templates(caller: CurrentAdmin) -> dict[str, list[str]]:
    """What the console's previews offer: every template, in each language."""
    return {"templates": list(TEMPLATE_NAMES), "languages": list(LANGUAGES)}


@router.get("/v1/admin/email/templates/{name}/preview")
async def preview(
    rt: Rt,
    caller: CurrentAdmin,
    name: str,
    language: Annotated[Literal["en", "fi"], Query()] = "en",
) -> dict[str, str]:
    if name not in TEMPLATE_NAMES:
        raise NotFound("no_such_template", f"the templates are {', '.join(TEMPLATE_NAMES)}")
    rendered = rt.renderer.preview(name, language)  # type: ignore[arg-type]
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


@router.get("/v1/email/templates/{name}/preview.html", response_class=HTMLResponse)
async def preview_page(
    rt: Rt, name: str, language: Annotated[Literal["en", "fi"], Query()] = "en"
) -> HTMLResponse:
    """A template's HTML part with sample data, as a page of its own for the console's
    sandboxed preview frame: nothing of any site is in it (so no login), its CSP lets the
    e-mail's inline styles and https images show and nothing run, and only the console's
    origins may frame it."""
    if name not in TEMPLATE_NAMES:
        raise NotFound("no_such_template", f"the templates are {', '.join(TEMPLATE_NAMES)}")
    rendered = rt.renderer.preview(name, language)  # type: ignore[arg-type]
    ancestors = " ".join(rt.settings.console_origins) or "'none'"
    return HTMLResponse(
        rendered.html,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            f"img-src https: data:; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {ancestors}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.delete("/v1/admin/email/suppressions/{address}", status_code=204)
async def lift_suppression(rt: Rt, caller: CurrentAdmin, address: str) -> None:
    async with rt.uow(caller.site_id) as tx:
        removed = await tx.conn.fetchval(
            """DELETE FROM notifier.suppressions WHERE site_id = $1 AND address_hash = $2
               RETURNING true""",
            caller.site_id,
            address_hash(address),
        )
    if not removed:
        raise NotFound("not_suppressed", "the address is not on this site's suppression list")


@router.get("/v1/email/offline")
async def offline_inbox(
    rt: Rt, caller: CurrentAgent, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """Offline messages of the caller's site, newest first: who, what, and whether an agent
    has answered (the answer goes out by e-mail and continues the conversation)."""
    async with rt.uow.read(caller.site_id) as tx:
        rows = await tx.conn.fetch(
            """SELECT c.conversation_id, c.team, c.email, c.visitor_name, c.started_at,
                      c.closed_at,
                      c.offline_text AS text,
                      EXISTS (SELECT 1 FROM notifier.messages m
                              WHERE m.conversation_id = c.conversation_id
                                AND m.author = 'agent') AS answered
               FROM notifier.conversations c
               WHERE c.site_id = $1 AND c.offline
               ORDER BY c.started_at DESC LIMIT $2""",
            caller.site_id,
            limit,
        )
    return {
        "messages": [
            {
                **{k: row[k] for k in ("team", "email", "visitor_name", "text", "answered")},
                "conversation_id": str(row["conversation_id"]),
                "left_at": row["started_at"].isoformat(),
                "closed": row["closed_at"] is not None,
            }
            for row in rows
        ]
    }


UNSUBSCRIBED = {
    "en": "You will get no more e-mails about unread messages from {site}.",
    "fi": "Et saa enää sähköposteja lukemattomista viesteistä lähettäjältä {site}.",
}


@router.get("/v1/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
@router.post("/v1/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(rt: Rt, t: Annotated[str, Query(max_length=2000)]) -> HTMLResponse:
    """RFC 8058 one-click (POST) and the link itself (GET): the address gets nothing more
    from that site."""
    try:
        who = rt.unsubscribe.check(t)
    except BadUnsubscribeLink as error:
        raise Invalid("bad_link", str(error)) from None
    async with rt.uow(who.site_id) as tx:
        await tx.store(EmailStore).suppress(who.site_id, who.address, "unsubscribe", None)
        site = await tx.store(SiteStore).get(who.site_id)
    language = rt.directory.look(who.site_id).language
    text = UNSUBSCRIBED.get(language, UNSUBSCRIBED["en"]).format(site=site.name())
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>OK</title><p>{escape(text)}</p>"
    )
