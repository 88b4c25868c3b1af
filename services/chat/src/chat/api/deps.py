"""What a route declares it needs, as FastAPI dependencies:

    @router.post("/canned", status_code=201)
    async def create_canned(rt: Rt, agent: CurrentAgent, body: Valid[CannedBody]) -> ...

- `Rt`: the process's runtime (settings, units of work, hub, bus, features' lookups).
- `CurrentAgent`: the logged-in agent of a console call. A call that changes something must
  come from the console's own pages (else 403 cross_site); the session cookie must be valid
  and its session not ended (else 401).
- `CurrentAdmin`: the same, and the agent must be an admin of the site (else 403 not_admin).
- `Valid[Model]`: the JSON body validated into `Model` (size-limited, 422 saying where).

Dependencies resolve in the order the parameters are written: name the agent before the body,
so a stranger learns nothing about a body's shape.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit

from beckon_edge.tokens import AgentClaims, InvalidToken
from fastapi import Depends, Request
from pydantic import BaseModel

from chat.agents import service as agents
from chat.api.common import read_body, runtime
from chat.errors import Forbidden, NotAuthenticated
from chat.refs import AgentRef
from chat.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
COOKIE = "beckon_agent"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_from_cookie(rt: Runtime, cookie: str | None) -> AgentClaims:
    """The agent session a console cookie names, or 401."""
    if not cookie:
        raise NotAuthenticated("not_logged_in", "log in first")
    try:
        return rt.signer.check_agent(cookie, now=time.time())
    except InvalidToken as exc:
        raise NotAuthenticated("not_logged_in", f"log in again ({exc})") from None


def same_origin(origin: str | None, host: str | None) -> bool:
    """Cookies ride along on cross-site WebSockets: only the console's own pages may open one."""
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == (host or "").lower()


def refuse_cross_site(request: Request) -> None:
    """A console call that changes something must come from the console's own pages."""
    if request.method not in SAFE_METHODS and not same_origin(
        request.headers.get("origin"), request.headers.get("host")
    ):
        raise Forbidden("cross_site", "the console only accepts calls from its own pages")


Rt = Annotated[Runtime, Depends(runtime)]


async def current_agent(request: Request, rt: Rt) -> AgentRef:
    """The logged-in agent of a console call."""
    refuse_cross_site(request)
    session = session_from_cookie(rt, request.cookies.get(COOKIE))
    agent = AgentRef(session.site_id, session.agent_id)
    await rt.sessions.ensure(agent, session.session_version)
    return agent


CurrentAgent = Annotated[AgentRef, Depends(current_agent)]


async def is_admin(rt: Runtime, agent: AgentRef) -> bool:
    profile = await agents.profile(uow=rt.uow, agent=agent)
    return bool(profile["role"] == "admin")


async def current_admin(rt: Rt, agent: CurrentAgent) -> AgentRef:
    """The logged-in agent, who must be an admin of the site."""
    if not await is_admin(rt, agent):
        raise Forbidden("not_admin", "only an admin of this site may do this")
    return agent


CurrentAdmin = Annotated[AgentRef, Depends(current_admin)]


def _body_of(model: type[M]) -> Any:
    async def body(request: Request) -> M:
        return await read_body(request, model)

    body.__name__ = f"{model.__name__}_body"
    return Depends(body)


if TYPE_CHECKING:
    # for the type checker `Valid[Model]` is `Model`
    Valid = Annotated[M, ...]
else:

    class Valid:
        """`Valid[Model]`: the request's JSON body validated into `Model`."""

        def __class_getitem__(cls, model: type[M]) -> Any:
            return Annotated[model, _body_of(model)]
