"""Why a secured broker refused us, in words an operator can act on.

aiokafka logs a failed SASL handshake and then raises only "Unable to bootstrap from [...]",
as it would for a broker that is down; waiting for such a broker would wait for ever. One
direct connection with the same settings gets the broker's own answer back.
"""

from __future__ import annotations

import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from beckon_messaging.security import KafkaSecurity

PROBE_TIMEOUT_MS = 5_000


class KafkaAuthenticationError(KafkaConnectionError):  # type: ignore[misc]
    """The broker refused these credentials or this TLS setup: retrying will not help.

    A KafkaConnectionError, so callers that retry while the broker is away keep retrying (and
    logging this message) should the credentials be fixed behind them (a rotated secret)."""

    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


async def authentication_refused(
    bootstrap_servers: str, security: KafkaSecurity
) -> KafkaAuthenticationError | None:
    """What the first bootstrap server says to our credentials, when it refuses them;
    None when it accepts them, or when it can't be reached (down is not refused)."""
    if not (security.uses_sasl or security.uses_tls):
        return None
    server = bootstrap_servers.split(",")[0].strip()
    host, _, port = server.rpartition(":")
    name = security.env_prefix + "KAFKA_"
    try:
        connection = await create_conn(
            host.strip("[]"),
            int(port),
            client_id="beckon-auth-check",
            request_timeout_ms=PROBE_TIMEOUT_MS,
            **security.aiokafka_options(),
        )
    except SaslAuthenticationFailed as exc:
        return KafkaAuthenticationError(
            f"the broker at {server} refused user {security.sasl_username!r} with "
            f"{security.sasl_mechanism}: {_detail(exc)}. Check {name}SASL_USERNAME and "
            f"{name}SASL_PASSWORD (Strimzi: the KafkaUser's secret) and {name}SASL_MECHANISM"
        )
    except (UnsupportedSaslMechanismError, IllegalSaslStateError) as exc:
        return KafkaAuthenticationError(
            f"the broker at {server} does not take {security.sasl_mechanism} on this "
            f"listener: {_detail(exc)}. Check {name}SASL_MECHANISM and the listener's port"
        )
    except ssl.SSLCertVerificationError as exc:
        return KafkaAuthenticationError(
            f"the certificate of the broker at {server} is not trusted: "
            f"{exc.verify_message or exc}. Set {name}SSL_CA_FILE to the cluster's CA "
            "(Strimzi: ca.crt of the <cluster>-cluster-ca-cert secret)"
        )
    except ssl.SSLError as exc:
        return KafkaAuthenticationError(
            f"TLS with the broker at {server} failed: {exc}. Is {server} a TLS listener "
            f"({name}SECURITY_PROTOCOL={security.protocol})?"
        )
    except Exception:  # down, unreachable or slow: not a refusal
        return None
    connection.close()
    return None


def _detail(exc: Exception) -> str:
    return str(exc).split(": ", 1)[-1] or type(exc).__name__
