"""What a route declares it needs, as FastAPI dependencies:

    @router.post("/v1/leads/{lead_id}/status")
    async def change_status(rt: Rt, caller: CurrentAgent, body: Valid[StatusChange]) -> ...

- `Rt`: the process's runtime (settings, units of work, the bus).
- `Valid[Model]`: the JSON body validated into `Model` (size-limited, 422 naming the field).
- `CurrentAgent` / `CurrentAdmin`: the console's agent session ("one login": chat's
  `beckon_agent` cookie, checked here and confirmed by chat, see
  `beckon_edge.console_sessions`); an admin of the site for the second (else 403
  `admin_only`). A call that changes something must come from the API's own origin or one
  of `LEADS_CONSOLE_ORIGINS` (else 403 `cross_site`): the cookie rides along on any page's
  requests.
- `CurrentApiClient`: a per-site API key (`Authorization: Bearer bk_...`), else 401.

Dependencies resolve in the order the parameters are written: name the caller before the
body, so a stranger learns nothing about a body's shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from beckon_edge.console_sessions import SESSION_COOKIE, Caller, session_caller
from beckon_edge.refusals import Forbidden, NotAuthenticated
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from leads.api.common import read_body, runtime
from leads.apikeys import service as apikeys
from leads.apikeys.service import ApiClient
from leads.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
__all__ = ["Caller", "CurrentAdmin", "CurrentAgent", "CurrentApiClient", "Rt", "Valid"]

Rt = Annotated[Runtime, Depends(runtime)]

# OpenAPI's description of the two ways in (they read nothing themselves: auto_error=False)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="consoleSession",
    description="The agent console's session cookie (log in to the console; chat issues it)",
    auto_error=False,
)
api_key = HTTPBearer(
    scheme_name="apiKey",
    bearerFormat="bk_...",
    description="A per-site API key (an admin creates it: POST /v1/admin/api-keys)",
    auto_error=False,
)


async def current_agent(
    request: Request,
    rt: Rt,
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Caller:
    """The console's agent session: checked here (signature, kind, expiry), confirmed by
    chat (the session still stands; role and teams)."""
    return await session_caller(request, rt.sessions, rt.settings.console_origins, cookie)


async def current_admin(caller: Annotated[Caller, Depends(current_agent)]) -> Caller:
    if not caller.admin:
        raise Forbidden("admin_only", "only a site admin can do this")
    return caller


async def current_api_client(
    rt: Rt, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(api_key)]
) -> ApiClient:
    """The site whose API key the request carries (`Authorization: Bearer bk_...`)."""
    if credentials is None:
        raise NotAuthenticated(
            "api_key_required", "send the site's API key as `Authorization: Bearer bk_...`"
        )
    return await apikeys.authenticate(
        uow=rt.uow, key=credentials.credentials.strip(), now=datetime.now(UTC)
    )


CurrentAgent = Annotated[Caller, Depends(current_agent)]
CurrentAdmin = Annotated[Caller, Depends(current_admin)]
CurrentApiClient = Annotated[ApiClient, Depends(current_api_client)]


def _body_of(model: type[M]) -> Any:
    async def body(request: Request) -> M:
        return await read_body(request, model)

    body.__name__ = f"{model.__name__}_body"
    body.body_model = model  # type: ignore[attr-defined]  # for the OpenAPI document
    return Depends(body)


if TYPE_CHECKING:
    # for the type checker `Valid[Model]` is `Model`
    Valid = Annotated[M, ...]
else:

    class Valid:
        """`Valid[Model]`: the request's JSON body validated into `Model`."""

        def __class_getitem__(cls, model: type[M]) -> Any:
            return Annotated[model, _body_of(model)]
