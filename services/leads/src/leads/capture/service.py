"""Capture use cases: leads from chats, their dedup and merges, traits from `identify`, wins
by orders, and an admin's undo of a merge. Each runs in the caller's unit of work (the
consumer opens one per record, after `tx.first_delivery("capture", event_id)`).

Dedup rests on the unique indexes of 0001 (one open lead per site and e-mail key, phone key,
visitor). A capture looks for the open leads sharing a key with it (directly, or through a
lead merged into one), locks them in id order, and attaches to the first, merging the others
in (`identity.match` / `identity.merge`); with none it inserts a lead. Two captures of one
person at once both find nothing and both insert: the second insert waits for the first
transaction and fails on the unique index; its savepoint rolls back and the capture looks
again, now finding the winner, and adds its touch there.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from beckon_contracts.chat_events import ConversationClosed, ConversationStarted, ConversationTagged
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    Attribution,
    LeadCreated,
    LeadMerged,
    LeadUnmerged,
    Touch,
)
from beckon_contracts.tracking import Identified, OrderCompleted
from beckon_edge.refusals import Conflict, Invalid, NotFound

from leads import changes
from leads.assignment import service as assignment
from leads.capture.model import (
    Capture,
    ConversationInfo,
    VisitorView,
    facts_of,
    keep_survivor_contacts,
    merge_reason,
    record_json,
    record_of,
    sources_of,
)
from leads.capture.store import CaptureStore, Person
from leads.domain import identity, lifecycle
from leads.domain.identity import VALIDATIONS, PersonKey, TraitName
from leads.events import emit
from leads.lead import Lead
from leads.sla import service as sla
from leads.uow import UnitOfWork

CONSUMER = "capture"  # processed_events.consumer of capture's units
MAX_LOOKS = 8  # a capture looks again after losing a race; this many times in one unit


class Contended(RuntimeError):
    """The person's leads kept changing under this unit: run the unit again."""


@dataclass(frozen=True, slots=True)
class MergeDone:
    merge_id: UUID
    absorbed_id: UUID
    matched_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Captured:
    """What a capture did: the lead it went to, whether it created it, what it merged."""

    lead: Lead
    created: bool
    touch_id: UUID | None
    merges: list[MergeDone] = field(default_factory=list)
    # a new lead captured with `assign=False`: queued in its team, its first-contact deadline
    queued_due: datetime | None = None


def _higher(one: str, other: str) -> Any:
    return max(one, other, key=VALIDATIONS.index)  # type: ignore[arg-type]


async def _settle(
    tx: UnitOfWork, keys: frozenset[PersonKey], *, now: datetime
) -> tuple[Person | None, list[MergeDone]] | None:
    """The open lead of the person named by `keys`, locked, after merging into it the other
    open leads that share a key with them; (None, []) when there is none; None when the
    leads changed between the look and the lock (look again)."""
    store = tx.store(CaptureStore)
    site_id = tx.site_id
    found = await store.open_roots_by_keys(site_id, keys)
    if not found:
        return None, []
    keymap = await store.keys_of(site_id, (p.lead.lead_id for p in found))
    chosen = identity.match(
        keys, [p.identity(keymap.get(p.lead.lead_id, frozenset())) for p in found]
    )
    assert chosen.lead_id is not None
    wanted = [UUID(chosen.lead_id), *(UUID(lead_id) for lead_id in chosen.absorb)]
    locked = {p.lead.lead_id: p for p in await store.lock_people(site_id, wanted)}
    keymap = await store.keys_of(site_id, wanted)  # as they are now that nobody changes them
    if len(locked) != len(wanted) or any(
        not p.lead.open or not keymap.get(lead_id, frozenset()) & keys
        for lead_id, p in locked.items()
    ):
        return None
    survivor = locked[wanted[0]]
    merges: list[MergeDone] = []
    for absorbed_id in wanted[1:]:
        survivor, done = await _merge(
            tx,
            survivor,
            locked[absorbed_id],
            keymap=keymap,
            # what joined them: the keys the capture shares with either lead
            matched_on=keys & (keymap[absorbed_id] | keymap[survivor.lead.lead_id]),
            now=now,
        )
        merges.append(done)
    return survivor, merges


