import os

import pytest
from chat.config import DEV_SECRET, DEV_TRIGGERS_TOKEN, Settings
from pydantic import ValidationError

REAL_SECRET = "Zk3v9QwL1mN8pR2sT5uX7yB0cD4eF6gH"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Settings read CHAT_* (and a few unprefixed aliases): start every test from none."""
    for name in list(os.environ):
        if name.startswith("CHAT_") or name in ("DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            monkeypatch.delenv(name)


def test_dev_runs_on_the_dev_secret_and_plain_http():
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.secret_key == DEV_SECRET
    assert settings.cookie_secure is False
    assert settings.port == 8003


def test_production_refuses_the_dev_secret():
    with pytest.raises(ValidationError, match="CHAT_SECRET_KEY"):
        Settings(environment="production", cookie_secure=True)


@pytest.mark.parametrize("secret", ["please-change-me-now-0123", "CHANGEME-CHANGEME-CHANGEME"])
def test_production_refuses_placeholder_secrets(secret):
    with pytest.raises(ValidationError, match="CHAT_SECRET_KEY"):
        Settings(environment="production", secret_key=secret, cookie_secure=True)


def test_production_refuses_insecure_cookies():
    with pytest.raises(ValidationError, match="CHAT_COOKIE_SECURE"):
        Settings(environment="production", secret_key=REAL_SECRET)
    with pytest.raises(ValidationError, match="CHAT_COOKIE_SECURE"):
        Settings(environment="production", secret_key=REAL_SECRET, cookie_secure=False)


def test_production_starts_with_a_real_secret_and_secure_cookies():
    settings = Settings(environment="production", secret_key=REAL_SECRET, cookie_secure=True)
    assert settings.secret_key == REAL_SECRET
    assert settings.cookie_secure is True


def test_production_is_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHAT_ENVIRONMENT", "production")
    monkeypatch.setenv("CHAT_SECRET_KEY", REAL_SECRET)
    with pytest.raises(ValidationError, match="CHAT_COOKIE_SECURE"):
        Settings()
    monkeypatch.setenv("CHAT_COOKIE_SECURE", "true")
    assert Settings().environment == "production"
    monkeypatch.delenv("CHAT_SECRET_KEY")
    with pytest.raises(ValidationError, match="CHAT_SECRET_KEY"):
        Settings()


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_outside_production_placeholders_are_allowed(environment):
    assert Settings(environment=environment).secret_key == DEV_SECRET


@pytest.mark.parametrize("environment", ["dev", "production"])
def test_a_short_secret_is_refused_everywhere(environment):
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(environment=environment, secret_key="too-short", cookie_secure=True)


def test_an_unknown_environment_is_refused():
    with pytest.raises(ValidationError, match="environment"):
        Settings(environment="staging")


def test_the_database_url_has_a_chat_and_a_generic_name(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://generic@db/beckon")
    assert Settings().database_url == "postgresql://generic@db/beckon"
    monkeypatch.setenv("CHAT_DATABASE_URL", "postgresql://chat@db/beckon")
    assert Settings().database_url == "postgresql://chat@db/beckon"


def test_production_refuses_the_dev_triggers_token():
    real = {"secret_key": REAL_SECRET, "cookie_secure": True}
    with pytest.raises(ValidationError, match="CHAT_TRIGGERS_TOKEN"):
        Settings(environment="production", triggers_token=DEV_TRIGGERS_TOKEN, **real)
    with pytest.raises(ValidationError, match="CHAT_TRIGGERS_TOKEN"):
        Settings(environment="production", triggers_token="please-change-this-token", **real)
    token = "Qm7x2Vb9Lp4Rt8Ws1Yd6Hj3Kf5Ng0Zc"
    assert Settings(environment="production", triggers_token=token, **real).triggers_token == token
    assert token not in repr(Settings(triggers_token=token))


async def test_every_kafka_client_of_chat_takes_the_kafka_security_settings(monkeypatch):
    from chat.activity.recorder import ActivityRecorder
    from chat.adapters.bus import Bus, Feed, InvitationConsumer
    from chat.admin.rules_feed import RulesFeed
    from chat.live.reader import LiveVisitors

    for name, value in {
        "CHAT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CHAT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CHAT_KAFKA_SASL_USERNAME": "beckon-chat",
        "CHAT_KAFKA_SASL_PASSWORD": "from-the-kafkauser-secret",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert "from-the-kafkauser-secret" not in repr(settings)
    security = settings.kafka_security

    async def nothing(*_args):
        return True

    bus = Bus("b:9092", "c", idempotent=False, security=security)
    clients = [
        bus.producer.client,
        Feed("b:9092", "c", nothing, 10, security=security).consumer._client,
        InvitationConsumer("b:9092", "c", record=nothing, bus=bus, security=security)
        .consumer._client,
        RulesFeed("b:9092", "c", security=security).reader,
        LiveVisitors(
            "b:9092", "c", idle_after_s=60, push_interval_s=1, security=security
        ).consumer._client,
        ActivityRecorder(
            pool=None, producer=bus.producer, bootstrap="b:9092", client_id="c",
            retention_days=1, security=security,
        ).consumer._client,
    ]  # fmt: skip
    follower = clients.pop(3)
    assert follower.security == security
    for client in clients:
        assert client._security_protocol == "SASL_PLAINTEXT"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "beckon-chat"


async def test_the_bus_producer_is_idempotent_with_acks_all_by_default(monkeypatch):
    from chat.adapters.bus import Bus

    settings = Settings()
    assert settings.kafka_idempotent is True
    bus = Bus("b:9092", "c", idempotent=settings.kafka_idempotent)  # as chat.main makes it
    assert bus.producer._txn_manager is not None  # aiokafka's mark of the idempotent producer
    assert bus.producer._sender._acks == -1

    monkeypatch.setenv("CHAT_KAFKA_IDEMPOTENT", "false")
    assert Settings().kafka_idempotent is False


def test_each_deployment_names_its_consumer_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_CONSUMER_GROUP", "chat-staging")
    settings = Settings()
    assert settings.consumer_group == "chat-staging"
    monkeypatch.setenv("CHAT_CONSUMER_GROUP", "chat staging")
    with pytest.raises(ValidationError, match="consumer_group"):
        Settings()
