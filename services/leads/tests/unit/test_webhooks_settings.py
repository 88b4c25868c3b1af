"""The webhook sender's settings: http:// targets only outside production, a claim lease
longer than an attempt may take, and the sender built from them."""

import os

import pytest
from leads.config import Settings
from leads.webhooks.sender import webhook_sender
from pydantic import ValidationError

REAL_SECRET = "Zk3v9QwL1mN8pR2sT5uX7yB0cD4eF6gH"
CHATS_SECRET = "Qp8rT2vX5zA1cE4gJ7lN0oR3uW6yB9dF"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("LEADS_"):
            monkeypatch.delenv(name)


def test_production_refuses_http_targets():
    with pytest.raises(ValidationError, match="LEADS_WEBHOOK_ALLOW_HTTP"):
        Settings(
            environment="production",
            secret_key=REAL_SECRET,
            agent_session_secret=CHATS_SECRET,
            webhook_allow_http=True,
        )
    assert Settings(environment="dev", webhook_allow_http=True).webhook_allow_http


def test_a_lease_no_longer_than_the_timeout_is_refused():
    with pytest.raises(ValidationError, match="LEADS_WEBHOOK_LEASE_S"):
        Settings(webhook_timeout_s=30, webhook_lease_s=30)


def test_the_sender_follows_the_settings(monkeypatch):
    monkeypatch.setenv("LEADS_WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("LEADS_WEBHOOK_CONCURRENCY", "7")
    monkeypatch.setenv("LEADS_INSTANCE_ID", "leads-3")
    sender = webhook_sender(Settings(), pool=None)  # type: ignore[arg-type]
    assert (sender.instance, sender.concurrency, sender.allow_http) == ("leads-3", 7, True)
    assert sender.allow_private is False
    assert sender.timeout_s == 10.0
