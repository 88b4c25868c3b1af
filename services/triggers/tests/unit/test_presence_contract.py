import orjson
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import (
    AgentPresence,
    TeamPresence,
    parse_team_presence,
    presence_key,
)
from pydantic import ValidationError


def _agent(**overrides):
    return {
        "agent_id": "a1",
        "name": "Jana",
        "avatar_url": "https://cdn.example/jana.png",
        "status": "online",
        "open_chats": 2,
    } | overrides


def _record(**overrides):
    return {
        "event_id": str(uuid7()),
        "type": "agents.presence",
        "occurred_at": "2026-11-23T10:00:00Z",
        "site_id": "demo",
        "team": "sales",
        "agents": [_agent(), _agent(agent_id="a2", name="Petr", status="away", avatar_url=None)],
    } | overrides


def test_parses_a_team_record():
    presence = parse_team_presence(orjson.dumps(_record()))
    assert isinstance(presence, TeamPresence)
    assert presence.team == "sales"
    assert [agent.agent_id for agent in presence.agents] == ["a1", "a2"]
    assert presence.agents[0].max_chats == 5  # default limit
    assert presence.agents[1].avatar_url is None


def test_round_trips_through_json():
    presence = parse_team_presence(orjson.dumps(_record()))
    assert parse_team_presence(presence.model_dump_json()) == presence


def test_free_slots_count_only_online_agents():
    assert AgentPresence.model_validate(_agent(open_chats=2, max_chats=5)).free_slots == 3
    assert AgentPresence.model_validate(_agent(open_chats=7, max_chats=5)).free_slots == 0
    assert AgentPresence.model_validate(_agent(status="away", open_chats=0)).free_slots == 0


def test_an_empty_team_is_valid():
    assert parse_team_presence(orjson.dumps(_record(agents=[]))).agents == []


def test_key_is_site_and_team():
    assert presence_key("demo", "sales") == b"demo:sales"


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "agents.status"},
        {"team": "has space"},
        {"agents": [_agent(status="busy")]},
        {"agents": [_agent(open_chats=-1)]},
        {"agents": [_agent(max_chats=0)]},
        {"agents": [_agent(max_chats=51)]},
        {"agents": [_agent(name="")]},
        {"agents": [_agent(name="x" * 81)]},
        {"agents": [_agent(avatar_url="ftp://cdn.example/a.png")]},
        {"agents": [_agent(avatar_url="javascript:alert(1)")]},
        {"agents": [_agent(avatar_url="https://" + "a" * 2048)]},
        {"agents": [_agent(), _agent()]},  # the same agent twice
        {"agents": [_agent(agent_id=f"a{i}") for i in range(501)]},
        {"agents": [_agent(extra=1)]},
        {"site_id": "Not A Site"},
        {"occurred_at": "2026-11-23T10:00:00"},
    ],
)
def test_rejects_invalid_records(bad):
    with pytest.raises(ValidationError):
        parse_team_presence(orjson.dumps(_record(**bad)))


def test_rejects_malformed_json():
    with pytest.raises(ValidationError):
        parse_team_presence(b"{not json")
