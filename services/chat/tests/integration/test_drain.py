"""A chat instance told to stop (SIGTERM) drains before it goes: /readyz answers 503, every
WebSocket is closed with 1012 (service restart: the widget and the console reconnect to
another instance), a socket opened meanwhile is closed the same way, and a second signal ends
the drain at once."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
from chat_testing import RUNNING, frame_is, start_chat, stop_chat

pytestmark = pytest.mark.integration

SERVICE_RESTART = 1012


async def _readyz(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(f"{url}/readyz")


async def test_sigterm_drains_sockets_with_1012_and_turns_readiness_off(
    chat, make_site, clients, http
) -> None:
    # a long drain: the test ends it with a second signal once it has seen what it needs
    instance = await start_chat(
        "drain",
        database_url=chat.database_url,
        bootstrap=chat.bootstrap,
        log_dir=chat.log_dir,
        CHAT_DRAIN_S="120",
    )
    try:
        site = await make_site(agents=[("ann", ["sales"], 5)])
        agent = await clients.agent(instance.url, site.agent("ann"), online=True)
        console = await agent.connect(instance.ws_url)
        await console.recv_until(frame_is("hello"))
        visitor = clients.visitor(site)
        assert (await visitor.session(instance.url)).status_code == 200
        widget = await visitor.connect(instance.ws_url)
        await widget.recv_until(frame_is("hello"))
        assert (await _readyz(http, instance.url)).status_code == 200

        instance.process.send_signal(signal.SIGTERM)

        assert await widget.wait_closed() == SERVICE_RESTART
        assert await console.wait_closed() == SERVICE_RESTART
        answer = await _readyz(http, instance.url)  # still serving HTTP while draining
        assert answer.status_code == 503
        assert answer.json()["error"] == "draining"
        # a widget that reconnects here before the load balancer noticed is sent on, too
        again = await visitor.connect(instance.ws_url)
        assert await again.wait_closed() == SERVICE_RESTART
        assert instance.process.poll() is None

        instance.process.send_signal(signal.SIGTERM)  # the second: stop now
        returncode = await asyncio.to_thread(instance.process.wait, 30)
        assert returncode in (0, -signal.SIGTERM)
    finally:
        if instance in RUNNING:
            stop_chat(instance)
