"""Agents' logins and sessions against an attacker: one normal form of an address,
failed logins limited per client address and per account from that address (a stranger can
neither lock an agent out nor spray one password over a site), sessions that end on logout,
a new password or deactivation (on every instance and on the open console socket), live chats
that only their agent or an admin transfers, no redirect built from the Host header, and an
invitation that does not say another site has the address."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from chat.adapters import migrations
from chat_testing import (
    AgentSpec,
    create_database,
    drop_database,
    eventually,
    frame_is,
)

pytestmark = pytest.mark.integration


def _address() -> str:
    """A loopback address of its own: Linux routes all of 127/8 to `lo`, so requests from it
    reach the instance as another machine's would (no forwarded-for header needed)."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@pytest.fixture
async def machines() -> AsyncIterator[Any]:
    """`machines()`: an HTTP client on a fresh client address each call."""
    made: list[httpx.AsyncClient] = []

    def machine() -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=_address())
        client = httpx.AsyncClient(timeout=30.0, transport=transport)
        made.append(client)
        return client

    try:
        yield machine
    finally:
        for client in made:
            await client.aclose()


async def _login(client: httpx.AsyncClient, base: str, email: str, password: str) -> Any:
    return await client.post(
        f"{base}/v1/console/login",
        json={"email": email, "password": password},
        headers={"Origin": base},
    )


async def _admin(make_site: Any, db: Any, *agents: tuple[str, list[str], int]) -> Any:
    site = await make_site(teams=("sales", "support"), agents=[("ada", ["sales"], 5), *agents])
    await db.execute(
        "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", site.agent("ada").agent_id
    )
    return site


# --- addresses and login limits -------------------------------------------------------------


async def test_an_address_is_one_account_and_one_limit_in_any_spelling(
    chat: Any, make_site: Any, machines: Any
) -> None:
    site = await make_site(agents=[("cecilia", ["sales"], 5)])
    agent = site.agent("cecilia")
    local, domain = agent.email.split("@")
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in local.upper())
    for spelling in (agent.email.upper(), f"  {full_width}@{domain.title()} "):
        answer = await _login(machines(), chat.a.url, spelling, agent.password)
        assert answer.status_code == 200, (spelling, answer.text)
        assert answer.json()["agent"]["id"] == agent.agent_id
    # a dotted capital I is another address, never Cecilia's
    dotted = await _login(machines(), chat.a.url, f"cec\u0130lia@{domain}".upper(), agent.password)
    assert (dotted.status_code, dotted.json()["error"]) == (401, "bad_credentials")

    # guesses in one spelling limit every spelling (from that address)
    guesser = machines()
    statuses = await _guess_until_refused(guesser, chat.a.url, agent.email)
    assert statuses[:10] == [401] * 10, statuses
    for spelling in (agent.email.upper(), f"{full_width}@{domain}"):
        answer = await _login(guesser, chat.a.url, spelling, agent.password)
        assert answer.status_code == 429, (spelling, answer.text)
        assert answer.json()["error"] == "rate_limited"


async def _guess_until_refused(client: httpx.AsyncClient, base: str, email: str) -> list[int]:
    """Wrong passwords until the first 429 (tokens refill while argon2 runs, so a few more
    than the burst of 10 may be answered): the statuses."""
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 40:
        statuses.append((await _login(client, base, email, f"guess-{len(statuses)}")).status_code)
    assert statuses[-1] == 429, statuses
    return statuses


async def test_a_stranger_guessing_elsewhere_cannot_lock_the_agent_out(
    chat: Any, make_site: Any, machines: Any
) -> None:
    site = await make_site(agents=[("guarded", ["sales"], 5)])
    agent = site.agent("guarded")
    statuses = await _guess_until_refused(machines(), chat.a.url, agent.email)
    assert statuses[:10] == [401] * 10, statuses
    # the agent at her own desk logs in, on the instance the stranger hammers
    mine = await _login(machines(), chat.a.url, agent.email, agent.password)
    assert mine.status_code == 200, mine.text


