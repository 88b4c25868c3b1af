"""The leads service's one Settings class: LEADS_* variables, dev defaults, and the
placeholders production refuses."""

import os

import pytest
from leads.config import DEV_AGENT_SESSION_SECRET, DEV_SECRET, Settings
from pydantic import ValidationError

REAL_SECRET = "Zk3v9QwL1mN8pR2sT5uX7yB0cD4eF6gH"
CHATS_SECRET = "Qp8rT2vX5zA1cE4gJ7lN0oR3uW6yB9dF"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Settings read LEADS_* (and a few unprefixed aliases): start every test from none."""
    for name in list(os.environ):
        if name.startswith("LEADS_") or name in ("DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            monkeypatch.delenv(name)


def test_dev_runs_on_port_8004_with_the_dev_secrets():
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.port == 8004
    assert settings.secret_key.get_secret_value() == DEV_SECRET
    assert settings.agent_session_secret.get_secret_value() == DEV_AGENT_SESSION_SECRET
    assert settings.migrate_on_start is False
    assert settings.instance_id  # host and pid: unique per process


def test_settings_come_from_leads_variables(monkeypatch):
    monkeypatch.setenv("LEADS_PORT", "9104")
    monkeypatch.setenv("LEADS_DATABASE_URL", "postgresql://leads@db:5432/beckon")
    monkeypatch.setenv("LEADS_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("LEADS_MIGRATE_ON_START", "true")
    monkeypatch.setenv("LEADS_INSTANCE_ID", "leads-1")
    monkeypatch.setenv("CHAT_PORT", "1")  # another service's variable is not ours
    settings = Settings()
    assert settings.port == 9104
    assert settings.database_url == "postgresql://leads@db:5432/beckon"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.migrate_on_start is True
    assert settings.instance_id == "leads-1"


def test_the_shared_database_url_is_a_fallback(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/beckon")
    assert Settings().database_url == "postgresql://shared@db/beckon"


def test_kafka_security_comes_from_leads_variables(monkeypatch):
    monkeypatch.setenv("LEADS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LEADS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEADS_KAFKA_SASL_USERNAME", "leads")
    monkeypatch.setenv("LEADS_KAFKA_SASL_PASSWORD", "a-broker-password-1")
    monkeypatch.setenv("LEADS_KAFKA_ALLOW_PLAINTEXT_SASL", "true")
    security = Settings().kafka_security
    assert security.protocol == "SASL_PLAINTEXT"
    assert security.sasl_username == "leads"


def test_secrets_do_not_show_in_the_settings_repr():
    settings = Settings(secret_key=REAL_SECRET, agent_session_secret=CHATS_SECRET)
    assert REAL_SECRET not in repr(settings)
    assert CHATS_SECRET not in repr(settings)


def _production(**overrides):
    values = {
        "environment": "production",
        "secret_key": REAL_SECRET,
        "agent_session_secret": CHATS_SECRET,
    }
    return Settings(**{**values, **overrides})


def test_production_runs_on_real_secrets():
    assert _production().environment == "production"


@pytest.mark.parametrize("secret", [DEV_SECRET, "please-change-me-now-0123"])
def test_production_refuses_a_placeholder_secret_key(secret):
    with pytest.raises(ValidationError, match="LEADS_SECRET_KEY"):
        _production(secret_key=secret)


@pytest.mark.parametrize("secret", [DEV_AGENT_SESSION_SECRET, "CHANGEME-CHANGEME-CHANGEME"])
def test_production_refuses_a_placeholder_agent_session_secret(secret):
    with pytest.raises(ValidationError, match="LEADS_AGENT_SESSION_SECRET"):
        _production(agent_session_secret=secret)


def test_production_refuses_webhooks_to_private_addresses():
    with pytest.raises(ValidationError, match="LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS"):
        _production(webhook_allow_private_targets=True)
    assert Settings(environment="test", webhook_allow_private_targets=True)


def test_a_short_secret_is_refused():
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(secret_key="short")
