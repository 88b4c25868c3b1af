"""The rules editor's API on real chat instances, Postgres and the broker: publishing lands on
`rules.config` exactly as `beckon rules apply` publishes, with an audit trail; invalid rules
come back located and publish nothing; plain agents are refused."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import parse_rules_record, rules_record
from beckon_contracts.topics import RULES_CONFIG
from chat_testing import Event, produce, read_events, unique

pytestmark = pytest.mark.integration

CART_RULE = {
    "id": "big-cart",
    "name": "Big cart",
    "priority": 10,
    "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte": 150}}]},
    "message": "Free shipping over 150 € - questions about your {cart_value} order?",
    "limits": {"once_per": "session", "cooldown": "10m"},
}


async def admin_and_agent(chat: Any, make_site: Any, clients: Any, db: Any) -> tuple[Any, Any, Any]:
    site = await make_site(
        teams=("sales", "support"), agents=[("ada", ["sales"], 5), ("ben", ["sales"], 3)]
    )
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", site.agent("ada").agent_id
        )
    admin = await clients.agent(chat.a.url, site.agent("ada"))
    agent = await clients.agent(chat.a.url, site.agent("ben"))
    return site, admin, agent


def _document(site_id: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"site_id": site_id, "timezone": "Europe/Helsinki", "rules": list(rules)}


async def _records(bootstrap: str, site_id: str, until: Any) -> list[Event]:
    return await read_events(bootstrap, RULES_CONFIG.name, key=site_id, until=until)


async def test_publishing_lands_on_rules_config_as_the_cli_does(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site, admin, _ = await admin_and_agent(chat, make_site, clients, db)
    start = await admin.get("/admin/rules")
    assert start.status_code == 200, start.text
    assert (start.json()["version"], start.json()["source"]) == (0, "none")
    assert start.json()["rules"]["rules"] == []

    answer = await admin.post("/admin/rules/publish", {"rules": _document(site.site_id, CART_RULE)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1

    # one record, key site_id, a `rules.published` envelope: what `beckon rules apply` sends
    events = await _records(chat.bootstrap, site.site_id, until=lambda found: len(found) >= 1)
    record = events[-1]
    assert record.key == site.site_id
    assert record.value["type"] == "rules.published"
    assert record.value["site_id"] == site.site_id
    published = parse_rules_record(orjson.dumps(record.value))
    expected = SiteRules.model_validate({**_document(site.site_id, CART_RULE), "version": 1})
    assert published == expected
    cli_shape = orjson.loads(rules_record(expected).model_dump_json())
    assert set(record.value) == set(cli_shape)

    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM chat.rule_versions WHERE site_id = $1 AND version = 1", site.site_id
        )
    assert row["published_by"] == admin.agent_id
    assert row["published_by_name"] == "Ada"

    # every instance shows it, with who published it and when
    current = (await admin.get("/admin/rules", base=chat.b.url)).json()
    assert current["version"] == 1
    assert current["source"] == "console"
    assert current["published"]["by"]["name"] == "Ada"
    assert current["rules"]["rules"][0]["id"] == "big-cart"
    assert [v["version"] for v in current["history"]] == [1]

    # `beckon rules apply` publishes v5: the console reads it back as the current rules
    cli = SiteRules.model_validate(
        {"site_id": site.site_id, "version": 5, "rules": [{**CART_RULE, "id": "from-cli"}]}
    )
    await produce(
        chat.bootstrap,
        RULES_CONFIG.name,
        site.site_id.encode(),
        rules_record(cli).model_dump_json().encode(),
    )
    deadline = time.monotonic() + 30
    while True:
        current = (await admin.get("/admin/rules")).json()
        if current["version"] == 5:
            break
        assert time.monotonic() < deadline, current
        await asyncio.sleep(0.2)
    assert current["source"] == "cli"
    assert current["published"] is None
    assert [rule["id"] for rule in current["rules"]["rules"]] == ["from-cli"]

    # an edit started from v1 is stale now; one from v5 becomes v6
    stale = await admin.post(
        "/admin/rules/publish", {"rules": _document(site.site_id, CART_RULE), "base_version": 1}
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "stale_rules"
    fresh = await admin.post(
        "/admin/rules/publish", {"rules": _document(site.site_id, CART_RULE), "base_version": 5}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] == 6
    events = await _records(
        chat.bootstrap,
        site.site_id,
        until=lambda found: any(e.value["payload"]["version"] == 6 for e in found),
    )
    assert [e.value["payload"]["version"] for e in events] == [1, 5, 6]


async def test_invalid_rules_come_back_located_and_nothing_is_published(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site, admin, _ = await admin_and_agent(chat, make_site, clients, db)
    bad_value = {
        **CART_RULE,
        "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte": "lots"}}]},
    }
    typo = {**CART_RULE, "id": "typo", "when": {"page_typ": "cart"}}
    duplicate = {**CART_RULE, "message": "Hi {agent}"}
    document = _document(site.site_id, bad_value, typo, duplicate)

    answer = await admin.post("/admin/rules/validate", {"rules": document})
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is False
    locs = {error["loc"]: error["msg"] for error in body["errors"]}
    assert "rules[0].when.all[1].cart_value.gte" in locs
    assert "page_type" in locs["rules[1].when"]  # "did you mean 'page_type'?"
    assert "unknown variable {agent}" in locs["rules[2].message"]

    # one rule alone is located under `rule`
    answer = await admin.post("/admin/rules/validate", {"rule": bad_value})
    assert answer.json()["errors"][0]["loc"] == "rule.when.all[1].cart_value.gte"
    # a good one is fine; two rules with one id name the second one's id
    assert (await admin.post("/admin/rules/validate", {"rule": CART_RULE})).json() == {
        "ok": True,
        "errors": [],
    }
    twice = await admin.post(
        "/admin/rules/validate", {"rules": _document(site.site_id, CART_RULE, CART_RULE)}
    )
    assert twice.json()["errors"][0]["loc"] == "rules[1].id"

    refused = await admin.post("/admin/rules/publish", {"rules": document})
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_rules"
    assert {e["loc"] for e in refused.json()["errors"]} == set(locs)
    other_site = await admin.post("/admin/rules/publish", {"rules": _document("shop-b", CART_RULE)})
    assert other_site.status_code == 422
    assert other_site.json()["errors"][0]["loc"] == "site_id"

    # whatever is posted, the answer is an answer, never a 500
    for weird in (
        None,
        [],
        "rules",
        {"rules": None},
        {"rules": {"rules": "x"}},
        {"rules": {"rules": [None, 1, "x", []]}},
        {"rules": {"rules": [{"id": "Bad Id!", "when": {}, "message": ""}]}},
        {"rules": {"rules": [{**CART_RULE, "when": {"all": [{"not": {"all": []}}]}}]}},
        {"rules": {"timezone": "Mars/Olympus", "rules": []}},
        {"rule": {"when": {"all": [{"all": [{"any": [{"not": {"url": {"regex": "("}}}]}]}]}}},
        {"rules": {"rules": [{"when": {"all": [{"all": [{"all": 1}]}] * 3}}] * 3}},
        {"rule": {"when": _nested(500)}},
    ):
        for path in ("/admin/rules/validate", "/admin/rules/publish", "/admin/rules/preview"):
            answer = await admin.post(path, weird)
            assert answer.status_code < 500, (path, weird, answer.text)

    async with db.acquire() as conn:
        versions = await conn.fetchval(
            "SELECT count(*) FROM chat.rule_versions WHERE site_id = $1", site.site_id
        )
        outbox = await conn.fetchval(
            "SELECT count(*) FROM chat.outbox WHERE topic = $1 AND key = $2",
            RULES_CONFIG.name,
            site.site_id.encode(),
        )
    assert (versions, outbox) == (0, 0)


def _nested(levels: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"page_type": "cart"}
    for _ in range(levels):
        condition = {"not": condition}
    return condition


async def test_the_preview_renders_as_a_visitor_reads_it(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    _, admin, _ = await admin_and_agent(chat, make_site, clients, db)
    rule = {**CART_RULE, "message": "Hi {visitor_name}! {agent_name} here: {{{cart_value}}}"}
    answer = await admin.post("/admin/rules/preview", {"rule": rule, "sample": {"cart_value": 99}})
    assert answer.status_code == 200
    assert answer.json()["text"] == "Hi Maria! Ada here: {99}"
    assert answer.json()["variables"] == ["visitor_name", "agent_name", "cart_value"]
    unknown = await admin.post("/admin/rules/preview", {"message": "About {product}?"})
    assert unknown.json()["ok"] is False
    assert unknown.json()["errors"][0]["loc"] == "message"
    assert "product_name" in unknown.json()["errors"][0]["msg"]


async def test_plain_agents_and_strangers_are_refused(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site, _, agent = await admin_and_agent(chat, make_site, clients, db)
    document = {"rules": _document(site.site_id, CART_RULE)}
    gets = ("/admin/rules", "/admin/teams", "/admin/agents", "/admin/site")
    posts = (
        "/admin/rules/validate",
        "/admin/rules/preview",
        "/admin/rules/backtest",
        "/admin/rules/publish",
        "/admin/teams",
        "/admin/agents",
        f"/admin/agents/{agent.agent_id}",
        f"/admin/agents/{agent.agent_id}/deactivate",
        "/admin/site",
    )
    for path in gets:
        assert (await agent.get(path)).status_code == 403, path
    for path in posts:
        answer = await agent.post(path, document)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "not_admin"
    stranger = await agent.http.get(f"{chat.a.url}/v1/console/admin/rules")
    assert stranger.status_code == 401
    async with db.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM chat.rule_versions WHERE site_id = $1", site.site_id
        )
    assert count == 0


async def test_a_backtest_without_triggers_is_a_clear_503(
    chat: Any, make_site: Any, clients: Any, db: Any, tmp_path: Any
) -> None:
    from beckon_devstack.ports import free_port
    from chat_testing import start_chat, stop_chat

    site, _, _ = await admin_and_agent(chat, make_site, clients, db)
    lonely = await start_chat(
        unique("no-triggers"),
        database_url=chat.database_url,
        bootstrap=chat.bootstrap,
        log_dir=tmp_path,
        CHAT_TRIGGERS_URL=f"http://127.0.0.1:{free_port()}",
    )
    try:
        admin = await clients.agent(lonely.url, site.agent("ada"))
        answer = await admin.post(
            "/admin/rules/backtest", {"rules": _document(site.site_id, CART_RULE), "hours": 24}
        )
        assert answer.status_code == 503
        assert answer.json()["error"] == "triggers_unavailable"
        # invalid rules are refused before anything is asked of triggers
        answer = await admin.post(
            "/admin/rules/backtest", {"rules": _document(site.site_id, {"id": "x"}), "hours": 24}
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"].startswith("rules[0].")
    finally:
        stop_chat(lonely)


async def test_a_backtest_carries_the_triggers_token(
    chat: Any, make_site: Any, clients: Any, db: Any, tmp_path: Any
) -> None:
    """The worker's API answers only to its internal token: chat sends CHAT_TRIGGERS_TOKEN, and
    without one (outside dev) says so instead of asking."""
    from aiohttp import web
    from beckon_devstack.ports import free_port
    from chat_testing import start_chat, stop_chat

    token = "chat-tests-triggers-token-5b7e0c"
    seen: list[str] = []

    async def fake_backtest(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"site_id": (await request.json())["rules"]["site_id"]})

    app = web.Application()
    app.router.add_post("/v1/backtest", fake_backtest)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    site, untokened, _ = await admin_and_agent(chat, make_site, clients, db)
    body = {"rules": _document(site.site_id, CART_RULE), "hours": 24}
    tokened = await start_chat(
        unique("triggers-token"),
        database_url=chat.database_url,
        bootstrap=chat.bootstrap,
        log_dir=tmp_path,
        CHAT_TRIGGERS_URL=f"http://127.0.0.1:{port}",
        CHAT_TRIGGERS_TOKEN=token,
    )
    try:
        admin = await clients.agent(tokened.url, site.agent("ada"))
        answer = await admin.post("/admin/rules/backtest", body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"site_id": site.site_id}
        assert seen == [f"Bearer {token}"]
        # the fixture's instances run as `test` with no token: nothing is sent, and it says why
        answer = await untokened.post("/admin/rules/backtest", body)
        assert answer.status_code == 503
        assert "CHAT_TRIGGERS_TOKEN" in answer.json()["detail"]
        assert len(seen) == 1
    finally:
        stop_chat(tokened)
        await runner.cleanup()
