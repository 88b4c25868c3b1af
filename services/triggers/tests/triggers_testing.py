"""Test support for triggers: a real worker process, and records as other services write them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from beckon_contracts import topics
from beckon_contracts.envelope import record_key
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import rules_record
from beckon_devstack.ports import free_port

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday morning, event time
# The worker's internal API token in tests (what chat would hold as CHAT_TRIGGERS_TOKEN)
API_TOKEN = "triggers-tests-token-8c1d4f2a9e"


@dataclass
class Worker:
    """`python -m triggers` as a child process; `kill()` is a crash, `start()` a restart."""

    bootstrap: str
    app_id: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # settings of this worker's own

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The header every route but the probes and /metrics wants."""
        return {"Authorization": f"Bearer {API_TOKEN}"}

    def start(self, timeout_s: float = 90.0) -> Worker:
        env = {
            **os.environ,
            "TRIGGERS_KAFKA_BOOTSTRAP": self.bootstrap,
            "TRIGGERS_APP_ID": self.app_id,
            "TRIGGERS_PORT": str(self.port),
            "TRIGGERS_DATA_DIR": str(self.log_path.parent / f"{self.app_id}-data"),
            "TRIGGERS_SESSION_TIMEOUT_S": "6",
            "TRIGGERS_ENVIRONMENT": "test",
            "TRIGGERS_API_TOKEN": API_TOKEN,
            **self.env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "triggers"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"triggers worker exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"triggers worker not ready in {timeout_s}s; see {self.log_path}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def site(self, site_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/sites/{site_id}", headers=self.auth, timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def wait_for(
        self,
        site_id: str,
        *,
        rules: bool = True,
        free_slots: int | None = None,
        team: str = "sales",
    ) -> None:
        """Until this worker applies the site's rules (and sees `team` with `free_slots`).

        Rules and presence reach the worker asynchronously; tests that publish them and then
        send events wait here so the events are judged against what they just published.
        """
        deadline = time.monotonic() + 15
        while True:
            view = self.site(site_id)
            teams = view["teams"]
            ready = (not rules or view["rules_version"] is not None) and (
                free_slots is None or teams.get(team, {}).get("free_slots") == free_slots
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker never applied site {site_id}: {view}")
            time.sleep(0.05)

    def stats(self, site_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/stats/{site_id}", headers=self.auth, timeout=5)
        response.raise_for_status()
        return dict(response.json())


def big_cart_rules(site_id: str, **settings: Any) -> SiteRules:
    """One rule: invite each visitor whose cart is over 100 €, once, nobody held out."""
    rule = {
        "id": "big-cart",
        "name": "Cart over 100 €",
        "when": {"cart_value": {"gte": 100}},
        "message": "Your cart is {cart_value}; shall I check delivery?",
        "limits": {"once_per": "visitor"},
        "holdout_percent": 0,
    }
    return SiteRules.model_validate({"site_id": site_id, **settings, "rules": [rule]})


class Kafka:
    """Publishes what the tracker, the chat service and the CLI would, for one test."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def rules(self, rules: SiteRules) -> None:
        record = rules_record(rules).model_dump_json().encode()
        await self.producer.send_and_wait(
            topics.RULES_CONFIG.name, record, key=rules.site_id.encode()
        )

    async def presence(
        self, site_id: str, team: str = "sales", agents: list[tuple[str, int, int]] | None = None
    ) -> None:
        """agents: (name, open_chats, max_chats), all online."""
        members = [
            AgentPresence(
                agent_id=f"agent-{i}", name=name, status="online", open_chats=open_, max_chats=max_
            )
            for i, (name, open_, max_) in enumerate(agents or [("Aino", 0, 5)])
        ]
        record = TeamPresence(
            event_id=uuid7(),
            occurred_at=datetime.now(UTC),
            site_id=site_id,
            team=team,
            agents=members,
        )
        await self.producer.send_and_wait(
            topics.AGENTS_PRESENCE.name,
            record.model_dump_json().encode(),
            key=f"{site_id}:{team}".encode(),
        )

    async def track(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.producer.send(
                topics.TRACKING_EVENTS.name,
                orjson.dumps(event),
                key=record_key(event["site_id"], event["visitor_id"]),
            )
        await self.producer.flush()

    async def raw(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(topic, value, key=key)


def tracking_event(
    site_id: str,
    visitor_id: str,
    kind: str,
    seconds: float,
    *,
    session_id: str = "s1",
    url: str = "https://shop.example/",
    payload: dict[str, Any] | None = None,
    campaign: dict[str, str] | None = None,
    referrer: str | None = None,
    reported_by: str | None = None,
) -> dict[str, Any]:
    """One record as the tracker writes it, `seconds` after T0 in event time."""
    at = T0 + timedelta(seconds=seconds)
    page: dict[str, Any] = {"url": url}
    if referrer:
        page["referrer"] = referrer
    context: dict[str, Any] = {"page": page, "source": "snippet"}
    if campaign:
        context["campaign"] = campaign
    if reported_by:
        context["reported_by"] = reported_by
    return {
        "event_id": str(uuid7(int(at.timestamp() * 1000))),
        "type": kind,
        "schema_version": 1,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "received_at": at.isoformat().replace("+00:00", "Z"),
        "site_id": site_id,
        "visitor_id": visitor_id,
        "session_id": session_id,
        "context": context,
        "payload": payload or {},
    }


def product_view(
    site_id: str, visitor_id: str, seconds: float, product: str = "p1", **kw: Any
) -> dict[str, Any]:
    return tracking_event(
        site_id,
        visitor_id,
        "product_viewed",
        seconds,
        url=f"https://shop.example/product/{product}",
        payload={
            "product_id": product,
            "name": f"Trail Shoe {product.upper()}",
            "category": "shoes",
            "price": 89.9,
            "currency": "EUR",
        },
        **kw,
    )
