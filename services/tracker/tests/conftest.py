from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from tracker.config import Settings
from tracker.main import create_app

SITE = {
    "site_id": "demo",
    "site_key": "pk_test_site_key",
    "write_key": "wk_test_write_key",
    "allowed_origins": ["https://shop.example"],
}
OTHER_SITE = {"site_id": "other", "site_key": "pk_other_site_key", "allowed_origins": ["*"]}


async def _as_a_page(request: httpx.Request) -> None:
    """The snippet's endpoint answers browsers only, and a browser always sends Origin: the
    store's page unless a test says otherwise."""
    if request.url.path == "/v1/collect" and "origin" not in request.headers:
        request.headers["origin"] = SITE["allowed_origins"][0]


def tracker_settings(bootstrap: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "sites": [SITE, OTHER_SITE],
        "ack_timeout_s": 5.0,
        "requests_per_s_per_client": 10_000,
        "request_burst_per_client": 10_000,
        "events_per_s_per_visitor": 10_000,
        "event_burst_per_visitor": 10_000,
    }
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_tracker(
    settings: Settings, *, wait_ready: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, lifespan and all, driven in-process over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.77", 5555))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://tracker",
            event_hooks={"request": [_as_a_page]},
        ) as client:
            if wait_ready:
                for _ in range(200):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("tracker never became ready")
            yield client


@pytest.fixture(scope="session")
async def tracker(kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_tracker(tracker_settings(kafka_bootstrap)) as client:
        yield client


@pytest.fixture(scope="session")
def start_tracker() -> Callable[..., Any]:
    """`async with start_tracker(settings) as client`: a tracker of the test's own."""
    return running_tracker


@pytest.fixture(scope="session")
def make_settings(kafka_bootstrap: str) -> Callable[..., Settings]:
    """Test settings on the session broker (or `bootstrap=`), with overrides."""

    def make(bootstrap: str | None = None, **overrides: Any) -> Settings:
        return tracker_settings(bootstrap or kafka_bootstrap, **overrides)

    return make


@pytest.fixture
def unique() -> Callable[[str], str]:
    counter = iter(range(1_000_000))
    import uuid

    run = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}_{run}_{next(counter)}"
