"""Teams, agents and site settings from the admin pages, on real chat instances: capacity
changes reach `agents.presence`; an invited agent sets a password once with their link; a
deactivated agent can't log in; site settings change what the widget gets."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from beckon_contracts.presence import TeamPresence, parse_team_presence
from beckon_contracts.sites import SiteConfig, parse_site_record
from beckon_contracts.topics import AGENTS_PRESENCE, SITES_CONFIG
from chat_testing import AgentSpec, Event, eventually, read_events

pytestmark = pytest.mark.integration


async def _site(chat: Any, make_site: Any, clients: Any, db: Any) -> tuple[Any, Any]:
    site = await make_site(
        teams=("sales", "support"), agents=[("ada", ["sales"], 5), ("ben", ["sales"], 3)]
    )
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", site.agent("ada").agent_id
        )
    return site, await clients.agent(chat.a.url, site.agent("ada"))


def _latest(events: list[Event], key: str) -> TeamPresence | None:
    mine = [e for e in events if e.key == key]
    return parse_team_presence(orjson.dumps(mine[-1].value)) if mine else None


async def _presence_until(chat: Any, key: str, check: Any) -> TeamPresence:
    def done(events: list[Event]) -> bool:
        latest = _latest(events, key)
        return latest is not None and bool(check(latest))

    events = await read_events(
        chat.bootstrap, AGENTS_PRESENCE.name, match=lambda e: e.key == key, until=done
    )
    latest = _latest(events, key)
    assert latest is not None
    return latest


async def test_teams_and_limits_reach_presence(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site, admin = await _site(chat, make_site, clients, db)
    ben = site.agent("ben")

    created = await admin.post("/admin/teams", {"team": "vip", "name": "VIP desk"})
    assert created.status_code == 201, created.text
    assert (await admin.post("/admin/teams", {"team": "vip", "name": "Again"})).status_code == 409
    bad = await admin.post("/admin/teams", {"team": "Not An Id", "name": "x"})
    assert bad.status_code == 422
    renamed = await admin.post("/admin/teams/vip", {"name": "VIP"})
    assert {t["team"]: t["name"] for t in renamed.json()["teams"]}["vip"] == "VIP"

    added = await admin.post("/admin/teams/vip/members", {"agent_id": ben.agent_id})
    assert added.status_code == 200, added.text
    vip = next(t for t in added.json()["teams"] if t["team"] == "vip")
    assert [m["id"] for m in vip["members"]] == [ben.agent_id]
    team = await _presence_until(
        chat, f"{site.site_id}:vip", lambda t: [a.agent_id for a in t.agents] == [ben.agent_id]
    )
    assert team.agents[0].max_chats == 3

    # a new limit is published for every team of the agent
    changed = await admin.post(f"/admin/agents/{ben.agent_id}", {"max_chats": 12})
    assert changed.status_code == 200, changed.text
    assert changed.json()["agent"]["max_chats"] == 12
    for name in ("sales", "vip"):
        await _presence_until(
            chat,
            f"{site.site_id}:{name}",
            lambda t: any(a.agent_id == ben.agent_id and a.max_chats == 12 for a in t.agents),
        )
    for limit in (0, 51, "many"):
        refused = await admin.post(f"/admin/agents/{ben.agent_id}", {"max_chats": limit})
        assert refused.status_code == 422, limit

    # his picture: what the widget shows beside his name (presence carries it to triggers)
    picture = "https://cdn.example/ben.png"
    pictured = await admin.post(f"/admin/agents/{ben.agent_id}", {"avatar_url": picture})
    assert pictured.json()["agent"]["avatar_url"] == picture
    await _presence_until(
        chat,
        f"{site.site_id}:sales",
        lambda t: any(a.agent_id == ben.agent_id and a.avatar_url == picture for a in t.agents),
    )
    for bad in ("javascript:alert(1)", 'https://x.test/"onerror=', "ftp://x.test/a.png"):
        refused = await admin.post(f"/admin/agents/{ben.agent_id}", {"avatar_url": bad})
        assert refused.status_code == 422, bad
    cleared = await admin.post(f"/admin/agents/{ben.agent_id}", {"avatar_url": ""})
    assert cleared.json()["agent"]["avatar_url"] is None

    # out of a team: the team is republished without him
    removed = await admin.post(f"/admin/teams/vip/members/{ben.agent_id}/remove", {})
    assert removed.status_code == 200
    await _presence_until(chat, f"{site.site_id}:vip", lambda t: t.agents == [])

    # the last admin can't stop being one
    me = await admin.post(f"/admin/agents/{admin.agent_id}", {"role": "agent"})
    assert me.status_code == 409
    assert me.json()["error"] == "last_admin"


async def test_an_invited_agent_sets_a_password_once_and_can_be_deactivated(
    chat: Any, make_site: Any, clients: Any, db: Any, http: httpx.AsyncClient
) -> None:
    site, admin = await _site(chat, make_site, clients, db)
    email = f"new@{site.site_id}.test"
    answer = await admin.post(
        "/admin/agents",
        {
            "name": "Nina Uusi",
            "email": email,
            "role": "agent",
            "teams": ["support"],
            "max_chats": 4,
        },
    )
    assert answer.status_code == 201, answer.text
    agent, invite = answer.json()["agent"], answer.json()["invite"]
    assert (agent["invite_pending"], agent["teams"], agent["max_chats"]) == (True, ["support"], 4)
    assert invite["path"] == f"/console/#set-password={invite['token']}"
    again = await admin.post("/admin/agents", {"name": "Twin", "email": email.upper()})
    assert again.status_code == 409

    async with db.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT token_hash FROM chat.agent_invites WHERE agent_id = $1", agent["id"]
        )
    assert invite["token"].encode() not in bytes(stored)  # only a hash is kept

    # no password yet: nothing logs in
    login = await http.post(
        f"{chat.a.url}/v1/console/login",
        json={"email": email, "password": "!"},
        headers={"Origin": chat.a.url},
    )
    assert login.status_code == 401

    accept = f"{chat.b.url}/v1/console/invite/accept"
    origin = {"Origin": chat.b.url}
    weak = await http.post(
        accept, json={"token": invite["token"], "password": "short"}, headers=origin
    )
    assert weak.status_code == 422
    cross = await http.post(
        accept,
        json={"token": invite["token"], "password": "a fine new password"},
        headers={"Origin": "http://evil.test"},
    )
    assert cross.status_code == 403
    done = await http.post(
        accept, json={"token": invite["token"], "password": "a fine new password"}, headers=origin
    )
    assert done.status_code == 200, done.text
    assert done.json()["email"] == email
    reused = await http.post(
        accept, json={"token": invite["token"], "password": "another password!"}, headers=origin
    )
    assert reused.status_code == 410

    spec = AgentSpec(agent["id"], email, "Nina Uusi", ("support",), 4, "a fine new password")
    nina = await clients.agent(chat.a.url, spec)
    assert (await nina.get("/me")).status_code == 200
    assert (await nina.get("/admin/agents")).status_code == 403

    # deactivated: out of the team, offline, and the password no longer works
    off = await admin.post(f"/admin/agents/{agent['id']}/deactivate", {})
    assert off.status_code == 200, off.text
    assert off.json()["agent"]["active"] is False
    assert off.json()["agent"]["teams"] == []
    login = await http.post(
        f"{chat.a.url}/v1/console/login",
        json={"email": email, "password": "a fine new password"},
        headers={"Origin": chat.a.url},
    )
    assert login.status_code == 401
    await _presence_until(
        chat,
        f"{site.site_id}:support",
        lambda t: all(a.agent_id != agent["id"] for a in t.agents),
    )
    assert (await admin.post(f"/admin/agents/{admin.agent_id}/deactivate", {})).status_code == 409

    # the session she already had ends too (each instance re-checks within seconds)
    async def session_refused() -> bool:
        return (await nina.get("/me")).status_code == 401

    await eventually(session_refused, timeout_s=30, what="the deactivated agent's session ends")


async def test_site_settings_change_what_the_widget_gets(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site, admin = await _site(chat, make_site, clients, db)
    visitor = clients.visitor(site)
    before = await visitor.session(chat.a.url)
    assert before.status_code == 200
    assert before.json()["site"]["greeting"] == f"Hello from {site.site_id}"

    # invalid fields come back located; nothing is saved
    refused = await admin.post(
        "/admin/site",
        {"color": "blue", "allowed_origins": ["https://ok.test", "ftp://x"], "greeting": "Hei!"},
    )
    assert refused.status_code == 422
    locs = {e["loc"] for e in refused.json()["errors"]}
    assert locs == {"color", "allowed_origins"}
    assert (await visitor.session(chat.a.url)).json()["site"][
        "greeting"
    ] == f"Hello from {site.site_id}"
    hours = await admin.post("/admin/site", {"business_hours": {"mon": ["17:00-09:00"]}})
    assert hours.status_code == 422
    assert hours.json()["errors"][0]["loc"] == "business_hours.mon[0]"

    new_origin = "https://shop.example:8443"
    saved = await admin.post(
        "/admin/site",
        {
            "greeting": "  Hei!   Kysy meiltä  ",
            "color": "#AA3355",
            "typing_preview": False,
            "allowed_origins": [site.origin, new_origin + "/"],
            "timezone": "Europe/Helsinki",
            "business_hours": {"mon": ["09:00-17:00"], "tue": "9:00-17:00"},
        },
    )
    assert saved.status_code == 200, saved.text
    settings = saved.json()["site"]
    assert settings["allowed_origins"] == [site.origin, new_origin]
    assert settings["business_hours"]["tue"] == ["09:00-17:00"]
    assert (await admin.get("/admin/site", base=chat.b.url)).json()["site"] == settings

    after = await visitor.session(chat.b.url)
    widget = after.json()["site"]
    assert (widget["greeting"], widget["color"], widget["typing_preview"]) == (
        "Hei! Kysy meiltä",
        "#aa3355",
        False,
    )
    elsewhere = clients.visitor(site, origin=new_origin)
    assert (await elsewhere.session(chat.a.url)).status_code == 200
    stranger = clients.visitor(site, origin="https://other.example")
    assert (await stranger.session(chat.a.url)).status_code == 403

    # the whole site is published on sites.config (the tracker's origins, the workers'
    # timezone and hours), its version growing with every change
    config = await _site_config_until(
        chat, site.site_id, lambda c: c.allowed_origins == [site.origin, new_origin]
    )
    assert (config.site_key, config.timezone) == (site.site_key, "Europe/Helsinki")
    assert config.business_hours is not None
    assert config.business_hours.tue == ["09:00-17:00"]
    assert config.settings["greeting"] == "Hei! Kysy meiltä"
    assert "timezone" not in config.settings
    again = await admin.post("/admin/site", {"allowed_origins": [site.origin]})
    assert again.status_code == 200, again.text
    later = await _site_config_until(
        chat, site.site_id, lambda c: c.allowed_origins == [site.origin]
    )
    assert later.version == config.version + 1
    assert later.timezone == "Europe/Helsinki"  # what the change left out stays


async def _site_config_until(chat: Any, site_id: str, check: Any) -> SiteConfig:
    def latest(events: list[Event]) -> SiteConfig | None:
        return parse_site_record(orjson.dumps(events[-1].value)) if events else None

    def done(events: list[Event]) -> bool:
        config = latest(events)
        return config is not None and bool(check(config))

    events = await read_events(
        chat.bootstrap, SITES_CONFIG.name, key=site_id, match=lambda e: True, until=done
    )
    config = latest(events)
    assert config is not None
    return config


async def test_saving_site_settings_leaves_the_rules_alone(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    """Saving the Site form (an origin added) republished the rules with the form's
    timezone, UTC, and an open rules editor then got "Someone published a newer version"."""
    site, admin = await _site(chat, make_site, clients, db)
    published = await admin.post(
        "/admin/rules/publish",
        {
            "rules": {
                "timezone": "Europe/Paris",
                "business_hours": {"mon": ["09:00-18:00"]},
                "rules": [{"id": "r", "name": "R", "when": {"returning": True}, "message": "Hi"}],
            }
        },
    )
    assert published.status_code == 200, published.text
    version = published.json()["version"]

    # the console shows the rules' timezone and hours, and posts the whole form back
    shown = (await admin.get("/admin/site")).json()["site"]
    assert (shown["timezone"], shown["timezone_source"]) == ("Europe/Paris", "rules")
    assert shown["business_hours"]["mon"] == ["09:00-18:00"]
    form = {
        key: shown[key]
        for key in ("greeting", "color", "typing_preview", "language", "offline_message")
    }
    form |= {
        "allowed_origins": [*shown["allowed_origins"], "https://new-shop.example"],
        "default_team": "sales",
        "timezone": shown["timezone"],
        "business_hours": shown["business_hours"],
    }
    saved = await admin.post("/admin/site", form)
    assert saved.status_code == 200, saved.text

    rules = (await admin.get("/admin/rules")).json()
    assert rules["version"] == version  # nothing republished: the editor is not stale
    assert rules["rules"]["timezone"] == "Europe/Paris"
    assert rules["rules"]["business_hours"]["mon"] == ["09:00-18:00"]
    async with db.acquire() as conn:
        versions = await conn.fetchval(
            "SELECT count(*) FROM chat.rule_versions WHERE site_id = $1", site.site_id
        )
        settings = orjson.loads(
            await conn.fetchval("SELECT settings FROM chat.sites WHERE site_id = $1", site.site_id)
        )
    assert versions == 1
    assert "timezone" not in settings  # nor pinned on the site: the rules still decide
    assert "business_hours" not in settings
    config = await _site_config_until(
        chat, site.site_id, lambda c: "https://new-shop.example" in c.allowed_origins
    )
    assert (config.timezone, config.business_hours) == (None, None)

    # a real change of the site's timezone is the site's, still without touching the rules
    moved = await admin.post("/admin/site", form | {"timezone": "Europe/Helsinki"})
    assert moved.json()["site"]["timezone_source"] == "site"
    assert (await admin.get("/admin/rules")).json()["version"] == version
    config = await _site_config_until(chat, site.site_id, lambda c: c.timezone == "Europe/Helsinki")
