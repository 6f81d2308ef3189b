"""Traefik's config for the mesh run without Docker (`make run-mesh`), as plain
dicts: a static config (entry points, the file provider) and the dynamic one
it names (routers and load-balanced services).

Two entry points, on the same addresses as `make run`: gRPC (h2c) routed by
the gRPC service prefix straight to that service's replicas, and REST routed
to Envoy's JSON transcoder. Each gRPC service is health-checked with
grpc.health.v1 so a replica that is down or not ready (NOT_SERVING) leaves
the rotation until it is back. (docker-compose.yml uses the hand-written
gateway/traefik/ instead: same routes, compose host names, TLS.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GRPC_SERVICES: tuple[str, ...] = ("AuthService", "UploadService", "MetadataService", "ProcessService")
HEALTH_INTERVAL = "1s"
# Uploads and watches last as long as they last; only idle connections are closed.
_NO_TIMEOUTS = {"respondingTimeouts": {"readTimeout": "0s", "writeTimeout": "0s", "idleTimeout": "180s"}}


def static_config(*, grpc_address: str, rest_address: str, ping_address: str, dynamic_file: Path,
                  access_log: Path | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "entryPoints": {
            "grpc": {"address": grpc_address, "transport": _NO_TIMEOUTS},
            "rest": {"address": rest_address, "transport": _NO_TIMEOUTS},
            "ping": {"address": ping_address},
        },
        "ping": {"entryPoint": "ping"},
        "providers": {"file": {"filename": str(dynamic_file), "watch": False}},
        "log": {"level": "WARN", "format": "json"},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
    if access_log is not None:
        config["accessLog"] = {"filePath": str(access_log), "format": "json",
                               # Paths only: query strings may carry tokens.
                               "fields": {"headers": {"defaultMode": "drop"}}}
    return config


def dynamic_config(*, services: Mapping[str, Sequence[str]], envoy: str) -> dict[str, Any]:
    """services: gRPC service short name ("AuthService") -> its replicas' host:port."""
    missing = [name for name in GRPC_SERVICES if not services.get(name)]
    if missing:
        raise ValueError(f"no address for {', '.join(missing)}")
    routers: dict[str, Any] = {
        "rest": {"entryPoints": ["rest"], "rule": "PathPrefix(`/`)", "service": "envoy"},
    }
    backends: dict[str, Any] = {"envoy": {"loadBalancer": {"servers": [{"url": f"http://{envoy}"}]}}}
    for name in GRPC_SERVICES:
        key = name.removesuffix("Service").lower()
        routers[f"grpc-{key}"] = {"entryPoints": ["grpc"], "rule": f"PathPrefix(`/vtc.v1.{name}/`)",
                                  "service": key}
        backends[key] = {"loadBalancer": {
            "servers": [{"url": f"h2c://{address}"} for address in services[name]],
            "healthCheck": {"mode": "grpc", "interval": HEALTH_INTERVAL, "timeout": "1s"},
        }}
    return {"http": {"routers": routers, "services": backends}}
