"""A throw-away certificate authority for tests of TLS and mTLS against the embedded broker.

Made with the `openssl` command line (the workspace has no Python crypto library): a CA, a
broker certificate for 127.0.0.1/localhost, and client certificates signed by the same CA, as a
Strimzi cluster gives its brokers and a `KafkaUser` with `authentication: tls`. All PEM; the
private keys are unencrypted PKCS#8, which both the JVM's PEM stores and OpenSSL read.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"


class TlsSetupError(RuntimeError):
    """openssl is missing or refused to make a certificate."""


@dataclass(frozen=True)
class CertifiedKey:
    cert: Path
    key: Path

    @property
    def chain_and_key(self) -> Path:
        """Certificate and key in one PEM file, as Kafka's `ssl.keystore.type=PEM` reads them."""
        return self.cert.with_suffix(".keystore.pem")


@dataclass(frozen=True)
class CertificateAuthority:
    directory: Path
    ca_cert: Path
    ca_key: Path

    def issue(self, name: str, *, common_name: str, server: bool = False) -> CertifiedKey:
        """A key and a certificate signed by this CA (`server`: valid for 127.0.0.1/localhost)."""
        key = self.directory / f"{name}.key"
        csr = self.directory / f"{name}.csr"
        cert = self.directory / f"{name}.crt"
        extensions = self.directory / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            f"extendedKeyUsage={usage}",
        ]
        if server:
            lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
        extensions.write_text("\n".join(lines) + "\n")
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={common_name}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
            "-CAcreateserial", "-out", cert, "-days", DAYS, "-sha256", "-extfile", extensions,
        )  # fmt: skip
        issued = CertifiedKey(cert=cert, key=key)
        issued.chain_and_key.write_text(cert.read_text() + key.read_text())
        return issued


def make_certificate_authority(
    directory: Path, name: str = "beckon-test-ca"
) -> CertificateAuthority:
    """A new self-signed CA in `directory`, valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ca_cert = directory / "ca.crt"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
        "-days", DAYS, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return CertificateAuthority(directory=directory, ca_cert=ca_cert, ca_key=ca_key)


def _openssl(*args: str | Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsSetupError(
            "the `openssl` command makes the test certificates; install it (Debian: "
            "`apt-get install openssl`)"
        )
    done = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TlsSetupError(f"openssl {args[0]} failed: {done.stderr.strip()}")
