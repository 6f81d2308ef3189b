"""Container health checks for docker-compose.yml, with what the image already has.

    python deploy/healthcheck.py grpc 127.0.0.1:50051                 # grpc.health.v1: SERVING?
    python deploy/healthcheck.py envoy-admin /tmp/envoy-admin.sock    # Envoy's /ready says LIVE?

Exit status 0 when healthy, 1 otherwise (with the reason on stderr). The gRPC
check speaks TLS when the service does: it reads the service's own
VTC_TLS_CERT_FILE / VTC_TLS_KEY_FILE / VTC_TLS_CA_FILE (services/shared/tls.py).
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
from pathlib import Path

TIMEOUT_SECONDS = 3.0


def grpc_serving(address: str, service: str = "") -> str | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with _channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            return f"{address}: {error.code().name} {error.details()}"  # type: ignore[attr-defined]
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def _channel(address: str):  # type: ignore[no-untyped-def]
    import grpc

    cert, key, ca = (os.environ.get(f"VTC_TLS_{name}_FILE") for name in ("CERT", "KEY", "CA"))
    if not (cert or ca):
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if cert and key else None,
        certificate_chain=Path(cert).read_bytes() if cert and key else None)
    return grpc.secure_channel(address, credentials)


def envoy_live(admin_socket: str) -> str | None:
    """Envoy's admin API is a unix socket (gateway/envoy_config.py): HTTP/1.1 over it."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(admin_socket)
            sock.sendall(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            reply = http.client.HTTPResponse(sock)
            reply.begin()
            body = reply.read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as error:
        return f"{admin_socket}: {error}"
    return None if reply.status == 200 and body == "LIVE" else f"{admin_socket}: HTTP {reply.status} {body}"


def main(argv: list[str]) -> int:
    checks = {"grpc": grpc_serving, "envoy-admin": envoy_live}
    if len(argv) < 2 or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    problem = checks[argv[0]](*argv[1:])
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
