"""`make dev` as a whole: every component up; the store, tracker, triggers and chat answering."""

from __future__ import annotations

import signal
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from beckon_devstack.config import (
    DEMO_AGENT_EMAIL,
    DEMO_AGENT_PASSWORD,
    DEMO_REPLY_DOMAIN,
    DEMO_SITE_KEY,
    DEMO_WRITE_KEY,
)

from .stack import Supervisor, alive, postmaster_pid

pytestmark = pytest.mark.integration


async def test_the_whole_dev_stack_serves_the_store_and_the_tracker(tmp_path: Path) -> None:
    state_dir = tmp_path / ".dev"
    supervisor = await Supervisor.start(
        *("--broker-port", "0", "--smtp-port", "0", "--smtp-http-port", "0"),
        *("--tracker-port", "0", "--triggers-port", "0", "--store-port", "0"),
        *("--chat-port", "0", "--leads-port", "0", "--notifier-port", "0"),
        *("--state-dir", str(state_dir)),
    )
    try:
        await supervisor.wait_ready()
        names = [
            *("broker", "postgres", "smtp", "tracker", "triggers", "chat", "leads"),
            *("notifier", "store"),
        ]
        for step, name in enumerate(names, start=1):
            assert f"[{step}/9] {name}" in supervisor.output
        # the Faust worker's banner and tables go to its log, not between the progress lines
        assert "ƒaµS†" in (state_dir / "logs" / "triggers.log").read_text()
        assert "ƒaµS†" not in supervisor.output
        assert "triggers |" not in supervisor.output
        assert supervisor.table_value("demo site key") == DEMO_SITE_KEY
        assert supervisor.table_value("demo write key") == DEMO_WRITE_KEY
        store = supervisor.table_value("demo store")
        tracker = supervisor.table_value("tracker")
        snippet = supervisor.table_value("snippet")

        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            home = await client.get(f"{store}/")
            assert home.status_code == 200
            assert "text/html" in home.headers["content-type"]
            assert "pk_demo_beckon" in home.text
            ready = await client.get(f"{tracker}/readyz")
            assert ready.status_code == 200
            script = await client.get(snippet)
            assert script.status_code == 200
            assert "javascript" in script.headers["content-type"]
            # the triggers worker is up with the demo store's rules seeded
            stats_url = supervisor.table_value("rule stats (demo)")
            sites_url = stats_url.replace("/v1/stats/", "/v1/sites/")
            assert (await client.get(sites_url)).status_code == 401  # only with the run's token
            token = supervisor.table_value("triggers API token")
            site = await client.get(sites_url, headers={"Authorization": f"Bearer {token}"})
            assert site.status_code == 200
            assert "default-3min" in site.json()["rules"]
            # chat: the widget script, the console page, and the seeded demo agent can log in
            console_url = supervisor.table_value("agent console")
            console = await client.get(console_url)
            assert console.status_code == 200
            assert "script-src 'self'" in console.headers["content-security-policy"]
            widget = await client.get(supervisor.table_value("chat widget"))
            assert widget.status_code == 200
            assert "javascript" in widget.headers["content-type"]
            chat_url = console_url.removesuffix("/console/")
            login = await client.post(
                f"{chat_url}/v1/console/login",
                json={"email": DEMO_AGENT_EMAIL, "password": DEMO_AGENT_PASSWORD},
            )
            assert login.status_code == 200, login.text
            assert login.json()["agent"]["name"] == "Anna Virtanen"
            # leads: migrated and ready, its API documented
            leads_docs = supervisor.table_value("leads API")
            assert (await client.get(leads_docs.replace("/docs", "/readyz"))).status_code == 200
            assert (await client.get(leads_docs)).status_code == 200
            # one login: the console's session (the demo admin's) works on the leads API, which
            # holds the demo store's seeded routing rules
            routing = await client.get(leads_docs.replace("/docs", "/v1/leads/routing"))
            assert routing.status_code == 200, routing.text
            rules = [rule["id"] for rule in routing.json()["document"]["rules"]]
            assert rules == ["after-sales", "business-buyers"]
            # the store's pages tell the snippet where the widget is
            assert chat_url in home.text
            # the notifier: ready, the console's session works on its API
            notifier_docs = supervisor.table_value("notifier API")
            ready = await client.get(notifier_docs.replace("/docs", "/readyz"))
            assert ready.status_code == 200, ready.text
            settings = await client.get(notifier_docs.replace("/docs", "/v1/admin/email/settings"))
            assert settings.status_code == 200, settings.text
            assert settings.json()["defaults"]["reply_domain"] == DEMO_REPLY_DOMAIN
        # the SMTP sink hands mail for the reply domain to the notifier, which refuses a
        # reply token it did not sign: the sink answers the sender with a 550
        smtp = supervisor.table_value("SMTP")
        host, _, port = smtp.partition(":")
        forged = f"reply+{'a' * 50}@{DEMO_REPLY_DOMAIN}"
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await aiosmtplib.send(
                f"From: someone@example.com\r\nTo: {forged}\r\nSubject: hi\r\n\r\nhello\r\n",
                sender="someone@example.com",
                recipients=[forged],
                hostname=host,
                port=int(port),
            )
        assert refused.value.code == 550
        assert "token_" in refused.value.message

        children = supervisor.descendants()
        postgres = postmaster_pid(state_dir / "pg")
        supervisor.send(signal.SIGINT)
        assert await supervisor.wait_exit() == 0
    finally:
        await supervisor.kill()
    assert "Traceback" not in supervisor.output
    assert [pid for pid in [*children, postgres] if alive(pid)] == []
