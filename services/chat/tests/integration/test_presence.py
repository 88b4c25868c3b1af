"""`agents.presence`: every change of an agent publishes the whole of each of their teams
(key `site:team`), with their status and open chats."""

from __future__ import annotations

import orjson
import pytest
from beckon_contracts.presence import TeamPresence, parse_team_presence
from beckon_contracts.topics import AGENTS_PRESENCE
from chat_testing import Event, frame_is, read_events

pytestmark = pytest.mark.integration


def _teams(events: list[Event]) -> dict[str, list[TeamPresence]]:
    """Records per key, in the order read (one key lives on one partition)."""
    by_key: dict[str, list[TeamPresence]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(parse_team_presence(orjson.dumps(event.value)))
    return by_key


def _member(team: TeamPresence, agent_id: str):
    return next(a for a in team.agents if a.agent_id == agent_id)


async def test_online_agent_and_assignments_are_published_per_team(
    chat, make_site, clients
) -> None:
    site = await make_site(
        teams=("sales", "support"),
        agents=[("pia", ["sales", "support"], 3), ("quinn", ["sales"], 3)],
    )
    pia, quinn = site.agent("pia"), site.agent("quinn")
    keys = {f"{site.site_id}:sales", f"{site.site_id}:support"}

    agent = await clients.agent(chat.a.url, pia)
    console = await agent.connect(chat.b.ws_url)
    await console.recv_until(frame_is("hello"))
    await agent.status("online", base=chat.b.url)

    def pia_has(open_chats: int):
        def done(events: list[Event]) -> bool:
            teams = _teams(events)
            return keys <= teams.keys() and all(
                any(
                    _member(t, pia.agent_id).status == "online"
                    and _member(t, pia.agent_id).open_chats == open_chats
                    for t in teams[key]
                )
                for key in keys
            )

        return done

    events = await read_events(
        chat.bootstrap,
        AGENTS_PRESENCE.name,
        match=lambda e: e.key in keys,
        until=pia_has(0),
    )
    teams = _teams(events)
    for key in keys:
        latest = teams[key][-1]
        assert latest.site_id == site.site_id
        assert f"{latest.site_id}:{latest.team}" == key
        me = _member(latest, pia.agent_id)
        assert (me.status, me.open_chats, me.max_chats, me.name) == ("online", 0, 3, pia.name)
    sales = teams[f"{site.site_id}:sales"][-1]
    support = teams[f"{site.site_id}:support"][-1]
    assert sorted(a.agent_id for a in sales.agents) == sorted([pia.agent_id, quinn.agent_id])
    assert _member(sales, quinn.agent_id).status == "offline"
    assert [a.agent_id for a in support.agents] == [pia.agent_id]

    # a conversation for support goes to pia: both of her teams say she has one open chat
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, team="support")
    assert started.status_code == 201
    assert started.json()["conversation"]["agent"]["name"] == pia.name

    events = await read_events(
        chat.bootstrap, AGENTS_PRESENCE.name, match=lambda e: e.key in keys, until=pia_has(1)
    )
    for key, records in _teams(events).items():
        assert _member(records[-1], pia.agent_id).open_chats == 1, key
    # and her own console (on B) hears of her new load
    changed = await console.recv_until(frame_is("agent", agent__open_chats=1))
    assert changed["agent"]["id"] == pia.agent_id
    assert changed["agent"]["status"] == "online"