async def _merge(
    tx: UnitOfWork,
    survivor: Person,
    absorbed: Person,
    *,
    keymap: dict[UUID, frozenset[PersonKey]],
    matched_on: frozenset[PersonKey],
    now: datetime,
    by_agent_id: str | None = None,
) -> tuple[Person, MergeDone]:
    """Merge two locked open leads (the domain picks the survivor); returns it after."""
    store = tx.store(CaptureStore)
    one = survivor.identity(keymap[survivor.lead.lead_id])
    other = absorbed.identity(keymap[absorbed.lead.lead_id])
    merged = identity.merge(one, other, at=now, by=by_agent_id, matched_on=matched_on)
    if merged.record.survivor_id != one.lead_id:
        survivor, absorbed, one = absorbed, survivor, other
    merged = keep_survivor_contacts(merged, one)
    survivor_id, absorbed_id = survivor.lead.lead_id, absorbed.lead.lead_id
    touches, conversations = await store.absorb(
        tx.site_id, absorbed_id=absorbed_id, survivor_id=survivor_id, now=now
    )
    after = await store.update_person(
        tx.site_id,
        survivor_id,
        traits=merged.survivor.traits,
        validation=merged.survivor.validation,
        now=now,
    )
    merge_id = await store.insert_merge(
        tx.site_id,
        survivor_id=survivor_id,
        absorbed_id=absorbed_id,
        reason=merge_reason(merged.record.matched_on, by=by_agent_id),
        moved_touches=touches,
        moved_conversations=conversations,
        snapshot={"record": record_json(merged.record), "absorbed": asdict(absorbed.lead)},
        merged_by=by_agent_id,
        now=now,
    )
    await sla.stop(tx, lead=absorbed.lead, now=now)  # its speed-to-lead is the survivor's now
    keymap[survivor_id] = merged.survivor.keys
    kinds = tuple(sorted({key.kind for key in merged.record.matched_on})) or ("visitor",)
    return after, MergeDone(merge_id=merge_id, absorbed_id=absorbed_id, matched_on=kinds)


async def _emit_merges(
    tx: UnitOfWork, lead: Lead, merges: list[MergeDone], *, touch: Touch | None, now: datetime
) -> None:
    """`lead.merged` for each merge (the capture's touch on the last); a capture that only
    joined an open lead reports its touch alone (`merge_id`: the touch's id, nothing to undo)."""
    for index, done in enumerate(merges):
        last = index == len(merges) - 1
        await emit(
            tx,
            LeadMerged,
            lead,
            now=now,
            merge_id=done.merge_id,
            merged_lead_ids=[done.absorbed_id],
            touches=[touch] if last and touch else [],
            matched_on=list(done.matched_on),
        )


