"""A private CA and the certificates a vtc deployment needs, for trying TLS and
mutual TLS without a PKI (and for the tests).

    python -m gateway.dev_certs DIR [--name HOST ...]

writes into DIR (created 0700; keys 0600):

- ca.crt / ca.key        the CA: VTC_TLS_CA_FILE of every service
- server.crt / server.key  one certificate for every service and the edge,
                          valid for each --name (default: localhost, 127.0.0.1,
                          ::1 and the compose service names); it is also the
                          services' client certificate for mutual TLS
                          (VTC_TLS_CERT_FILE / VTC_TLS_KEY_FILE), and Traefik's
- client.crt / client.key  a client certificate for people and tools (grpcurl,
                          the vtc CLI) calling services that require one

Certificates are ECDSA P-256, valid for 825 days. For production use your own
PKI; docs/tls.md says which file goes where.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1", "auth", "upload", "metadata", "process",
                                  "envoy", "traefik")
VALID_DAYS = 825


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        _write_private(key_path, self.key_pem)
        return cert_path, key_path


def new_ca(common_name: str = "vtc development CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (_validity(x509.CertificateBuilder()).subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return _issued(builder.sign(key, hashes.SHA256()), key)


def issue(ca: Issued, common_name: str, names: Sequence[str] = (), *, server: bool = True,
          client: bool = True) -> Issued:
    """A leaf certificate signed by `ca` for DNS names and IP addresses `names`."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client
                                                                       else [])
    builder = (_validity(x509.CertificateBuilder())
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca.certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]),
                                        critical=False)
    return _issued(builder.sign(ca.key, hashes.SHA256()), key)


def write_dev_certs(directory: Path, names: Sequence[str] = DEFAULT_NAMES) -> dict[str, Path]:
    """The CA, the shared service/edge certificate and a client certificate in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = new_ca()
    paths: dict[str, Path] = {}
    paths["ca_cert"], paths["ca_key"] = ca.write(directory, "ca")
    paths["server_cert"], paths["server_key"] = issue(ca, "vtc", names).write(directory, "server")
    paths["client_cert"], paths["client_key"] = issue(ca, "vtc client", server=False).write(directory, "client")
    return paths


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=VALID_DAYS))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issued(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), key_pem, certificate, key)


def _write_private(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.dev_certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--name", action="append", dest="names",
                        help="a DNS name or IP address the service certificate is valid for (repeatable)")
    args = parser.parse_args(argv)
    paths = write_dev_certs(args.directory, args.names or DEFAULT_NAMES)
    for role, path in paths.items():
        print(f"{role:12} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
