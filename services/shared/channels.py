"""gRPC channels to peer services.

A peer address is one host:port, or several (`10.0.0.5:50051,10.0.0.6:50051`)
for replicas of one service. Calls are balanced round robin over every
address the target resolves to (so one DNS name of a compose service with
several replicas works too), skipping the ones that are down: a call fails
only when none is up. Calls to the process service (its profile catalogue,
read-only) are retried on UNAVAILABLE, so a replica that died an instant ago
costs a retry rather than an error.

Channels speak TLS (mutual with a CA) when the service's TLS settings say so,
plaintext otherwise (services.shared.tls). Every call carries the caller's
trace context (traceparent), so the peer's work joins its trace.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

import grpc

from services.shared.interceptors import trace_context_interceptors
from services.shared.server import MAX_MESSAGE_BYTES
from services.shared.tls import TlsFiles

_SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [{
        "name": [{"service": "vtc.v1.ProcessService"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]},
    }],
})


def grpc_target(address: str) -> str:
    """The gRPC target for a peer address: "host:port" as it is, a list of
    IP:port as one ipv4:/ipv6: target gRPC balances over."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    if len(parts) <= 1:
        return address.strip()
    hosts = [p.rpartition(":")[0].strip("[]") for p in parts]
    try:
        versions = {ipaddress.ip_address(h).version for h in hosts}
    except ValueError:
        raise ValueError(f"peer address {address!r}: a list must name IP addresses only; for host names give "
                         "one name that resolves to every replica") from None
    if len(versions) > 1:
        raise ValueError(f"peer address {address!r}: mix of IPv4 and IPv6")
    return f"ipv{versions.pop()}:{','.join(parts)}"


def peer_channel(address: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = (), *,
                 tls: TlsFiles | None = None) -> grpc.aio.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
    ]
    credentials = tls.channel_credentials() if tls is not None else None
    chain = [*trace_context_interceptors(), *interceptors]
    if credentials is None:
        return grpc.aio.insecure_channel(grpc_target(address), interceptors=chain, options=options)
    return grpc.aio.secure_channel(grpc_target(address), credentials, interceptors=chain, options=options)