async def capture(
    tx: UnitOfWork,
    *,
    capture: Capture,
    visitor: VisitorView | None,
    now: datetime,
    batched: bool = False,
) -> Captured | None:
    """File one capture of a person: a new lead (`lead.created`, then routing and
    assignment), or a touch on their open lead (`lead.merged`), merging their other open
    leads in. None when the site takes no contact-only leads.

    A new lead is routed before it is inserted (its team's queue is where it arrives) and
    then given to an agent by draining its team's queue. `batched`: one of many captures in
    a unit (capture's batches): the new lead is left queued (`Captured.queued_due`; the
    caller drains its team once for all of them before the unit commits), and a lost race
    fails the unit instead of rolling back to a savepoint (hundreds of subtransactions in
    one transaction slow every session of the server)."""
    store = tx.store(CaptureStore)
    site_id = tx.site_id
    if capture.contact_only and not await store.captures_contact_only(site_id):
        return None
    email: identity.Email | None = None
    problems: list[dict[str, str]] = []
    if capture.email:
        try:
            email = identity.normalize_email(capture.email, field="payload.email")
        except Invalid as refusal:
            if capture.contact_only:
                raise  # nothing left to reach the person by: the record is dead-lettered
            problems.extend(refusal.errors or [])
    name = identity.clean_traits({"name": capture.name}, region=None).values.get("name")
    incoming: dict[TraitName, str | None] = {
        "email": email.address if email else None,
        "name": name,
    }
    keys = identity.person_keys(email=email, visitor_id=capture.visitor_id)
    conversation = (
        await store.conversation(site_id, capture.conversation_id)
        if capture.conversation_id
        else None
    )
    details: dict[str, Any] = {"email": capture.email, "name": capture.name}
    if capture.note:
        details["note"] = capture.note
    if problems:
        details["problems"] = problems
    touch_fields: dict[str, Any] = {
        "kind": capture.kind,
        "source_event_id": capture.event_id,
        "occurred_at": capture.occurred_at,
        "visitor_id": capture.visitor_id,
        "conversation_id": capture.conversation_id,
        "agent_id": capture.agent_id,
        "validation": capture.validation,
        "details": details,
    }

    all_merges: list[MergeDone] = []
    routing: assignment.Routing | None = None
    for _ in range(MAX_LOOKS):
        settled = await _settle(tx, keys, now=now)
        if settled is None:
            continue
        person, merges = settled
        all_merges += merges
        # a savepoint: a lost race leaves the unit usable
        savepoint = contextlib.nullcontext() if batched else tx.conn.transaction()
        try:
            async with savepoint:
                if person is None:
                    # routed first, so the new lead is written once, with its team
                    routing = routing or await assignment.routing_for(
                        tx, facts_of(capture, visitor, conversation)
                    )
                    person = await _create(
                        tx,
                        capture,
                        incoming,
                        email,
                        visitor,
                        conversation,
                        routing,
                        now=now,
                        held=batched,
                    )
                    created = True
                    # its first touch and conversation: written with the unit's others
                    touch_id: UUID | None = store.hold_first_touch(
                        site_id, person.lead.lead_id, **touch_fields
                    )
                    if capture.conversation_id:
                        store.hold_conversation(
                            site_id, person.lead.lead_id, capture.conversation_id
                        )
                else:
                    person = await _attach(tx, person, capture, incoming, now=now)
                    created = False
                    touch_id = await store.add_touch(site_id, person.lead.lead_id, **touch_fields)
                    if capture.conversation_id:
                        await store.add_conversation(
                            site_id, person.lead.lead_id, capture.conversation_id
                        )
        except asyncpg.UniqueViolationError:
            if batched:
                raise  # no savepoint: the unit is lost, and its records go one at a time
            continue  # another unit filed this person meanwhile: look again
        break
    else:
        raise Contended(f"the leads of visitor {capture.visitor_id} kept changing")

    lead = person.lead
    touch = Touch(
        kind=capture.kind,
        source_event_id=capture.event_id,
        conversation_id=capture.conversation_id,
        agent_id=capture.agent_id,
        validation=capture.validation,
        at=capture.occurred_at,
    )
    if created:
        assert routing is not None
        assert lead.team is not None
        await emit(
            tx,
            LeadCreated,
            replace(lead, team=None),  # as it was created: `lead.routed` gives it its team
            now=now,
            touch=touch,
            attribution=_attribution(visitor, conversation),
        )
        due = await assignment.routed(tx, lead=lead, routing=routing, now=now, fresh=True)
        if batched:
            return Captured(lead=lead, created=True, touch_id=touch_id, queued_due=due)
        handed = await assignment.drain(tx, team=lead.team, now=now, arrived={lead.lead_id: due})
        lead = next((after for after in handed if after.lead_id == lead.lead_id), lead)
    elif all_merges:
        await _emit_merges(tx, lead, all_merges, touch=touch if touch_id else None, now=now)
    elif touch_id is not None:
        await emit(
            tx,
            LeadMerged,
            lead,
            now=now,
            merge_id=touch_id,
            touches=[touch],
            matched_on=sorted({key.kind for key in keys & _keys_of(person)}) or ["visitor"],
        )
    return Captured(lead=lead, created=created, touch_id=touch_id, merges=all_merges)


async def read_ahead(tx: UnitOfWork, captures: list[Capture]) -> None:
    """Before a unit files many captures: read the conversations they name, and which of
    their person keys no lead has, in two queries instead of two per capture."""
    keys: set[PersonKey] = set()
    for one in captures:
        email: identity.Email | None = None
        if one.email:
            with contextlib.suppress(Invalid):
                email = identity.normalize_email(one.email, field="payload.email")
        keys |= identity.person_keys(email=email, visitor_id=one.visitor_id)
    await tx.store(CaptureStore).read_ahead(
        tx.site_id, (one.conversation_id for one in captures if one.conversation_id), keys
    )


