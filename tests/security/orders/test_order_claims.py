"""The probe's forged order, end to end without I/O: the public snippet endpoint (the
tracker's real app, a fake broker) → chat's activity row → the assisted-revenue figures.
A body claiming to be the server changes nothing; only a write-key call from a server is
revenue."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import parse_tracking_event
from chat.activity.domain import to_row
from chat.reports.domain import Order, assisted_report_figures, attribute
from tracker.config import Settings
from tracker.main import create_app

SITE = {
    "site_id": "shop",
    "site_key": "pk_test_site_key",
    "write_key": "wk_test_write_key",
    "allowed_origins": ["https://shop.example"],
}
FORGERIES = [
    {},
    {"reported_by": "server"},
    {"reported_by": "server", "over_browser_cap": False, "source": "segment"},
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TRACKER_"):
            monkeypatch.delenv(name)


class Published:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def publish(self, records):
        self.values.extend(r.value for r in records if r.topic == "tracking.events")


async def _published_orders(requests) -> list[Order]:
    app = create_app(Settings(sites=[SITE]))
    published = Published()
    app.state.edge.ingest.publisher = published
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as client:
        for path, kwargs in requests:
            assert (await client.post(path, **kwargs)).status_code == 200
    orders = []
    for value in published.values:
        row = to_row(parse_tracking_event(value))
        assert row is not None
        assert row.value is not None
        orders.append(
            Order(
                row.detail["order_id"],
                row.visitor_id,
                datetime.now(UTC),
                row.value,
                row.currency or "XXX",
                row.detail["reported_by"],
                bool(row.detail.get("over_cap")),
            )
        )
    return orders


@pytest.mark.parametrize("forged", FORGERIES, ids=["plain", "reported_by", "every_field"])
async def test_the_probes_999999999_eur_browser_order_is_never_revenue(forged):
    probe = {
        "visitor_id": "v-probe",
        "context": forged,
        "events": [
            {
                "event_id": str(uuid7()),
                "type": "order_completed",
                "payload": {"order_id": "probe", "value": 999_999_999, "currency": "EUR"},
                "context": forged,
            }
        ],
    }
    server = {
        "anonymousId": "v-buyer",
        "event": "Order Completed",
        "messageId": "m-1",
        "properties": {"order_id": "real", "total": 120, "currency": "EUR"},
    }
    orders = await _published_orders(
        [
            (
                "/v1/collect?k=pk_test_site_key",
                {"json": probe, "headers": {"origin": SITE["allowed_origins"][0]}},
            ),
            ("/v1/track", {"json": server, "auth": ("wk_test_write_key", "")}),
        ]
    )
    now = datetime.now(UTC) + timedelta(seconds=1)
    figures = assisted_report_figures(attribute(orders, [], window=timedelta(days=7), now=now))
    assert [row["revenue"] for row in figures["currencies"]] == [120.0]
    assert figures["orders"] == 1
    assert figures["browser"]["over_cap"] == 1  # kept, flagged, in no figure
    assert figures["browser"]["orders"] == 0