async def test_one_password_sprayed_over_many_accounts_is_slowed(
    chat: Any, make_site: Any, machines: Any
) -> None:
    site = await make_site(agents=[(f"a{n}", ["sales"], 5) for n in range(30)])
    sprayer = machines()
    statuses = [
        (await _login(sprayer, chat.a.url, agent.email, "Summer2024!")).status_code
        for agent in site.agents
    ]
    # the burst of 20 is answered honestly (tokens refill meanwhile), then 429s
    assert statuses[:20] == [401] * 20, statuses
    assert 429 in statuses, statuses
    assert set(statuses) == {401, 429}, statuses
    # the accounts themselves are not locked: their agents log in from their own machines
    first = site.agents[0]
    assert (await _login(machines(), chat.a.url, first.email, first.password)).status_code == 200


async def test_the_migration_stores_existing_addresses_in_their_normal_form(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = migrations.migration_files()
    before = [(v, sql) for v, sql in shipped if v < "0011"]
    name, url = await create_database(database_url, "chat_emails")
    try:
        conn = await asyncpg.connect(url)
        try:
            monkeypatch.setattr(migrations, "migration_files", lambda: before)
            await migrations.migrate(conn)
            await conn.execute(
                "INSERT INTO chat.sites (site_id, site_key, name) VALUES ('s', 'pk_s_12345', 's')"
            )
            for agent_id, email in (
                ("s-anna", "Anna.Virtanen@Example.COM"),
                ("s-ben", "\uff22\uff25\uff2e@example.com"),  # full-width BEN
                ("s-cecilia", "cecilia@example.com"),
            ):
                await conn.execute(
                    """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name)
                       VALUES ($1, 's', $2, '!', $1)""",
                    agent_id,
                    email,
                )
            monkeypatch.setattr(migrations, "migration_files", lambda: shipped)
            assert "0011_sessions_and_emails" in await migrations.migrate(conn)
            rows = await conn.fetch("SELECT agent_id, email FROM chat.agents ORDER BY agent_id")
            assert [(r["agent_id"], r["email"]) for r in rows] == [
                ("s-anna", "anna.virtanen@example.com"),
                ("s-ben", "ben@example.com"),
                ("s-cecilia", "cecilia@example.com"),
            ]
            with pytest.raises(asyncpg.UniqueViolationError):  # one address, one agent
                await conn.execute(
                    """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name)
                       VALUES ('s-x', 's', 'ben@example.com', '!', 'x')"""
                )
        finally:
            await conn.close()
    finally:
        await drop_database(database_url, name)


async def test_addresses_that_become_one_stop_the_migration_naming_both(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = migrations.migration_files()
    name, url = await create_database(database_url, "chat_emails")
    try:
        conn = await asyncpg.connect(url)
        try:
            monkeypatch.setattr(
                migrations, "migration_files", lambda: [m for m in shipped if m[0] < "0011"]
            )
            await migrations.migrate(conn)
            await conn.execute(
                "INSERT INTO chat.sites (site_id, site_key, name) VALUES ('s', 'pk_s_12345', 's')"
            )
            for agent_id, email in (("s-one", "strasse@x.test"), ("s-two", "straße@x.test")):
                await conn.execute(
                    """INSERT INTO chat.agents (agent_id, site_id, email, password_hash, name)
                       VALUES ($1, 's', $2, '!', $1)""",
                    agent_id,
                    email,
                )
            monkeypatch.setattr(migrations, "migration_files", lambda: shipped)
            with pytest.raises(RuntimeError, match="'s-one' and 's-two'"):
                await migrations.migrate(conn)
            # nothing of 0011 stayed: fix the data, migrate again
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM chat.schema_migrations WHERE version LIKE '0011%'"
                )
                == 0
            )
        finally:
            await conn.close()
    finally:
        await drop_database(database_url, name)


# --- transfers ------------------------------------------------------------------------------