async def write_held(tx: UnitOfWork) -> None:
    """Write the new leads (and their first touches and conversations) the unit's captures
    held back, in one statement: before the unit drains its teams' queues, which hold them."""
    await tx.store(CaptureStore).flush()


def _keys_of(person: Person) -> frozenset[PersonKey]:
    lead = person.lead
    return identity.person_keys(
        email=identity.Email(lead.email or "", lead.email_key) if lead.email_key else None,
        phone=identity.Phone(lead.phone_key, None) if lead.phone_key else None,
        visitor_id=lead.visitor_id,
    )


def _attribution(visitor: VisitorView | None, conversation: ConversationInfo | None) -> Attribution:
    fields: dict[str, Any] = {}
    if conversation is not None:
        fields.update(rule_id=conversation.rule_id, invitation_id=conversation.invitation_id)
    if visitor is not None:
        fields.update(
            source=(visitor.source or "")[:200] or None,
            medium=(visitor.medium or "")[:200] or None,
            campaign=(visitor.campaign or "")[:200] or None,
            score=visitor.score,
            segment=visitor.segment,
        )
    return Attribution.model_validate(fields)


async def _create(
    tx: UnitOfWork,
    capture: Capture,
    incoming: dict[TraitName, str | None],
    email: identity.Email | None,
    visitor: VisitorView | None,
    conversation: ConversationInfo | None,
    routing: assignment.Routing,
    *,
    now: datetime,
    held: bool = False,
) -> Person:
    """Insert the new lead, routed: in its team's queue (`queued_at`) until the drain that
    ends its unit of work gives it to an agent. `held`: written with the unit's other new
    leads (`write_held`)."""
    traits = identity.apply_traits({}, incoming, source="visitor", at=capture.occurred_at).traits
    facts = facts_of(capture, visitor, conversation)
    snapshot: dict[str, Any] = {
        "facts": facts.model_dump(mode="json"),
        "kind": capture.kind,
        "conversation_team": capture.team,
        "invitation_id": str(conversation.invitation_id)
        if conversation and conversation.invitation_id
        else None,
    }
    if visitor is not None:
        snapshot["visitor_state_at"] = visitor.as_of.isoformat()
    fields: dict[str, Any] = {
        "lead_id": uuid7(),
        "site_id": tx.site_id,
        "visitor_id": capture.visitor_id,
        "validation": capture.validation,
        "name": traits["name"].value if "name" in traits else None,
        "email": email.address if email else None,
        "email_key": email.key if email else None,
        "source": capture.channel,
        "rule_id": conversation.rule_id if conversation else None,
        "campaign": facts.campaign,
        "score": round(visitor.score) if visitor else None,
        "segment": (visitor.segment if visitor else None),
        "capture": snapshot,
        "team": routing.team,
        "routing_version": routing.version,
        "queued_at": now,
        "created_at": now,
        "updated_at": now,
    }
    store = tx.store(CaptureStore)
    if held:
        return store.hold_lead(fields, sources_of(traits))
    return await store.insert_lead(fields, sources_of(traits))


async def _attach(
    tx: UnitOfWork,
    person: Person,
    capture: Capture,
    incoming: dict[TraitName, str | None],
    *,
    now: datetime,
) -> Person:
    update = identity.apply_traits(
        person.traits, incoming, source="visitor", at=capture.occurred_at
    )
    validation = _higher(person.lead.validation, capture.validation)
    if not update.changed and validation == person.lead.validation:
        return person
    return await tx.store(CaptureStore).update_person(
        tx.site_id, person.lead.lead_id, traits=update.traits, validation=validation, now=now
    )


# --- what capture remembers of conversations ---------------------------------------------------


