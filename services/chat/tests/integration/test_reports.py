"""Reports on real Postgres and a real broker: conversations made through the service's own
API (their clocks then moved into known places), orders written to `chat.activity` as the
activity consumer does, the figures and CSV the endpoints give, who may see what, and a
`rules.stats` record showing up in the rules report, named after the site's current rules."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.rule_stats import (
    rule_stats_key,
)
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import rules_record
from beckon_contracts.topics import RULES_CONFIG, RULES_STATS
from chat_testing import (
    GROUP_FORMED_TIMEOUT_S,
    eventually,
    produce,
    produce_events,
    tracking_event,
)
from samples import rule_stats_record

pytestmark = pytest.mark.integration


async def _chat(chat: Any, clients: Any, site: Any, agent: Any, *, reply: bool = True) -> str:
    """A visitor starts a chat (assigned to the online agent), the agent replies and closes."""
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Hello, is this in stock?")
    assert started.status_code == 201, started.text
    conversation = started.json()["conversation"]["id"]
    if reply:
        answer = await agent.post(f"/conversations/{conversation}/messages", {"text": "Yes!"})
        assert answer.status_code == 201, answer.text
    closed = await agent.post(f"/conversations/{conversation}/close")
    assert closed.status_code == 200, closed.text
    return str(conversation)


async def _place(db: Any, conversation: str, start: datetime, reply_after_s: float) -> str:
    """Move a conversation's clock: created/assigned at `start`, the visitor's message then,
    the agent's reply `reply_after_s` later, closed 10 minutes in. Returns the visitor id."""
    async with db.acquire() as conn, conn.transaction():
        visitor = await conn.fetchval(
            """UPDATE chat.conversations
               SET created_at = $2::timestamptz, assigned_at = $2::timestamptz,
                   closed_at = $2::timestamptz + interval '10 minutes'
               WHERE conversation_id = $1 RETURNING visitor_id""",
            conversation,
            start,
        )
        await conn.execute(
            """UPDATE chat.messages SET created_at = $2::timestamptz + CASE author
                   WHEN 'visitor' THEN interval '0 s'
                   WHEN 'agent' THEN make_interval(secs => $3::float8)
                   ELSE interval '1 s' END
               WHERE conversation_id = $1""",
            conversation,
            start,
            reply_after_s,
        )
        await conn.execute(
            """UPDATE chat.assignments SET started_at = $2::timestamptz,
                   ended_at = $2::timestamptz + interval '10 minutes'
               WHERE conversation_id = $1""",
            conversation,
            start,
        )
    return str(visitor)


async def _order(
    db: Any, site_id: str, visitor_id: str, at: datetime, value: str, currency: str
) -> None:
    await db.execute(
        """INSERT INTO chat.activity
               (event_id, site_id, visitor_id, type, occurred_at, value, currency, detail)
           VALUES ($1, $2, $3, 'order.completed', $4, $5::numeric, $6, $7::jsonb)""",
        uuid7(),
        site_id,
        visitor_id,
        at,
        value,
        currency,
        orjson.dumps({"order_id": f"order-{uuid7()}", "reported_by": "server"}).decode(),
    )


