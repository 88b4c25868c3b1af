"""Production refuses placeholder site keys: what .env.example and the docs ship never serves."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from pydantic import ValidationError
from tracker.config import Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRACKER_"):
            monkeypatch.delenv(name)


def site(site_key: str, write_key: str | None = None) -> dict[str, object]:
    return {"site_id": "shop", "site_key": site_key, "write_key": write_key}


def real_key(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@pytest.mark.parametrize(
    ("site_key", "write_key", "field", "marker"),
    [
        ("pk_live_CHANGE", real_key("wk_live_"), "site_key", "change"),  # .env.example's
        (real_key("pk_live_"), "wk_live_CHANGE", "write_key", "change"),
        ("pk_live_ChangeMe", None, "site_key", "change"),
        ("pk_demo_site_key", None, "site_key", "demo"),
        ("pk_live_EXAMPLE_KEY", None, "site_key", "example"),
        (real_key("pk_"), "wk_PLACEHOLDER_x", "write_key", "placeholder"),
        ("dev-only-site-key", None, "site_key", "dev-only"),
    ],
)
def test_production_refuses_a_placeholder_key(
    site_key: str, write_key: str | None, field: str, marker: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", sites=[site(site_key, write_key)])
    message = str(refused.value)
    assert f"site 'shop': its {field} looks like a placeholder" in message
    assert f"contains {marker!r}" in message
    if write_key is not None and field == "write_key":
        assert write_key not in message  # a write key is a secret: never in a log line


def test_the_env_examples_sites_do_not_start_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TRACKER_SITES as .env.example has it, read from the environment as compose passes it."""
    sites = [
        {
            "site_id": "shop",
            "site_key": "pk_live_CHANGE",
            "write_key": "wk_live_CHANGE",
            "allowed_origins": ["https://shop.example"],
        }
    ]
    monkeypatch.setenv("TRACKER_ENVIRONMENT", "production")
    monkeypatch.setenv("TRACKER_SITES", json.dumps(sites))
    with pytest.raises(ValidationError, match="looks like a placeholder"):
        Settings()


def test_production_starts_on_real_keys() -> None:
    keys = site(real_key("pk_live_"), real_key("wk_live_"))
    settings = Settings(environment="production", sites=[keys])
    assert [s.site_key for s in settings.sites] == [keys["site_key"]]


def test_dev_and_test_accept_the_demo_keys() -> None:
    for environment in ("dev", "test"):
        settings = Settings(environment=environment, sites=[site("pk_demo_CHANGE")])
        assert settings.sites[0].site_key == "pk_demo_CHANGE"
