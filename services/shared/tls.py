"""TLS for the gRPC servers and for calls between services.

Three settings on every service (CommonSettings):

- `tls_cert_file` + `tls_key_file`: the server serves TLS only, presenting
  this certificate; calls this service makes to its peers use TLS too and
  present it as their client certificate.
- `tls_ca_file`: the server requires a client certificate signed by this CA
  (mutual TLS), and this service verifies its peers' certificates against
  it (without it: the system's trusted roots).

None set: plaintext, as inside a private network behind Traefik. A mesh with
mutual TLS sets all three on every service (docs/tls.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


class TlsConfigError(ValueError):
    """A TLS file is missing or unreadable, or only half of a key pair is given."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError("VTC_TLS_CERT_FILE and VTC_TLS_KEY_FILE go together: set both "
                                 "(the certificate chain and its private key, PEM) or neither")

    @property
    def enabled(self) -> bool:
        """Whether this service speaks TLS, as a server or to its peers."""
        return self.cert_file is not None or self.ca_file is not None

    @property
    def requires_client_certificates(self) -> bool:
        return self.cert_file is not None and self.ca_file is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """What the gRPC server listens with; None: plaintext."""
        if self.cert_file is None or self.key_file is None:
            return None
        ca = _read(self.ca_file, "VTC_TLS_CA_FILE") if self.ca_file else None
        return grpc.ssl_server_credentials(
            [(_read(self.key_file, "VTC_TLS_KEY_FILE"), _read(self.cert_file, "VTC_TLS_CERT_FILE"))],
            root_certificates=ca, require_client_auth=ca is not None)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """What calls to peers connect with; None: plaintext."""
        if not self.enabled:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file, "VTC_TLS_CA_FILE") if self.ca_file else None,
            private_key=_read(self.key_file, "VTC_TLS_KEY_FILE") if self.key_file else None,
            certificate_chain=_read(self.cert_file, "VTC_TLS_CERT_FILE") if self.cert_file else None)


def _read(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"cannot read {setting}={path}: {error.strerror}") from error
    if b"-----BEGIN " not in data:
        raise TlsConfigError(f"{setting}={path} is not PEM (no -----BEGIN line)")
    return data
