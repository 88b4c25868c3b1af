"""The tracker follows `sites.config` (chat's site admin) live: an origin added there is
accepted on the next request, one removed is refused, new keys replace a seed's."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.sites import SiteConfig, config_key, site_record
from beckon_contracts.topics import SITES_CONFIG

pytestmark = pytest.mark.integration
FOLLOW_TIMEOUT_S = 30.0


def _batch(visitor: str) -> dict[str, Any]:
    event = {
        "event_id": str(uuid7()),
        "type": "page_viewed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {},
    }
    return {
        "visitor_id": visitor,
        "sent_at": datetime.now(UTC).isoformat(),
        "context": {"page": {"url": "https://shop.example/"}},
        "events": [event],
    }


async def _publish(bootstrap: str, config: SiteConfig | None, site_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        value = site_record(config).model_dump_json().encode() if config else None
        await producer.send_and_wait(SITES_CONFIG.name, value, key=config_key(site_id))
    finally:
        await producer.stop()


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + FOLLOW_TIMEOUT_S
    while not await check():
        assert time.monotonic() < deadline, f"the tracker never saw: {what}"
        await asyncio.sleep(0.05)


async def test_origins_added_and_removed_in_the_topic_apply_live(
    kafka_bootstrap, start_tracker, make_settings, unique
):
    site_id = unique("followed").replace("_", "-")
    key = f"pk_{unique('key')}"
    one, two = "https://one.example", "https://two.example"

    def config(version: int, *origins: str) -> SiteConfig:
        return SiteConfig(
            site_id=site_id, version=version, site_key=key, allowed_origins=list(origins)
        )

    async with start_tracker(make_settings(sites=[])) as tracker:

        async def status(origin: str) -> int:
            answer = await tracker.post(
                f"/v1/collect?k={key}", json=_batch(unique("v")), headers={"origin": origin}
            )
            return answer.status_code

        # unknown until the topic has it
        assert await status(one) == 401
        await _publish(kafka_bootstrap, config(1, one), site_id)
        await _until(lambda: _is(status(one), 200), "the new site")
        refused = await tracker.post(
            f"/v1/collect?k={key}", json=_batch(unique("v")), headers={"origin": two}
        )
        assert (refused.status_code, refused.json()["error"]) == (403, "origin_not_allowed")

        # an origin added → accepted
        await _publish(kafka_bootstrap, config(2, one, two), site_id)
        await _until(lambda: _is(status(two), 200), "the added origin")
        # removed → 403 (and an older record, replayed, changes nothing)
        await _publish(kafka_bootstrap, config(3, two), site_id)
        await _until(lambda: _is(status(one), 403), "the removed origin")
        await _publish(kafka_bootstrap, config(2, one, two), site_id)
        await _publish(kafka_bootstrap, config(3, two), site_id)  # a marker after it
        await _until(lambda: _is(status(two), 200), "the republished version")
        assert await status(one) == 403

        # a tombstone removes the site
        await _publish(kafka_bootstrap, None, site_id)
        await _until(lambda: _is(status(two), 401), "the tombstone")


async def test_a_seeded_site_gives_way_to_the_topic_once_it_has_the_site(
    kafka_bootstrap, start_tracker, make_settings, unique
):
    site_id = unique("seeded").replace("_", "-")
    seeded_key, seeded_write = f"pk_{unique('seed')}", f"wk_{unique('seed')}"
    new_key, new_write = f"pk_{unique('new')}", f"wk_{unique('new')}"
    seed = {
        "site_id": site_id,
        "site_key": seeded_key,
        "write_key": seeded_write,
        "allowed_origins": ["https://seeded.example"],
    }
    async with start_tracker(make_settings(sites=[seed])) as tracker:

        async def collect(key: str, origin: str) -> int:
            answer = await tracker.post(
                f"/v1/collect?k={key}", json=_batch(unique("v")), headers={"origin": origin}
            )
            return answer.status_code

        async def segment(write_key: str) -> int:
            auth = base64.b64encode(f"{write_key}:".encode()).decode()
            answer = await tracker.post(
                "/v1/track",
                json={"userId": unique("u"), "event": "Signed Up", "properties": {}},
                headers={"authorization": f"Basic {auth}"},
            )
            return answer.status_code

        assert await collect(seeded_key, "https://seeded.example") == 200
        assert await segment(seeded_write) == 200

        config = SiteConfig(
            site_id=site_id,
            version=1,
            site_key=new_key,
            write_key=new_write,
            allowed_origins=["https://console.example"],
        )
        await _publish(kafka_bootstrap, config, site_id)
        await _until(lambda: _is(collect(new_key, "https://console.example"), 200), "new keys")
        assert await collect(seeded_key, "https://seeded.example") == 401
        assert await segment(new_write) == 200
        assert await segment(seeded_write) == 401


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected
