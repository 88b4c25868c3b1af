"""What a route declares it needs, as FastAPI dependencies:

    @router.patch("/v1/leads/{lead_id}")
    async def update_status(rt: Rt, body: Valid[StatusChange]) -> ...

- `Rt`: the process's runtime (settings, units of work, the bus).
- `Valid[Model]`: the JSON body validated into `Model` (size-limited, 422 naming the field).

Who is calling (the console's agent session, a site's API key) comes with the first routes
that need it, as `CurrentAgent` / `CurrentAdmin` / `ApiClient` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel

from leads.api.common import read_body, runtime
from leads.runtime import Runtime

M = TypeVar("M", bound=BaseModel)

Rt = Annotated[Runtime, Depends(runtime)]


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
