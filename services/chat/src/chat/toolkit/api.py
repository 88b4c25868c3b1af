"""The toolkit's routes under /v1/console: canned replies, a conversation's context and the
variables filled from it, private notes, tags, the Answers search, transfer targets, and
marking a conversation as a lead. Each names the agent first, then calls one use case
(`chat.toolkit.service`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.envelope import Identifier
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.responses import Response

from chat.api.deps import CurrentAgent, Rt, Valid
from chat.features import console_router
from chat.toolkit import domain, service

router = console_router()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    text: str


class CannedBody(_Body):
    shortcut: str
    text: str
    scope: Literal["personal", "team", "site"] = "personal"
    team: Identifier | None = None


class CannedChange(_Body):
    shortcut: str | None = None
    text: str | None = None


class FillBody(_Body):
    text: Annotated[str, StringConstraints(max_length=domain.MAX_CANNED_CHARS * 2)]


class LeadBody(_Body):
    validation: str
    note: str | None = None


# --- canned replies ----------------------------------------------------------------------------


@router.get("/canned")
async def list_canned(
    rt: Rt,
    agent: CurrentAgent,
    q: str | None = None,
    manage: bool = False,
) -> dict[str, Any]:
    """The replies the agent can use (`?q=` searches shortcut and text, best first); with
    `?manage=true` an admin also gets every team's set, not only their own teams'."""
    return await service.list_canned(uow=rt.uow, agent=agent, query=q, manage=manage)


@router.post("/canned", status_code=201)
async def create_canned(rt: Rt, agent: CurrentAgent, body: Valid[CannedBody]) -> dict[str, Any]:
    reply = await service.create_canned(
        uow=rt.uow,
        agent=agent,
        shortcut=body.shortcut,
        text=body.text,
        scope=body.scope,
        team=body.team,
    )
    return {"reply": reply}


@router.patch("/canned/{reply_id}")
async def update_canned(
    rt: Rt, agent: CurrentAgent, reply_id: UUID, body: Valid[CannedChange]
) -> dict[str, Any]:
    reply = await service.update_canned(
        uow=rt.uow, agent=agent, reply_id=reply_id, shortcut=body.shortcut, text=body.text
    )
    return {"reply": reply}


@router.delete("/canned/{reply_id}", status_code=204)
async def delete_canned(rt: Rt, agent: CurrentAgent, reply_id: UUID) -> Response:
    await service.delete_canned(uow=rt.uow, agent=agent, reply_id=reply_id)
    return Response(status_code=204)


# --- a conversation's context: the variables' values -----------------------------------------


@router.get("/conversations/{conversation_id}/context")
async def context(rt: Rt, agent: CurrentAgent, conversation_id: UUID) -> dict[str, Any]:
    """What the canned replies' variables stand for in this conversation (empty if unknown)."""
    values = await service.context_values(
        uow=rt.uow, visitors=rt.visitors, agent=agent, conversation_id=conversation_id
    )
    return {"values": values}


@router.post("/conversations/{conversation_id}/fill")
async def fill(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[FillBody]
) -> dict[str, Any]:
    """A canned reply's text with this conversation's values in (for the composer to edit)."""
    return await service.fill(
        uow=rt.uow,
        visitors=rt.visitors,
        agent=agent,
        conversation_id=conversation_id,
        text=body.text,
    )


# --- private notes ---------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[NoteBody]
) -> dict[str, Any]:
    """A note only agents see: stored, and pushed to the site's consoles on every instance;
    never a message, never on chat.events, never on a visitor's socket."""
    note = await service.add_note(
        uow=rt.uow,
        push_to_agents=rt.bus.push_to_agents,
        agent=agent,
        conversation_id=conversation_id,
        text=body.text,
    )
    return {"note": note}


# --- tags and answers ------------------------------------------------------------------------


@router.get("/tags")
async def list_tags(rt: Rt, agent: CurrentAgent) -> dict[str, Any]:
    return {"tags": await service.list_tags(uow=rt.uow, agent=agent)}


@router.get("/answers")
async def answers(
    rt: Rt,
    agent: CurrentAgent,
    tag: Annotated[str, StringConstraints(max_length=40)] | None = None,
    q: Annotated[str, StringConstraints(max_length=200)] | None = None,
) -> dict[str, Any]:
    """Tagged conversations as the visitor's questions and the agents' answers."""
    return {"answers": await service.search_answers(uow=rt.uow, agent=agent, tag=tag, query=q)}


# --- transfer --------------------------------------------------------------------------------


@router.get("/transfer-targets")
async def transfer_targets(rt: Rt, agent: CurrentAgent) -> dict[str, Any]:
    """Online agents of the site with their load, and the teams with who is online."""
    return await service.transfer_targets(uow=rt.uow, agent=agent)


# --- leads -----------------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}/lead")
async def get_lead(rt: Rt, agent: CurrentAgent, conversation_id: UUID) -> dict[str, Any]:
    return {"lead": await service.lead(uow=rt.uow, agent=agent, conversation_id=conversation_id)}


@router.post("/conversations/{conversation_id}/lead")
async def mark_lead(
    rt: Rt, agent: CurrentAgent, conversation_id: UUID, body: Valid[LeadBody]
) -> dict[str, Any]:
    """Mark (or re-mark) the conversation as a lead; `conversation.lead_marked` goes out."""
    mark, changed = await service.mark_lead(
        uow=rt.uow,
        agent=agent,
        conversation_id=conversation_id,
        validation=body.validation,
        note=body.note,
    )
    return {"lead": mark, "changed": changed}
