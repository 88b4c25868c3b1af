"""A visitor's data: erasure requested and applied, export, retention (the use cases).

- `request_erasure` (admin API): resolves the addresses to the visitor ids chat knows, stores
  the request (who asked, when; no subject) and publishes `privacy.erasure_requested` through
  the outbox, in one unit.
- `erase` (the `<group>-privacy` consumer, like every other service's): deletes or anonymises
  chat's rows of those visitors, forgets the published outbox rows that name them, and
  publishes chat's `privacy.erased`; a replay of the same request changes nothing.
- `export`: what chat holds of the visitors and what leads and the notifier hold (asked over
  HTTP), as one JSON document.
- `prune`: each site's retention (activity, transcripts), run periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import ErasureRequested, subject_hash

from chat.privacy import domain
from chat.privacy.store import PrivacyStore
from chat.refs import AgentRef, now_utc
from chat.uow import EVERY_SITE, UnitsOfWork

log = logging.getLogger("chat.privacy")
# the other services' parts of an export for (visitor ids, addresses): `ExportParts.collect`
AskParts = Callable[
    [Sequence[str], Sequence[str]],
    Awaitable[Mapping[str, Mapping[str, Any] | domain.MissingPart]],
]


async def request_erasure(
    *, uow: UnitsOfWork, admin: AgentRef, visitor_ids: Sequence[str], emails: Sequence[str]
) -> dict[str, Any]:
    """Store the request and publish the command; says how many visitors chat found."""
    ids, addresses = domain.subjects(visitor_ids, emails)
    request_id = uuid7()
    async with uow(admin.site_id) as tx:
        store = tx.store(PrivacyStore)
        found = await store.visitors_of(
            admin.site_id, ids, [subject_hash(address) for address in addresses]
        )
        await store.add_request(
            request_id, admin.site_id, admin.agent_id, len(ids) + len(addresses)
        )
        tx.publish(
            domain.erasure_command(
                site_id=admin.site_id,
                request_id=request_id,
                visitor_ids=found,
                emails=addresses,
                requested_by=admin.agent_id,
            )
        )
    return {"request_id": str(request_id), "visitors": len(found), "status": "requested"}


async def erase(*, uow: UnitsOfWork, command: ErasureRequested) -> dict[str, int] | None:
    """Chat's part of an erasure (None: done before, or a site this deployment lacks)."""
    payload = command.payload
    async with uow(command.site_id) as tx:
        store = tx.store(PrivacyStore)
        if not await store.claim_request(payload.request_id, command.site_id, payload.requested_by):
            return None
        visitors = await store.visitors_of(
            command.site_id, payload.visitor_ids, payload.email_hashes
        )
        counts: dict[str, int] = await store.erase(
            command.site_id, visitors, payload.email_hashes, payload.request_id
        )
        await store.mark_erased(payload.request_id, counts, now_utc())
        tx.publish(domain.erased_record(command, visitor_ids=visitors, counts=counts))
    return counts


async def requests(*, uow: UnitsOfWork, site_id: str) -> list[dict[str, Any]]:
    async with uow.read(site_id) as tx:
        found: list[dict[str, Any]] = await tx.store(PrivacyStore).requests(site_id)
    return found


async def export(
    *,
    uow: UnitsOfWork,
    parts: AskParts,
    site_id: str,
    visitor_ids: Sequence[str],
    emails: Sequence[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """One document: chat's part, and leads' and the notifier's (`parts`, asked for the visitor
    ids chat resolved and the addresses), each named missing when it could not be had."""
    ids, addresses = domain.subjects(visitor_ids, emails)
    async with uow.read(site_id) as tx:
        store = tx.store(PrivacyStore)
        found = await store.visitors_of(
            site_id, ids, [subject_hash(address) for address in addresses]
        )
        data = await store.export(site_id, found)
    others = await parts(found, addresses)  # outside the transaction: other services' time
    return domain.export_document(
        site_id=site_id,
        visitor_ids=ids,
        emails=addresses,
        chat={"visitor_ids": found, **data},
        parts=others,
        now=now,
    )


async def retention(*, uow: UnitsOfWork, site_id: str) -> dict[str, int | None]:
    async with uow.read(site_id) as tx:
        held: dict[str, int | None] = await tx.store(PrivacyStore).retention(site_id)
    return held


async def set_retention(
    *, uow: UnitsOfWork, site_id: str, activity_days: int | None, transcript_days: int | None
) -> dict[str, int | None]:
    async with uow(site_id) as tx:
        await tx.store(PrivacyStore).set_retention(site_id, activity_days, transcript_days)
    return {"activity_days": activity_days, "transcript_days": transcript_days}


async def prune(*, uow: UnitsOfWork, now: datetime | None = None) -> dict[str, int]:
    """Apply every site's retention once: activity and transcripts older than its days."""
    now = now or now_utc()
    totals = {"activity": 0, "messages": 0}
    async with uow.read(EVERY_SITE) as tx:
        sites = await tx.store(PrivacyStore).retained_sites()
    for site in sites:
        async with uow(site["site_id"]) as tx:
            store = tx.store(PrivacyStore)
            if site["activity_days"] is not None:
                cutoff = now - timedelta(days=site["activity_days"])
                totals["activity"] += await store.prune_activity(site["site_id"], cutoff)
            if site["transcript_days"] is not None:
                cutoff = now - timedelta(days=site["transcript_days"])
                totals["messages"] += await store.prune_transcripts(site["site_id"], cutoff)
    if any(totals.values()):
        log.info("retention applied", extra=totals)
    return totals
