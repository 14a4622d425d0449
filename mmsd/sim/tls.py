"""Throwaway X.509 material for the simulator: a CA, a loopback server certificate, client certs.

Everything here is generated in memory with the ``cryptography`` package when the
simulator starts; nothing is meant to outlive the process. Validity periods use
the real wall clock, not the simulator's clock, because the TLS clients that
check them (requests, aiohttp) read the real one.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK_IPS = ("127.0.0.1", "::1")
LOOPBACK_NAMES = ("localhost",)

_BACKDATE = timedelta(hours=1)
_CA_LIFETIME = timedelta(days=30)
_LEAF_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Thumbprints:
    """A certificate's SHA-1 and SHA-256 fingerprints in the forms OAuth2 clients send them."""

    sha1_hex: str  # upper-case hex, as the Entra portal shows it
    x5t: str  # base64url of the SHA-1 fingerprint, no padding
    x5t_s256: str  # base64url of the SHA-256 fingerprint, no padding


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprints(cert: x509.Certificate) -> Thumbprints:
    """The fingerprints by which a JWT header (``x5t``, ``x5t#S256``) names ``cert``."""
    sha1 = cert.fingerprint(hashes.SHA1())  # a thumbprint, as AAD uses it
    sha256 = cert.fingerprint(hashes.SHA256())
    return Thumbprints(sha1_hex=sha1.hex().upper(), x5t=b64url(sha1), x5t_s256=b64url(sha256))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mmsd simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class CertificateAuthority:
    """A one-off CA (EC P-256) that signs the simulator's loopback server certificate."""

    def __init__(self, common_name: str = "mmsd simulator CA") -> None:
        now = datetime.now(UTC)
        self._key = ec.generate_private_key(ec.SECP256R1())
        public = self._key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_LIFETIME)
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM: what clients must trust."""
        return _cert_pem(self.cert)

    def issue_server_certificate(
        self,
        ips: tuple[str, ...] = LOOPBACK_IPS,
        names: tuple[str, ...] = LOOPBACK_NAMES,
    ) -> KeyPair:
        """A TLS server certificate (EC P-256) for the given IP and DNS SANs, signed by this CA."""
        now = datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        sans += [x509.DNSName(name) for name in names]
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0] if names else ips[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LEAF_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return KeyPair(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


def self_signed_client_certificate(common_name: str) -> KeyPair:
    """A self-signed RSA-2048 certificate for an app registration (azure-identity needs RSA)."""
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))