async def test_only_the_chats_agent_or_an_admin_transfers_a_live_chat(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site = await _admin(make_site, db, ("ann", ["sales"], 5), ("ben", ["sales"], 5))
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Hello?")
    cid = started.json()["conversation"]["id"]
    ben = await clients.agent(chat.b.url, site.agent("ben"), online=True)
    ada = await clients.agent(chat.a.url, site.agent("ada"), online=True)

    async def holder() -> tuple[str, str]:
        row = await db.fetchrow(
            "SELECT status, agent_id FROM chat.conversations WHERE conversation_id = $1",
            UUID(cid),
        )
        return row["status"], row["agent_id"]

    assert await holder() == ("open", ann.agent_id)
    # Ben takes Ann's live chat, or sends it back to the queue: refused, nothing changes
    for body in ({"agent_id": ben.agent_id}, {"team": "sales"}, {"agent_id": ada.agent_id}):
        answer = await ben.post(f"/conversations/{cid}/transfer", body)
        assert answer.status_code == 403, (body, answer.text)
        assert answer.json()["error"] == "transfer_not_allowed"
        assert await holder() == ("open", ann.agent_id)
    # Ann hands it to Ben; Ben (now its agent) back to Ann; the admin moves it to Ben
    moved = await ann.post(f"/conversations/{cid}/transfer", {"agent_id": ben.agent_id})
    assert moved.status_code == 200, moved.text
    back = await ben.post(f"/conversations/{cid}/transfer", {"agent_id": ann.agent_id})
    assert back.status_code == 200, back.text
    by_admin = await ada.post(f"/conversations/{cid}/transfer", {"agent_id": ben.agent_id})
    assert by_admin.status_code == 200, by_admin.text
    assert await holder() == ("open", ben.agent_id)


# --- sessions -------------------------------------------------------------------------------


async def _me(client: httpx.AsyncClient, base: str, cookie: str) -> httpx.Response:
    return await client.get(
        f"{base}/v1/console/me", headers={"Origin": base, "Cookie": f"beckon_agent={cookie}"}
    )


async def _ended_everywhere(chat: Any, http: httpx.AsyncClient, cookie: str, what: str) -> None:
    for instance in chat.instances:

        async def refused(base: str = instance.url) -> bool:
            return (await _me(http, base, cookie)).status_code == 401

        await eventually(refused, timeout_s=30, what=f"{what} on {instance.name}")


async def test_logout_ends_the_session_on_every_instance_and_its_open_console(
    chat: Any, make_site: Any, clients: Any, http: httpx.AsyncClient
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    old = ann.cookie
    assert old is not None
    for instance in chat.instances:  # both instances know the session
        assert (await _me(http, instance.url, old)).status_code == 200
    console = await ann.connect(chat.b.ws_url)
    await console.recv_until(frame_is("hello"))

    # a cross-site form posting to logout changes nothing
    forged = await http.post(
        f"{chat.a.url}/v1/console/logout",
        headers={"Origin": "http://evil.test", "Cookie": f"beckon_agent={old}"},
    )
    assert (forged.status_code, forged.json()["error"]) == (403, "cross_site")
    assert (await _me(http, chat.a.url, old)).status_code == 200

    out = await ann.post("/logout")
    assert out.status_code == 204
    answer = await _me(http, chat.a.url, old)  # at once where she logged out
    assert (answer.status_code, answer.json()["error"]) == (401, "session_ended")
    await _ended_everywhere(chat, http, old, "the logged-out session ends")
    assert await console.wait_closed() == 4401

    # she logs in again: the new session works at once on both instances
    await ann.login()
    assert ann.cookie is not None
    assert ann.cookie != old
    for instance in chat.instances:
        assert (await _me(http, instance.url, ann.cookie)).status_code == 200
    # and the old cookie, replayed, cannot end the new session
    stale = await http.post(
        f"{chat.a.url}/v1/console/logout",
        headers={"Origin": chat.a.url, "Cookie": f"beckon_agent={old}"},
    )
    assert stale.status_code == 204
    assert (await _me(http, chat.b.url, ann.cookie)).status_code == 200


async def test_a_new_password_or_deactivation_ends_earlier_sessions(
    chat: Any, make_site: Any, clients: Any, db: Any, http: httpx.AsyncClient
) -> None:
    site = await _admin(make_site, db, ("nina", ["sales"], 5))
    admin = await clients.agent(chat.a.url, site.agent("ada"))
    nina = await clients.agent(chat.b.url, site.agent("nina"))
    first = nina.cookie
    assert first is not None
    nina_id = nina.agent_id

    async def set_password(password: str) -> None:
        link = await admin.post(f"/admin/agents/{nina_id}/invite", {})
        assert link.status_code == 200, link.text
        done = await http.post(
            f"{chat.b.url}/v1/console/invite/accept",
            json={"token": link.json()["invite"]["token"], "password": password},
            headers={"Origin": chat.b.url},
        )
        assert done.status_code == 200, done.text

    # a new password (through a fresh link) ends the session she had
    await set_password("a brand new password 1")
    await _ended_everywhere(chat, http, first, "the session before the new password ends")
    spec = site.agent("nina")
    renewed = AgentSpec(nina_id, spec.email, spec.name, spec.teams, 5, "a brand new password 1")
    nina = await clients.agent(chat.a.url, renewed)
    second = nina.cookie
    assert second is not None
    console = await nina.connect(chat.a.ws_url)
    await console.recv_until(frame_is("hello"))

    # deactivated, then reactivated with a new password: the old cookie stays dead
    off = await admin.post(f"/admin/agents/{nina_id}/deactivate", {})
    assert off.status_code == 200, off.text
    assert await console.wait_closed() == 4401
    await set_password("a brand new password 2")
    for instance in chat.instances:
        answer = await _me(http, instance.url, second)
        assert (answer.status_code, answer.json()["error"]) == (401, "session_ended")


# --- redirects and invitations --------------------------------------------------------------


async def test_no_redirect_is_built_from_the_host_header(
    chat: Any, http: httpx.AsyncClient
) -> None:
    for path in ("/v1/console/me/", "/console/console.js/", "/healthz/", "/v1/console/login/"):
        answer = await http.get(
            f"{chat.a.url}{path}", headers={"Host": "evil.test"}, follow_redirects=False
        )
        assert "evil.test" not in answer.headers.get("location", ""), path
        assert answer.status_code == 404, (path, answer.status_code)


async def test_an_invitation_never_says_that_another_site_has_the_address(
    chat: Any, make_site: Any, clients: Any, db: Any, http: httpx.AsyncClient
) -> None:
    site = await _admin(make_site, db)
    other = await make_site(agents=[("olli", ["sales"], 5)])
    admin = await clients.agent(chat.a.url, site.agent("ada"))

    elsewhere = other.agent("olli").email
    for spelling in (elsewhere, elsewhere.upper()):
        answer = await admin.post("/admin/agents", {"name": "Olli", "email": spelling})
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "email_unavailable"
        said = answer.json()["detail"].lower().replace(spelling.lower(), "<address>")
        assert other.site_id not in said
        assert "account" not in said
        assert "taken" not in said

    # an address of this site's own agents is named as such (they are in the admin's list)
    own = await admin.post("/admin/agents", {"name": "Ada", "email": site.agent("ada").email})
    assert (own.status_code, own.json()["error"]) == (409, "email_taken")

    # a new agent is stored in the normal form, and logs in in any spelling
    email = f"Nina.Uusi@{site.site_id.upper()}.TEST"
    made = await admin.post("/admin/agents", {"name": "Nina", "email": email})
    assert made.status_code == 201, made.text
    stored = email.lower()
    assert made.json()["agent"]["email"] == stored
    twin = await admin.post("/admin/agents", {"name": "Twin", "email": stored})
    assert (twin.status_code, twin.json()["error"]) == (409, "email_taken")
    accepted = await http.post(
        f"{chat.a.url}/v1/console/invite/accept",
        json={"token": made.json()["invite"]["token"], "password": "nina's own password"},
        headers={"Origin": chat.a.url},
    )
    assert accepted.status_code == 200, accepted.text
    assert (await _login(http, chat.a.url, email, "nina's own password")).status_code == 200
