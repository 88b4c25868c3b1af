"""TLS/SASL settings: what each client library is given, and the combinations refused."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

import faust
import pytest
from beckon_devstack.tls import CertifiedKey, make_certificate_authority
from beckon_messaging import KafkaClientSettings, KafkaSecurity, KafkaSecurityError
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

SCRAM = {
    "protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "beckon-tracker",
    "sasl_password": "pw-1234",
}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CertifiedKey]:
    authority = make_certificate_authority(tmp_path_factory.mktemp("ca"))
    return authority.ca_cert, authority.issue("user", common_name="beckon-user")


class ServiceSettings(KafkaClientSettings):
    """A service's settings as the services declare them: a prefix and an environment."""

    model_config = SettingsConfigDict(env_prefix="TRACKER_", extra="ignore")
    environment: Literal["dev", "test", "production"] = "dev"


# ---- the mapping ----------------------------------------------------------------------------


def test_plaintext_is_the_default() -> None:
    security = KafkaSecurity()
    assert security.aiokafka_options() == {"security_protocol": "PLAINTEXT"}
    assert security.librdkafka_options() == {"security.protocol": "plaintext"}
    assert security.faust_options("a:9092,b:9092") == {
        "broker": "kafka://a:9092,b:9092",
        "broker_credentials": None,
    }


def test_scram_for_aiokafka_librdkafka_and_faust() -> None:
    security = KafkaSecurity(**SCRAM)  # type: ignore[arg-type]
    assert security.aiokafka_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "beckon-tracker",
        "sasl_plain_password": "pw-1234",
    }
    assert security.librdkafka_options() == {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "beckon-tracker",
        "sasl.password": "pw-1234",
    }
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("beckon-tracker", "pw-1234")
    assert "pw-1234" not in repr(security)


def test_scram_over_tls_checks_the_broker_against_the_ca(ca: tuple[Path, CertifiedKey]) -> None:
    ca_file, _ = ca
    security = KafkaSecurity(**{**SCRAM, "protocol": "SASL_SSL", "ssl_ca_file": ca_file})  # type: ignore[arg-type]
    options = security.aiokafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "beckon-test-ca"),),)
    ]
    assert security.librdkafka_options()["ssl.ca.location"] == str(ca_file)
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is not None


def test_mtls_gives_every_client_the_certificate_and_key(ca: tuple[Path, CertifiedKey]) -> None:
    ca_file, user = ca
    security = KafkaSecurity(
        protocol="SSL", ssl_ca_file=ca_file, ssl_cert_file=user.cert, ssl_key_file=user.key
    )
    assert security.librdkafka_options() == {
        "security.protocol": "ssl",
        "ssl.ca.location": str(ca_file),
        "ssl.certificate.location": str(user.cert),
        "ssl.key.location": str(user.key),
    }
    assert isinstance(security.aiokafka_options()["ssl_context"], ssl.SSLContext)
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"


def test_tls_without_a_ca_file_trusts_the_systems_cas() -> None:
    security = KafkaSecurity(**{**SCRAM, "protocol": "SASL_SSL"})  # type: ignore[arg-type]
    assert "ssl.ca.location" not in security.librdkafka_options()
    assert security.aiokafka_options()["ssl_context"].verify_mode == ssl.CERT_REQUIRED


# ---- combinations refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM",
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_password": "p"},
            "needs KAFKA_SASL_USERNAME",
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "needs KAFKA_SASL_PASSWORD",
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u"},
            "KAFKA_SASL_MECHANISM=GSSAPI is not one of",
        ),
        (
            {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u", "sasl_password": "p"},
            "would be ignored with KAFKA_SECURITY_PROTOCOL=PLAINTEXT: use SASL_SSL",
        ),
        (
            {"protocol": "SASL_PLAINTEXT", **{k: v for k, v in SCRAM.items() if k != "protocol"}}
            | {"ssl_ca_file": Path("ca.crt")},
            "KAFKA_SSL_CA_FILE would be ignored with KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        (
            {"protocol": "SSL", "ssl_cert_file": Path("user.crt")},
            "needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE",
        ),
        (
            {"protocol": "SSL", "ssl_key_password": "x"},
            "KAFKA_SSL_KEY_PASSWORD is set without KAFKA_SSL_KEY_FILE",
        ),
    ],
)
def test_combinations_that_cannot_work_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        KafkaSecurity(**settings)


# ---- the settings mixin ---------------------------------------------------------------------


def test_a_service_reads_them_under_its_prefix_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKER_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("TRACKER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("TRACKER_KAFKA_SASL_USERNAME", "beckon-tracker")
    monkeypatch.setenv("TRACKER_KAFKA_SASL_PASSWORD", "from-the-secret")
    settings = ServiceSettings()
    assert settings.kafka_security.librdkafka_options()["sasl.password"] == "from-the-secret"
    assert settings.kafka_security.sasl_mechanism == "SCRAM-SHA-256"
    assert "from-the-secret" not in repr(settings)
    assert "from-the-secret" not in repr(settings.kafka_security)


def test_errors_name_the_services_own_settings() -> None:
    with pytest.raises(ValidationError, match="TRACKER_KAFKA_SASL_USERNAME"):
        ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_ca_file"):
        ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tmp_path / "missing.crt")


def test_production_refuses_sasl_without_tls_unless_allowed() -> None:
    scram = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "u",
        "kafka_sasl_password": "p",
    }
    with pytest.raises(ValidationError, match="TRACKER_KAFKA_ALLOW_PLAINTEXT_SASL=true"):
        ServiceSettings(environment="production", **scram)
    allowed = ServiceSettings(environment="production", kafka_allow_plaintext_sasl=True, **scram)
    assert allowed.kafka_security.protocol == "SASL_PLAINTEXT"
    assert ServiceSettings(environment="dev", **scram).kafka_security.uses_sasl
    tls = ServiceSettings(
        environment="production", **{**scram, "kafka_security_protocol": "SASL_SSL"}
    )
    assert tls.kafka_security.uses_tls