async def conversation_started(tx: UnitOfWork, *, event: ConversationStarted) -> None:
    """Remember the rule and invitation that brought the conversation about."""
    await tx.store(CaptureStore).conversation_started(
        tx.site_id,
        event.payload.conversation_id,
        visitor_id=event.visitor_id,
        team=event.payload.team,
        rule_id=event.payload.rule_id,
        invitation_id=event.payload.invitation_id,
        at=event.occurred_at,
    )


async def conversation_tagged(tx: UnitOfWork, *, event: ConversationTagged) -> None:
    """Remember the conversation's tags (b2b / b2c decide a lead's segment)."""
    await tx.store(CaptureStore).conversation_tagged(
        tx.site_id,
        event.payload.conversation_id,
        visitor_id=event.visitor_id,
        tags=event.payload.tags,
    )


async def conversation_closed(tx: UnitOfWork, *, event: ConversationClosed) -> list[UUID]:
    """The conversation's final context as a touch on its lead(s); returns their ids."""
    store = tx.store(CaptureStore)
    closed = event.payload
    touched: list[UUID] = []
    for lead_id in await store.conversation_roots(tx.site_id, closed.conversation_id):
        touch_id = await store.add_touch(
            tx.site_id,
            lead_id,
            kind="conversation_closed",
            source_event_id=event.event_id,
            occurred_at=event.occurred_at,
            visitor_id=event.visitor_id,
            conversation_id=closed.conversation_id,
            agent_id=closed.agent_id,
            details={
                "closed_by": closed.closed_by,
                "team": closed.team,
                "messages": closed.messages,
                "email": closed.email,
            },
        )
        if touch_id is not None:
            touched.append(lead_id)
    return touched


# --- tracking: identify and orders -------------------------------------------------------------


async def identify(tx: UnitOfWork, *, event: Identified, now: datetime) -> Lead | None:
    """A verified `identify` of a visitor with an open lead: its traits (name, e-mail, phone,
    company) onto the lead by the rule of `identity.apply_traits`; an e-mail or phone that
    another open lead holds merges the two. None when the visitor has no open lead."""
    if not event.payload.verified:
        # the page's own claim (no valid identity hash): never a lead's e-mail or name, never
        # a merge into another person's lead
        return None
    store = tx.store(CaptureStore)
    if not any(p.lead.open for p in await store.visitor_roots(tx.site_id, event.visitor_id)):
        return None
    region = identity.default_region(language=event.context.locale)
    clean = identity.clean_traits(event.payload.traits, region=region, prefix="payload.traits")
    keys = identity.person_keys(email=clean.email, phone=clean.phone, visitor_id=event.visitor_id)
    all_merges: list[MergeDone] = []
    for _ in range(MAX_LOOKS):
        settled = await _settle(tx, keys, now=now)
        if settled is None:
            continue
        person, merges = settled
        all_merges += merges
        if person is None:
            return None  # closed meanwhile
        update = identity.apply_traits(
            person.traits, clean.values, source="visitor", at=event.occurred_at
        )
        try:
            async with tx.conn.transaction():
                if update.changed:
                    person = await store.update_person(
                        tx.site_id,
                        person.lead.lead_id,
                        traits=update.traits,
                        validation=person.lead.validation,
                        now=now,
                    )
                await store.add_touch(
                    tx.site_id,
                    person.lead.lead_id,
                    kind="identify",
                    source_event_id=event.event_id,
                    occurred_at=event.occurred_at,
                    visitor_id=event.visitor_id,
                    details={
                        "changed": list(update.changed),
                        "kept": list(update.kept),
                        "problems": [dict(problem) for problem in clean.problems],
                    },
                )
        except asyncpg.UniqueViolationError:
            continue  # the new e-mail or phone is another open lead's now: merge them
        break
    else:
        raise Contended(f"the leads of visitor {event.visitor_id} kept changing")
    await _emit_merges(tx, person.lead, all_merges, touch=None, now=now)
    return person.lead


WINNABLE = frozenset({*lifecycle.OPEN_STATUSES, "lost", "recycled"})


