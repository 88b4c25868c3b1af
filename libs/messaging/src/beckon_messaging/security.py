"""TLS and SASL for every Kafka client Beckon makes, described once, spoken in three dialects.

A secured cluster (Strimzi, MSK, Confluent Cloud) wants the same few facts from every client:
the security protocol, a SASL mechanism with a username and password, and the TLS files (the
cluster's CA; for mTLS, as a Strimzi `KafkaUser` with `authentication: tls` gets, the client's
certificate and key). `KafkaSecurity` holds them, checks that they make sense together, and
turns them into keyword arguments for aiokafka, a librdkafka (confluent-kafka) configuration,
and Faust's `broker_credentials`. `KafkaClientSettings` is the pydantic mixin through which each
service's one `Settings` exposes them with its own prefix (`TRACKER_KAFKA_SASL_USERNAME`, ...).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from aiokafka.helpers import create_ssl_context
from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
SASL_MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


class KafkaSecurityError(ValueError):
    """Kafka security settings that do not fit together (the message says which and how)."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client proves itself to the brokers and checks them; PLAINTEXT by default.

    `env_prefix` only names the settings in error messages (`TRACKER_` gives
    `TRACKER_KAFKA_SASL_USERNAME`).
    """

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    env_prefix: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise KafkaSecurityError("; ".join(problems))

    @property
    def uses_tls(self) -> bool:
        return self.protocol in TLS_PROTOCOLS

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in SASL_PROTOCOLS

    def _name(self, setting: str) -> str:
        return f"{self.env_prefix}KAFKA_{setting}"

    def _problems(self) -> list[str]:
        name = self._name
        protocol = f"{name('SECURITY_PROTOCOL')}={self.protocol}"
        problems: list[str] = []
        if self.uses_sasl:
            if self.sasl_mechanism is None:
                problems.append(
                    f"{protocol} needs {name('SASL_MECHANISM')} "
                    f"({', '.join(SASL_MECHANISMS)}; Strimzi's `scram-sha-512` is SCRAM-SHA-512)"
                )
            elif self.sasl_mechanism not in SASL_MECHANISMS:
                problems.append(
                    f"{name('SASL_MECHANISM')}={self.sasl_mechanism} is not one of "
                    f"{', '.join(SASL_MECHANISMS)}"
                )
            if not self.sasl_username:
                problems.append(f"{protocol} needs {name('SASL_USERNAME')}")
            if not self.sasl_password:
                problems.append(f"{protocol} needs {name('SASL_PASSWORD')}")
        else:
            stray = [
                name(setting)
                for setting, value in (
                    ("SASL_MECHANISM", self.sasl_mechanism),
                    ("SASL_USERNAME", self.sasl_username),
                    ("SASL_PASSWORD", self.sasl_password),
                )
                if value
            ]
            if stray:
                problems.append(
                    f"{', '.join(stray)} would be ignored with {protocol}: "
                    "use SASL_SSL (or SASL_PLAINTEXT) to authenticate with SASL"
                )
        files = {
            "SSL_CA_FILE": self.ssl_ca_file,
            "SSL_CERT_FILE": self.ssl_cert_file,
            "SSL_KEY_FILE": self.ssl_key_file,
            "SSL_KEY_PASSWORD": self.ssl_key_password,
        }
        if not self.uses_tls:
            stray = [name(setting) for setting, value in files.items() if value]
            if stray:
                problems.append(
                    f"{', '.join(stray)} would be ignored with {protocol}: "
                    "use SSL (or SASL_SSL) to connect with TLS"
                )
        elif (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            problems.append(
                f"a client certificate needs both {name('SSL_CERT_FILE')} and "
                f"{name('SSL_KEY_FILE')} (Strimzi's user.crt and user.key)"
            )
        elif self.ssl_key_password and self.ssl_key_file is None:
            problems.append(f"{name('SSL_KEY_PASSWORD')} is set without {name('SSL_KEY_FILE')}")
        return problems

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a TLS protocol (the system's CAs unless a CA file is given)."""
        if not self.uses_tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_ca_file,
            certfile=self.ssl_cert_file,
            keyfile=self.ssl_key_file,
            password=self.ssl_key_password,
        )
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            # aiokafka takes the SCRAM credentials under the PLAIN names too
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        return options

    def librdkafka_options(self) -> dict[str, Any]:
        """The same, as librdkafka (confluent-kafka) configuration properties."""
        options: dict[str, Any] = {"security.protocol": self.protocol.lower()}
        if self.uses_sasl:
            options["sasl.mechanisms"] = self.sasl_mechanism
            options["sasl.username"] = self.sasl_username
            options["sasl.password"] = self.sasl_password
        if self.uses_tls:
            # without a CA file librdkafka, like aiokafka, trusts the system's CAs
            files = {
                "ssl.ca.location": self.ssl_ca_file,
                "ssl.certificate.location": self.ssl_cert_file,
                "ssl.key.location": self.ssl_key_file,
            }
            options.update({key: str(path) for key, path in files.items() if path is not None})
            if self.ssl_key_password:
                options["ssl.key.password"] = self.ssl_key_password
        return options

    def faust_credentials(self) -> CredentialsT | None:
        """Faust's `broker_credentials` (needs faust-streaming, as the triggers worker has)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None

    def faust_options(self, bootstrap_servers: str) -> dict[str, Any]:
        """`broker` and `broker_credentials` of a `faust.App`.

        Faust's URL scheme picks its transport (`kafka://` is aiokafka), not the security:
        that travels in the credentials.
        """
        return {
            "broker": f"kafka://{bootstrap_servers}",
            "broker_credentials": self.faust_credentials(),
        }


PLAINTEXT = KafkaSecurity()


class KafkaClientSettings(BaseSettings):
    """The Kafka security settings of a service's `Settings`, under the service's prefix.

    Outside dev and test (`environment` of the inheriting settings is "production"),
    SASL_PLAINTEXT is refused unless `kafka_allow_plaintext_sasl` says it is meant: SCRAM keeps
    the password off the wire but not the records, and PLAIN sends the password in clear.
    """

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, SSL (TLS; with a client certificate: mTLS), SASL_SSL or "
        "SASL_PLAINTEXT",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None,
        description="SCRAM-SHA-512 (Strimzi, MSK), SCRAM-SHA-256 or PLAIN (Confluent Cloud)",
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(default=None, description="Secret: no default")
    kafka_ssl_ca_file: FilePath | None = Field(
        default=None,
        description="PEM of the CA that signed the brokers' certificates (Strimzi: ca.crt of "
        "<cluster>-cluster-ca-cert); unset: the system's CAs",
    )
    kafka_ssl_cert_file: FilePath | None = Field(
        default=None, description="mTLS: the client's PEM certificate (Strimzi: user.crt)"
    )
    kafka_ssl_key_file: FilePath | None = Field(
        default=None, description="mTLS: the client's PEM private key (Strimzi: user.key)"
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Only for an encrypted private key"
    )
    kafka_allow_plaintext_sasl: bool = Field(
        default=False, description="Allow SASL_PLAINTEXT in production (records are not encrypted)"
    )

    @property
    def kafka_security(self) -> KafkaSecurity:
        """What every Kafka client of the service is made with."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=_secret(self.kafka_sasl_password),
            ssl_ca_file=self.kafka_ssl_ca_file,
            ssl_cert_file=self.kafka_ssl_cert_file,
            ssl_key_file=self.kafka_ssl_key_file,
            ssl_key_password=_secret(self.kafka_ssl_key_password),
            env_prefix=str(self.model_config.get("env_prefix") or "").upper(),
        )

    @model_validator(mode="after")
    def _check_kafka_security(self) -> KafkaClientSettings:
        security = self.kafka_security  # raises KafkaSecurityError, a ValueError, when wrong
        environment = getattr(self, "environment", "dev")
        if (
            security.protocol == "SASL_PLAINTEXT"
            and environment == "production"
            and not self.kafka_allow_plaintext_sasl
        ):
            prefix = security.env_prefix
            raise ValueError(
                f"{prefix}KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT in production sends the records "
                f"(and with PLAIN the password) unencrypted: use SASL_SSL, or set "
                f"{prefix}KAFKA_ALLOW_PLAINTEXT_SASL=true if the network is private"
            )
        return self


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
