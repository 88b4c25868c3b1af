"""Every operation of every service is classified (public / visitor / agent / admin / server)
in `security_surface.ACCESS`, so the tenancy battery attacks a new endpoint without a new test;
an operation that is gone must leave the table too."""

from __future__ import annotations

import pytest
from security_surface import ACCESS, FRAMES, SOCKETS, app_of, chat_frame_kinds, operations


@pytest.mark.parametrize("service", sorted(ACCESS))
def test_every_operation_of_the_spec_is_classified(service: str) -> None:
    spec = operations(app_of(service))
    table = set(ACCESS[service])
    unclassified = sorted(spec - table)
    assert not unclassified, (
        f"{service}: classify these operations in tests/security/tenancy/security_surface.py "
        f"(public / visitor / agent / admin / server): {unclassified}"
    )
    gone = sorted(table - spec)
    assert not gone, f"{service}: these operations are no longer in the spec: {gone}"


@pytest.mark.parametrize("service", sorted(SOCKETS))
def test_every_websocket_route_is_classified(service: str) -> None:
    app = app_of(service)
    sockets = {path for path in _socket_paths(app.routes)}
    assert sockets == set(SOCKETS[service]), (
        f"{service}: the WebSocket routes are {sorted(sockets)}; classify them in SOCKETS"
    )


def _socket_paths(routes: list, prefix: str = "") -> list[str]:
    """WebSocket paths of an app, through included routers (older and newer FastAPI)."""
    found: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI 0.16x: a lazy include
        if included is not None:
            context = getattr(route, "include_context", None)
            found += _socket_paths(included.routes, prefix + getattr(context, "prefix", ""))
        elif "websocket" in type(route).__name__.lower():
            found.append(prefix + route.path)
    return found


def test_every_frame_of_chats_sockets_is_classified() -> None:
    answered = chat_frame_kinds()
    assert set(answered) == set(SOCKETS["chat"]) == set(FRAMES["chat"])
    for path, kinds in answered.items():
        assert kinds == set(FRAMES["chat"][path]), (
            f"{path} answers the frames {sorted(kinds)}; classify each in "
            f"tests/security/tenancy/security_surface.py FRAMES (conversation / own / nothing)"
        )
