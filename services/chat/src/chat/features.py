"""How a console feature plugs into the service: each package under `chat/` that is listed in
`main.FEATURES` has a `router` (included in the app) and an `async start(runtime)` called in
the lifespan once the runtime exists, which returns an `async stop()` (or None)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter

Stop = Callable[[], Awaitable[None]]


def no_router() -> APIRouter:
    """A feature's router, under the console's API prefix."""
    return APIRouter(prefix="/v1/console", tags=["console"])
