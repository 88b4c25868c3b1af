"""What a route declares it needs: the runtime (`Rt`), the console's agent (`CurrentAgent`,
`CurrentAdmin`: chat's session cookie, beckon_edge.console_sessions) and a validated body
(`await read_body(request, Model)`)."""

from __future__ import annotations

from typing import Annotated

from beckon_edge.console_sessions import SESSION_COOKIE, Caller, session_caller
from beckon_edge.refusals import Forbidden
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie

from notifier.runtime import Runtime


def runtime(request: Request) -> Runtime:
    state: Runtime = request.app.state.notifier
    return state


Rt = Annotated[Runtime, Depends(runtime)]
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="consoleSession",
    description="The agent console's session cookie (log in to the console; chat issues it)",
    auto_error=False,
)


async def current_agent(
    request: Request, rt: Rt, cookie: Annotated[str | None, Depends(session_cookie)]
) -> Caller:
    return await session_caller(request, rt.sessions, rt.settings.console_origins, cookie)


async def current_admin(caller: Annotated[Caller, Depends(current_agent)]) -> Caller:
    if not caller.admin:
        raise Forbidden("admin_only", "only a site admin can do this")
    return caller


CurrentAgent = Annotated[Caller, Depends(current_agent)]
CurrentAdmin = Annotated[Caller, Depends(current_admin)]
