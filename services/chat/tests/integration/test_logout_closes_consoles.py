"""A logout ends the agent's open consoles on every instance at once: the instance that
logged out signals the change on chat.signals, and a console socket on another instance asks
then whether its session still stands, instead of at its next periodic check (an hour here,
so only the signal can close it while the test waits)."""

from __future__ import annotations

import pytest
from chat_testing import frame_is, spawn_chat, stop_chat, wait_ready

pytestmark = pytest.mark.integration


async def test_a_logout_on_one_instance_closes_the_agents_console_on_another(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    ann = site.agent("ann")
    slow = spawn_chat(
        "slow-check",
        database_url=chat.database_url,
        bootstrap=chat.bootstrap,
        log_dir=chat.log_dir,
        CHAT_SESSION_CHECK_S="3600",
    )
    try:
        await wait_ready(slow)
        agent = await clients.agent(slow.url, ann, online=True)
        console = await agent.connect(slow.ws_url)
        await console.recv_until(frame_is("hello"))

        other = await clients.agent(chat.a.url, ann)  # the same agent, logged in on A
        ended = await other.post("/logout")
        assert ended.status_code == 204, ended.text

        assert await console.wait_closed(timeout=30.0) == 4401
    finally:
        stop_chat(slow)