async def order_completed(tx: UnitOfWork, *, event: OrderCompleted, now: datetime) -> Lead | None:
    """An order by a lead's visitor wins their latest lead (open, lost or recycled) with the
    order's value and currency, when the store's server reported it. An order the browser
    reported is the visitor's claim: it is kept as a touch (marked so) and wins nothing, since
    anyone knowing a visitor id could otherwise close someone's lead as won. None when the
    visitor has no such lead."""
    store = tx.store(CaptureStore)
    people = await store.visitor_roots(tx.site_id, event.visitor_id)
    if not people or people[0].lead.status not in WINNABLE:
        return None
    locked = await store.lock_people(tx.site_id, [people[0].lead.lead_id])
    if not locked or locked[0].lead.merged_into or locked[0].lead.status not in WINNABLE:
        return None  # won or merged meanwhile
    lead = locked[0].lead
    order = event.payload
    await store.add_touch(
        tx.site_id,
        lead.lead_id,
        kind="order_completed",
        source_event_id=event.event_id,
        occurred_at=event.occurred_at,
        visitor_id=event.visitor_id,
        details={
            "order_id": order.order_id,
            "value": str(order.value),
            "currency": order.currency,
            "reported_by": event.context.reported_by,
        },
    )
    if event.context.reported_by != "server":
        return None
    return await changes.apply_change(
        tx,
        lead=lead,
        change=lifecycle.win(),
        now=now,
        how="order",
        order_id=order.order_id,
        value=order.value,
        currency=order.currency,
        order_event_id=event.event_id,
    )


# --- an admin's undo ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unmerged:
    survivor: Lead
    restored: Lead
    traits_restored: tuple[str, ...]
    traits_kept: tuple[str, ...]


async def unmerge(tx: UnitOfWork, *, merge_id: UUID, by_agent_id: str, now: datetime) -> Unmerged:
    """Undo a merge of the unit's site: the absorbed lead open again with its touches and
    conversations, the survivor's traits and validation back unless edited since
    (`lead.unmerged` on both). Refusals: NotFound `merge_not_found`; Conflict
    `merge_undone`, `unmerge_key_taken` and those of `identity.unmerge`."""
    store = tx.store(CaptureStore)
    site_id = tx.site_id
    row = await store.lock_merge(site_id, merge_id)
    if row is None:
        raise NotFound("merge_not_found", f"no merge {merge_id} on this site")
    if row["undone_at"] is not None:
        raise Conflict("merge_undone", f"merge {merge_id} was undone at {row['undone_at']}")
    survivor_id, absorbed_id = row["survivor_id"], row["merged_id"]
    locked = await store.lock_people(site_id, [survivor_id, absorbed_id])
    people = {p.lead.lead_id: p for p in locked}
    keymap = await store.keys_of(site_id, [survivor_id, absorbed_id])
    snapshot = row["snapshot"]
    stored = orjson.loads(snapshot) if isinstance(snapshot, str) else snapshot
    record = record_of(stored["record"])
    plan = identity.unmerge(
        record,
        people[survivor_id].identity(keymap.get(survivor_id, frozenset())),
        people[absorbed_id].identity(keymap.get(absorbed_id, frozenset())),
    )
    try:
        async with tx.conn.transaction():
            survivor = await store.update_person(
                site_id,
                survivor_id,
                traits=plan.survivor.traits,
                validation=plan.survivor.validation,
                now=now,
            )
            await store.restore(
                site_id,
                merge_id=merge_id,
                absorbed_id=absorbed_id,
                survivor_id=survivor_id,
                touches=list(row["moved_touches"]),
                conversations=list(row["moved_conversations"]),
                by_agent_id=by_agent_id,
                now=now,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "unmerge_key_taken",
            "another open lead now has this person's e-mail, phone or visitor; "
            "merge or close that lead first",
        ) from None
    (restored,) = await store.people(site_id, [absorbed_id])
    for lead in (survivor.lead, restored.lead):
        await emit(
            tx,
            LeadUnmerged,
            lead,
            now=now,
            merge_id=merge_id,
            restored_lead_ids=[absorbed_id],
            by_agent_id=by_agent_id,
        )
    if restored.lead.status in lifecycle.SLA_RUNNING and restored.lead.team:
        await sla.start_first_contact(tx, lead=restored.lead, now=now)
    return Unmerged(
        survivor=survivor.lead,
        restored=restored.lead,
        traits_restored=plan.restored,
        traits_kept=plan.kept,
    )
