"""The twin's certificate authority: it signs the broker's server certificate and every device certificate that
``CreateKeysAndCertificate`` issues against the twin, so the broker (mutual TLS) accepts exactly those.

A device certificate's common name is unique (``twin-<serial>``): mosquitto's ``use_identity_as_username`` makes it
the MQTT username, and the twin writes each certificate's rights under that name (``broker.py``).
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

VALID_DAYS = 3650


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MyController cloud twin"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@dataclass
class IssuedCertificate:
    certificate_pem: str
    private_key_pem: str
    public_key_pem: str
    common_name: str


class Authority:
    """A CA kept in ``directory`` (``ca.pem``/``ca.key``), made on first use."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "ca.pem"
        key_path = directory / "ca.key"
        if self.ca_path.is_file() and key_path.is_file():
            self._key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            self._cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            return
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name("MyController cloud twin CA"))
                .issuer_name(_name("MyController cloud twin CA")).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        key_path.write_text(_pem_key(key))
        key_path.chmod(0o600)
        self.ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._key, self._cert = key, cert

    def _sign(self, subject: str, key: rsa.RSAPrivateKey, *, server_hosts: list[str] | None = None) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(self._cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self._cert.public_key()), critical=False))  # type: ignore[arg-type]
        if server_hosts is not None:
            names: list[x509.GeneralName] = []
            for host in server_hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return builder.sign(self._key, hashes.SHA256())  # type: ignore[arg-type]

    def server_certificate(self, directory: Path, hosts: list[str]) -> tuple[Path, Path]:
        """The broker's certificate for ``hosts`` (IP addresses or names): ``(cert, key)`` paths."""
        key = _key()
        cert = self._sign(hosts[0], key, server_hosts=hosts)
        cert_path, key_path = directory / "server.pem", directory / "server.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_text(_pem_key(key))
        key_path.chmod(0o600)
        return cert_path, key_path

    def device_certificate(self) -> IssuedCertificate:
        key = _key()
        common_name = f"twin-{secrets.token_hex(8)}"
        cert = self._sign(common_name, key)
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return IssuedCertificate(cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key), public,
                                 common_name)


def common_name(certificate_pem: str) -> str | None:
    """The subject's CN of a PEM certificate (what mosquitto makes the username), or None."""
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
