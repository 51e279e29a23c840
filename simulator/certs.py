"""A small development PKI: a CA, a broker certificate and one client certificate per vehicle.

Good for a bench, the tests and the drain benchmark; a fleet uses its own PKI (docs/cloud.md,
"Security"). Keys are EC P-256 (fast to make, supported by every TLS stack mosquitto uses).
A client certificate's common name is the vehicle id: with mosquitto's
``use_identity_as_username`` it becomes the MQTT username the ACL (``vehicles/%u/...``) sees.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-agent development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _validity(days: int, expired: bool) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    if expired:
        return now - 30 * DAY, now - DAY
    return now - DAY, now + days * DAY


class DevCA:
    """A certificate authority whose key lives in a directory; it issues leaf certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_file: Path):
        self.cert = cert
        self.key = key
        self.cert_file = cert_file

    @classmethod
    def create(cls, directory: Path, name: str = "edge-agent dev CA", days: int = 3650) -> DevCA:
        """Make a new self-signed CA in ``directory`` (``{stem}.pem`` and ``{stem}.key``)."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + days * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        stem = name.lower().replace(" ", "-")
        cert_file = directory / f"{stem}.pem"
        _write_cert(cert_file, cert)
        _write_key(directory / f"{stem}.key", key)
        return cls(cert, key, cert_file)

    def _issue(  # noqa: PLR0917 - private, called twice with every argument named below
        self,
        directory: Path,
        stem: str,
        common_name: str,
        usage: x509.ObjectIdentifier,
        hosts: Sequence[str],
        valid_from: datetime.datetime,
        valid_until: datetime.datetime,
    ) -> Issued:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid_from)
            .not_valid_after(valid_until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        issued = Issued(directory / f"{stem}.pem", directory / f"{stem}.key")
        _write_cert(issued.cert_file, cert)
        _write_key(issued.key_file, key)
        return issued

    def issue_server(
        self,
        directory: Path,
        hosts: Sequence[str],
        *,
        stem: str = "broker",
        days: int = 825,
        expired: bool = False,
    ) -> Issued:
        """A broker certificate valid for ``hosts`` (DNS names or IP addresses)."""
        valid_from, valid_until = _validity(days, expired)
        return self._issue(
            directory,
            stem,
            hosts[0],
            ExtendedKeyUsageOID.SERVER_AUTH,
            hosts,
            valid_from,
            valid_until,
        )

    def issue_client(
        self, directory: Path, identity: str, *, days: int = 825, expired: bool = False
    ) -> Issued:
        """A client certificate whose common name is ``identity`` (the vehicle id).

        ``expired=True`` makes one that ran out yesterday, for testing refusal.
        """
        valid_from, valid_until = _validity(days, expired)
        return self._issue(
            directory,
            identity,
            identity,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            (),
            valid_from,
            valid_until,
        )
