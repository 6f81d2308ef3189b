"""Traefik's TLS config (file provider), for compose and for a Traefik run
outside Docker (`make run-mesh`): the edge certificate clients see, and the
transport Traefik uses to reach services that serve (mutual) TLS.

    write_dynamic_config(dynamic_dir / "tls.yml", edge_tls_config(cert, key))

gateway/traefik/dynamic/tls.yml is the compose copy (its options must match
EDGE_TLS_OPTIONS: a test checks). docs/tls.md tells the whole story.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from services.shared.tls import TlsFiles

# TLS 1.2 at least; h2 first, as gRPC clients need HTTP/2 over TLS.
EDGE_TLS_OPTIONS: Mapping[str, Any] = {"minVersion": "VersionTLS12", "alpnProtocols": ["h2", "http/1.1"]}
MESH_TRANSPORT = "vtc-mesh"


def edge_tls_config(cert_file: Path | str | None = None, key_file: Path | str | None = None) -> dict[str, Any]:
    """The `tls:` section: default options, and the certificate the edge presents
    (without one Traefik presents its own self-signed certificate)."""
    tls: dict[str, Any] = {"options": {"default": dict(EDGE_TLS_OPTIONS)}}
    if cert_file is not None and key_file is not None:
        tls["stores"] = {"default": {"defaultCertificate": {"certFile": str(cert_file), "keyFile": str(key_file)}}}
    return {"tls": tls}


def mesh_transport_config(tls: TlsFiles, name: str = MESH_TRANSPORT) -> dict[str, Any]:
    """A serversTransport for routes to services that serve TLS: their certificates
    are checked against the CA and Traefik presents the services' certificate
    (mutual TLS). Routes use it with `serversTransport: <name>` and https:// URLs."""
    transport: dict[str, Any] = {}
    if tls.ca_file is not None:
        transport["rootCAs"] = [str(tls.ca_file)]
    if tls.cert_file is not None and tls.key_file is not None:
        transport["certificates"] = [{"certFile": str(tls.cert_file), "keyFile": str(tls.key_file)}]
    return {"http": {"serversTransports": {name: transport}}}


def write_dynamic_config(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