async def test_the_probes_browser_order_is_no_revenue_and_a_server_order_is(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    """Orders as the tracker publishes them, through the activity recorder, to the API."""
    site = await make_site(agents=[("ann", ["sales"], 5)], teams=("sales",))
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    buyer = await _place(
        db, await _chat(chat, clients, site, ann), datetime.now(UTC) - timedelta(hours=1), 30
    )

    def order(value: float, **context: Any) -> dict[str, Any]:
        payload = {"order_id": f"o-{uuid7()}", "value": value, "currency": "EUR"}
        event = tracking_event(site.site_id, buyer, "order_completed", payload)
        event["context"] |= context
        return event

    await produce_events(
        chat.bootstrap,
        [
            order(120.0, reported_by="server"),
            # the probe's: 999,999,999 EUR through the public snippet endpoint
            order(999_999_999, reported_by="browser", over_browser_cap=True),
            order(30.0, reported_by="browser"),
        ],
    )

    async def recorded() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM chat.activity WHERE site_id = $1 AND type = 'order.completed'",
            site.site_id,
        )
        return bool(count == 3)

    await eventually(recorded, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the orders recorded")
    assisted = (await ann.get("/reports/assisted")).json()
    assert (assisted["orders"], assisted["orders_assisted"]) == (1, 1)
    (eur,) = assisted["currencies"]
    assert (eur["currency"], eur["revenue"], eur["revenue_assisted"]) == ("EUR", 120.0, 120.0)
    browser = assisted["browser"]
    assert (browser["orders"], browser["over_cap"]) == (1, 1)
    assert [row["revenue"] for row in browser["currencies"]] == [30.0]
    (mine,) = (await ann.get("/reports/agents")).json()["agents"]
    assert (mine["orders"], mine["revenue"]) == (1, {"EUR": 120.0})
    exported = (await ann.get("/reports/assisted.csv")).text
    assert "999999999" not in exported
    assert "EUR,1,1,1.0,120.0,120.0,1.0,server" in exported
    assert "EUR,1,1,1.0,30.0,30.0,1.0,browser" in exported


async def test_agents_teams_and_assisted_figures_with_csv_and_permissions(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site = await make_site(
        agents=[("ann", ["sales"], 5), ("bob", ["sales", "support"], 5)],
        teams=("sales", "support"),
    )
    ann_id, bob_id = site.agent("ann").agent_id, site.agent("bob").agent_id
    await db.execute("UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", ann_id)
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    bob = await clients.agent(chat.b.url, site.agent("bob"))

    now = datetime.now(UTC)
    today = now.date()
    recent = now - timedelta(hours=1)
    old = now - timedelta(days=9)
    first = await _chat(chat, clients, site, ann)
    second = await _chat(chat, clients, site, ann)
    silent = await _chat(chat, clients, site, ann, reply=False)
    long_ago = await _chat(chat, clients, site, ann)
    buyer = await _place(db, first, recent, 40)
    await _place(db, second, recent + timedelta(minutes=5), 20)  # overlaps the first
    await _place(db, silent, recent + timedelta(minutes=30), 0)
    old_buyer = await _place(db, long_ago, old, 90)

    # the buyer orders twice after the chat; the old buyer orders beyond the 7-day window;
    # someone who never chatted orders in another currency
    await _order(db, site.site_id, buyer, recent + timedelta(minutes=20), "100.00", "EUR")
    await _order(db, site.site_id, buyer, recent + timedelta(minutes=40), "20.50", "EUR")
    await _order(db, site.site_id, old_buyer, now - timedelta(minutes=5), "79.50", "EUR")
    await _order(db, site.site_id, "never-chatted", now - timedelta(minutes=5), "300", "SEK")

    week = {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}
    answer = await ann.get("/reports/agents", params=week)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["period"] == week
    assert report["attribution_window_days"] == 7
    rows = {row["agent"]: row for row in report["agents"]}
    assert set(rows) == {ann_id, bob_id}
    mine = rows[ann_id]
    assert mine["name"] == "Ann"
    assert mine["conversations"] == 3  # the one 9 days ago is outside the week
    assert mine["unanswered"] == 1
    assert mine["first_response_median_s"] == pytest.approx(30.0, abs=0.01)  # 40 and 20
    assert mine["response_mean_s"] == pytest.approx(30.0, abs=0.01)
    assert mine["load_max"] == 2
    assert mine["orders"] == 2
    assert mine["revenue"] == {"EUR": 120.5}
    assert rows[bob_id]["conversations"] == 0
    assert rows[bob_id]["orders"] == 0

    # a longer period takes in the old chat and its late order (still outside its window)
    ten_days = {"from": (today - timedelta(days=10)).isoformat(), "to": today.isoformat()}
    longer = (await ann.get("/reports/agents", params=ten_days)).json()
    longer_row = next(row for row in longer["agents"] if row["agent"] == ann_id)
    assert longer_row["conversations"] == 4
    assert longer_row["orders"] == 2

    teams = (await ann.get("/reports/teams", params=week)).json()["teams"]
    by_team = {row["team"]: row for row in teams}
    assert by_team["sales"]["conversations"] == 3
    assert by_team["sales"]["members"] == 2
    assert by_team["sales"]["orders"] == 2
    assert by_team["support"]["conversations"] == 0

    assisted = (await bob.get("/reports/assisted", params=week)).json()
    assert assisted["orders"] == 4
    assert assisted["orders_assisted"] == 2
    assert assisted["orders_share"] == 0.5
    currencies = {row["currency"]: row for row in assisted["currencies"]}
    assert currencies["EUR"]["revenue"] == 200.0
    assert currencies["EUR"]["revenue_assisted"] == 120.5
    assert currencies["EUR"]["revenue_share"] == pytest.approx(120.5 / 200)
    assert currencies["SEK"]["revenue_assisted"] == 0.0

    # a plain agent sees their own row only, and neither teams nor rules
    own = (await bob.get("/reports/agents", params=week)).json()["agents"]
    assert [row["agent"] for row in own] == [bob_id]
    for path in ("/reports/teams", "/reports/rules", "/reports/teams.csv", "/reports/rules.csv"):
        refused = await bob.get(path)
        assert refused.status_code == 403, (path, refused.text)
    own_csv = await bob.get("/reports/agents.csv", params=week)
    assert ann_id not in own_csv.text

    # CSV: a header row, numbers unformatted, one column per currency
    exported = await ann.get("/reports/agents.csv", params=week)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="beckon-agents-{week["from"]}-{week["to"]}.csv"'
    )
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(table[0]) == [
        "agent",
        "name",
        "conversations",
        "unanswered",
        "first_response_median_s",
        "first_response_mean_s",
        "response_mean_s",
        "responses",
        "load_mean",
        "load_busy_mean",
        "load_max",
        "orders",
        "revenue_EUR",
    ]
    ann_line = next(line for line in table if line["agent"] == ann_id)
    assert (ann_line["conversations"], ann_line["orders"], ann_line["revenue_EUR"]) == (
        "3",
        "2",
        "120.5",
    )
    assisted_csv = await ann.get("/reports/assisted.csv", params=week)
    assert assisted_csv.text.splitlines()[0] == (
        "currency,orders,orders_assisted,orders_share,revenue,revenue_assisted,revenue_share,"
        "reported_by"
    )
    assert "SEK,1,0,0.0,300.0,0.0,0.0,server" in assisted_csv.text
    teams_csv = await ann.get("/reports/teams.csv", params=week)
    assert teams_csv.text.splitlines()[0].startswith("team,name,members,conversations,")


async def test_a_transfer_keeps_annas_first_response_and_gives_ben_his_own(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    """Ann answered in 5 s, then transferred the chat to Ben. The conversation row
    only names Ben, and the report showed Ann nothing and the chat as Ben's; now each stint
    counts for its own agent, first response and load."""
    site = await make_site(agents=[("ann", ["sales"], 5), ("ben", ["sales"], 5)])
    ann_id, ben_id = site.agent("ann").agent_id, site.agent("ben").agent_id
    await db.execute("UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", ann_id)
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Do these run small?")
    assert started.status_code == 201, started.text
    cid = started.json()["conversation"]["id"]
    assert (await ann.post(f"/conversations/{cid}/messages", {"text": "True to size"})).is_success
    ben = await clients.agent(chat.b.url, site.agent("ben"), online=True)
    moved = await ann.post(f"/conversations/{cid}/transfer", {"agent_id": ben_id})
    assert moved.status_code == 200, moved.text
    assert (await visitor.post(chat.a.url, "/messages", {"text": "And width?"})).is_success
    assert (await ben.post(f"/conversations/{cid}/messages", {"text": "Normal"})).is_success
    assert (await ben.post(f"/conversations/{cid}/close")).is_success

    stints = await db.fetch(
        """SELECT agent_id, how, ended_how FROM chat.assignments
           WHERE conversation_id = $1 ORDER BY started_at""",
        cid,
    )
    assert [tuple(row) for row in stints] == [
        (ann_id, "auto", "transfer"),
        (ben_id, "transfer", "closed"),
    ]
    # the clocks in known places: Ann from t to t+60 s, Ben from then to t+10 min
    t = datetime.now(UTC) - timedelta(hours=1)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE chat.conversations SET created_at = $2::timestamptz,
                   assigned_at = $2::timestamptz + interval '60 s',
                   closed_at = $2::timestamptz + interval '10 minutes'
               WHERE conversation_id = $1""",
            cid,
            t,
        )
        for agent_id, start, end in ((ann_id, 0, 60), (ben_id, 60, 600)):
            await conn.execute(
                """UPDATE chat.assignments
                   SET started_at = $3::timestamptz + make_interval(secs => $4),
                       ended_at = $3::timestamptz + make_interval(secs => $5)
                   WHERE conversation_id = $1 AND agent_id = $2""",
                cid,
                agent_id,
                t,
                float(start),
                float(end),
            )
        for seq, after_s in ((1, 0), (2, 5), (3, 65), (4, 80)):
            await conn.execute(
                """UPDATE chat.messages SET created_at = $3::timestamptz + make_interval(secs => $4)
                   WHERE conversation_id = $1 AND seq = $2""",
                cid,
                seq,
                t,
                float(after_s),
            )

    today = datetime.now(UTC).date()
    week = {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}
    rows = {
        row["agent"]: row
        for row in (await ann.get("/reports/agents", params=week)).json()["agents"]
    }
    assert (rows[ann_id]["conversations"], rows[ann_id]["unanswered"]) == (1, 0)
    assert rows[ann_id]["first_response_median_s"] == pytest.approx(5.0, abs=0.01)
    assert (rows[ben_id]["conversations"], rows[ben_id]["unanswered"]) == (1, 0)
    assert rows[ben_id]["first_response_median_s"] == pytest.approx(20.0, abs=0.01)
    assert rows[ann_id]["load_max"] == rows[ben_id]["load_max"] == 1
    assert rows[ben_id]["load_mean"] > rows[ann_id]["load_mean"] > 0  # 540 s against 60 s
    teams = (await ann.get("/reports/teams", params=week)).json()["teams"]
    [sales] = [row for row in teams if row["team"] == "sales"]
    assert (sales["conversations"], sales["unanswered"]) == (1, 0)
    assert sales["first_response_median_s"] == pytest.approx(5.0, abs=0.01)


async def test_migration_0012_gives_every_held_conversation_its_holders_stint(chat: Any) -> None:
    """A database from before assignment history: each conversation's latest holder becomes
    one stint, from its assignment to its close (open while the chat is), so the reports count
    what they counted before."""
    import asyncpg
    from chat.adapters import migrations
    from chat_testing import create_database, drop_database

    name, url = await create_database(chat.server_url, "chat_backfill")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE SCHEMA chat")
        await conn.execute(
            "CREATE TABLE chat.schema_migrations (version text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migrations.migration_files():
            if version >= "0012":
                break
            await conn.execute(sql)
            await conn.execute("INSERT INTO chat.schema_migrations VALUES ($1)", version)
        await conn.execute("INSERT INTO chat.sites (site_id, site_key) VALUES ('s', 'k')")
        await conn.execute(
            """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name)
               VALUES ('ann', 's', 'ann@example.com', '!', 'Ann')"""
        )
        t = datetime(2025, 3, 10, 12, tzinfo=UTC)
        rows = [  # id, agent, status, created, assigned, closed
            (uuid7(), "ann", "open", t, t + timedelta(seconds=30), None),
            (uuid7(), "ann", "closed", t, None, t + timedelta(minutes=5)),
            (uuid7(), None, "queued", t, None, None),
        ]
        for cid, agent, status, created, assigned, closed in rows:
            await conn.execute(
                """INSERT INTO chat.conversations (conversation_id, site_id, visitor_id, team,
                       agent_id, status, created_at, assigned_at, closed_at)
                   VALUES ($1, 's', $7, 'sales', $2, $3, $4, $5, $6)""",
                cid,
                agent,
                status,
                created,
                assigned,
                closed,
                str(cid),
            )
        assert await migrations.migrate(conn) == [
            version for version, _ in migrations.migration_files() if version >= "0012"
        ]
        stints = {
            row["conversation_id"]: tuple(row)[1:]
            for row in await conn.fetch(
                """SELECT conversation_id, agent_id, team, how, started_at, ended_at, ended_how
                   FROM chat.assignments"""
            )
        }
        assert stints == {
            rows[0][0]: ("ann", "sales", "backfill", t + timedelta(seconds=30), None, None),
            rows[1][0]: ("ann", "sales", "backfill", t, t + timedelta(minutes=5), "backfill"),
        }
    finally:
        await conn.close()
        await drop_database(chat.server_url, name)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2025-03-10", "to": "2025-03-01"}, "before"),
        ({"from": "2023-01-01", "to": "2025-03-01"}, "at most 366"),
        ({"from": "last week"}, "from must be a date"),
    ],
)
async def test_bad_periods_are_422s_that_say_why(
    chat: Any, clients: Any, params: dict[str, str], words: str
) -> None:
    from chat_testing import SHOP_A_SPEC

    alice = await clients.agent(chat.a.url, SHOP_A_SPEC.agent("alice"))
    answer = await alice.get("/reports/agents", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_period"
    assert words in answer.json()["detail"]


def _stats(site_id: str, rule_id: str, invited: int) -> bytes:
    return rule_stats_record(site_id, rule_id, invited, orders_invited=30, p_value=0.0014)


async def _rules(agent: Any, base: str) -> list[dict[str, Any]]:
    answer = await agent.get("/reports/rules", base=base)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rules"])


async def _until(check: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the rules report never showed the record")
        await asyncio.sleep(0.1)


async def test_a_rules_stats_record_shows_in_the_rules_report_on_every_instance(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    ann_id = site.agent("ann").agent_id
    await db.execute("UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", ann_id)
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    key = rule_stats_key(site.site_id, "second-look")
    await produce(chat.bootstrap, RULES_STATS.name, key, _stats(site.site_id, "second-look", 100))
    await produce(chat.bootstrap, RULES_STATS.name, key, _stats(site.site_id, "second-look", 200))
    other = rule_stats_key("shop-b", "not-yours")
    await produce(chat.bootstrap, RULES_STATS.name, other, _stats("shop-b", "not-yours", 10))
    # the site's current rules (as `beckon rules apply` publishes them) name the rule
    published = SiteRules.model_validate(
        {
            "site_id": site.site_id,
            "rules": [
                {
                    "id": "second-look",
                    "name": "Second look at a product",
                    "enabled": False,
                    "when": {"product_views": {"gte": 2}},
                    "message": "Still thinking about {product_name}?",
                }
            ],
        }
    )
    await produce(
        chat.bootstrap,
        RULES_CONFIG.name,
        site.site_id.encode(),
        rules_record(published).model_dump_json().encode(),
    )

    for instance in chat.instances:

        async def shows_latest(base: str = instance.url) -> bool:
            rules = await _rules(ann, base)
            return (
                bool(rules)
                and rules[0]["funnel"]["invited"] == 200
                and rules[0]["name"] is not None
            )

        await _until(shows_latest)
        [rule] = await _rules(ann, instance.url)  # one rule: the other site's is not here
        assert rule["rule_id"] == "second-look"
        assert rule["name"] == "Second look at a product"
        assert rule["enabled"] is False
        assert rule["funnel"]["eligible"] == 400
        assert rule["funnel"]["orders_invited"] == 30
        assert rule["uplift"]["significant"] is True
        assert rule["uplift"]["p_value"] == 0.0014

    exported = await ann.get("/reports/rules.csv")
    assert exported.status_code == 200
    lines = list(csv.reader(io.StringIO(exported.text)))
    assert lines[0][:6] == ["rule_id", "name", "enabled", "since", "updated_at", "eligible"]
    assert lines[1][:3] == ["second-look", "Second look at a product", "false"]
    assert lines[1][5] == "400"
