"""What a route declares it needs, as FastAPI dependencies:

    @router.patch("/v1/leads/{lead_id}")
    async def update_status(rt: Rt, body: Valid[StatusChange]) -> ...

- `Rt`: the process's runtime (settings, units of work, the bus).
- `Valid[Model]`: the JSON body validated into `Model` (size-limited, 422 naming the field).

- `CurrentAgent` / `CurrentAdmin`: the console's agent session (an admin for the second).
  INTERFACE STUB: `current_agent` refuses everyone until the auth slice implements it; routes
  are written against `Caller` now, and tests may override `current_agent`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from beckon_edge.refusals import Forbidden, NotAuthenticated
from fastapi import Depends, Request
from pydantic import BaseModel

from leads.api.common import read_body, runtime
from leads.runtime import Runtime

M = TypeVar("M", bound=BaseModel)

Rt = Annotated[Runtime, Depends(runtime)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an agent of one site, their role and teams."""

    site_id: str
    agent_id: str
    role: Literal["agent", "admin"]
    teams: tuple[str, ...] = ()

    @property
    def admin(self) -> bool:
        return self.role == "admin"


async def current_agent(request: Request) -> Caller:
    """The console's agent session (stub: nobody yet)."""
    raise NotAuthenticated("not_authenticated", "log in to the console first")


async def current_admin(caller: Annotated[Caller, Depends(current_agent)]) -> Caller:
    if not caller.admin:
        raise Forbidden("admin_only", "only a site admin can do this")
    return caller


CurrentAgent = Annotated[Caller, Depends(current_agent)]
CurrentAdmin = Annotated[Caller, Depends(current_admin)]


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
