"""Envoy's bootstrap config for the REST gateway, as a plain dict.

One listener runs the grpc_json_transcoder: REST/JSON requests become gRPC
calls by the `google.api.http` annotations in the descriptor set, and gRPC
requests pass through untouched. After transcoding the request path is the
gRPC one (`/vtc.v1.UploadService/Upload`), so routes pick the upstream by the
gRPC service prefix: the all-in-one process gives one address for all four
services, the docker-compose mesh one address per service.

`python -m gateway.envoy_config --compose > deploy/envoy.yaml` writes the
compose config (a test checks the committed file is current).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.shared.tls import TlsFiles

TRANSCODED_SERVICES: tuple[str, ...] = (
    "vtc.v1.AuthService",
    "vtc.v1.UploadService",
    "vtc.v1.MetadataService",
    "vtc.v1.ProcessService",
)

# The transcoder cuts a streamed request body (Upload) into gRPC messages of at
# most 1 MiB itself, so this limit bounds what it buffers for one JSON request,
# never the size of an upload.
MAX_JSON_REQUEST_BYTES = 1024 * 1024
# Unary JSON replies are buffered whole before they are sent; a full page of
# ListVideos with probes is well below this.
MAX_JSON_RESPONSE_BYTES = 16 * 1024 * 1024
# A WatchJob stream of a queued job may be silent for a long time, and a slow
# client may pause an upload; neither should be cut.
STREAM_IDLE_SECONDS = 3600
# Each open WatchJob or upload holds one upstream stream; Envoy's default cap
# (1024 per cluster) would refuse watchers long before the services tire.
MAX_UPSTREAM_STREAMS = 10_000

# The admin API's socket: its owner only.
ADMIN_SOCKET_MODE = 0o600

# Where Debian-like systems keep the trusted roots, for upstream TLS without our own CA.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TYPE = "type.googleapis.com/"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """"host:port" or "[v6]:port"."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"not a host:port address: {text!r}")
        return cls(host.strip("[]"), int(port))

    @classmethod
    def parse_list(cls, text: str) -> tuple[Address, ...]:
        """One address, or replicas of one service: "host:port,host:port"."""
        addresses = tuple(cls.parse(part) for part in text.split(",") if part.strip())
        if not addresses:
            raise ValueError(f"no host:port address in {text!r}")
        return addresses

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def socket_address(self) -> dict[str, Any]:
        return {"socket_address": {"address": self.host, "port_value": self.port}}


def _short_name(service: str) -> str:
    """"vtc.v1.UploadService" -> "upload"."""
    return service.rsplit(".", 1)[-1].removesuffix("Service").lower()


Endpoints = tuple[Address, ...]  # one service's replicas


def _clusters_by_service(upstreams: str | Mapping[str, str]) -> dict[str, tuple[str, Endpoints]]:
    """service -> (cluster name, endpoints); services at the same endpoints share a cluster."""
    if isinstance(upstreams, str):
        addresses = Address.parse_list(upstreams)
        return {service: ("vtc", addresses) for service in TRANSCODED_SERVICES}
    missing = [s for s in TRANSCODED_SERVICES if s not in upstreams]
    unknown = [s for s in upstreams if s not in TRANSCODED_SERVICES]
    if missing or unknown:
        raise ValueError(f"upstreams must name exactly {list(TRANSCODED_SERVICES)}; "
                         f"missing {missing}, unknown {unknown}")
    by_address: dict[Endpoints, list[str]] = {}
    for service in TRANSCODED_SERVICES:
        by_address.setdefault(Address.parse_list(upstreams[service]), []).append(service)
    result: dict[str, tuple[str, Endpoints]] = {}
    for address, services in by_address.items():
        name = "vtc" if len(services) == len(TRANSCODED_SERVICES) else "-".join(map(_short_name, services))
        for service in services:
            result[service] = (name, address)
    return result


def _upstream_tls(addresses: Endpoints, tls: TlsFiles) -> dict[str, Any]:
    """Envoy -> service over TLS: the service's certificate is checked against the
    CA and must name the host Envoy dialled (one of the replicas' hosts); Envoy
    presents the services' certificate as its client certificate (mutual TLS)."""
    context: dict[str, Any] = {
        "alpn_protocols": ["h2"],
        "validation_context": {
            "trusted_ca": {"filename": str(tls.ca_file or SYSTEM_CA_BUNDLE)},
            "match_typed_subject_alt_names": [{
                "san_type": "IP_ADDRESS" if address.is_ip else "DNS",
                "matcher": {"exact": address.host},
            } for address in dict.fromkeys(addresses)],
        },
    }
    if tls.cert_file is not None and tls.key_file is not None:
        context["tls_certificates"] = [{"certificate_chain": {"filename": str(tls.cert_file)},
                                        "private_key": {"filename": str(tls.key_file)}}]
    upstream: dict[str, Any] = {"@type": _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                                "common_tls_context": context}
    names = {a.host for a in addresses if not a.is_ip}
    if len(names) == 1:
        upstream["sni"] = names.pop()
    return {"name": "envoy.transport_sockets.tls", "typed_config": upstream}


def _cluster(name: str, addresses: Endpoints, tls: TlsFiles | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        # Compose names resolve to every replica of a service; IPs need no DNS.
        "type": "STATIC" if all(a.is_ip for a in addresses) else "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": _TYPE + _HTTP_PROTOCOL_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        # Notices a vanished peer under a silent stream (a WatchJob on a queued
        # job). TCP keepalive, not HTTP/2 PINGs: gRPC servers answer frequent
        # PINGs without data with GOAWAY "too_many_pings", which ends the stream.
        "upstream_connection_options": {"tcp_keepalive": {
            "keepalive_time": 60, "keepalive_interval": 10, "keepalive_probes": 3}},
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_requests": MAX_UPSTREAM_STREAMS,
            "max_pending_requests": MAX_UPSTREAM_STREAMS,
        }]},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": a.socket_address()}} for a in addresses]}],
        },
        # A replica that refuses connections leaves the rotation for a while.
        "outlier_detection": {"consecutive_local_origin_failure": 1, "split_external_local_origin_errors": True,
                              "base_ejection_time": "5s", "max_ejection_percent": 100},
    }
    if tls is not None and tls.enabled:
        cluster["transport_socket"] = _upstream_tls(addresses, tls)
    return cluster


def _routes(clusters: Mapping[str, tuple[str, Endpoints]]) -> list[dict[str, Any]]:
    return [
        {
            "name": _short_name(service),
            "match": {"prefix": f"/{service}/"},
            "route": {
                "cluster": cluster,
                # Uploads and WatchJob streams last as long as they last.
                "timeout": "0s",
                "idle_timeout": f"{STREAM_IDLE_SECONDS}s",
                # Nothing reached a replica that refused the connection: another one is tried.
                "retry_policy": {"retry_on": "connect-failure,refused-stream", "num_retries": 2},
            },
        }
        for service, (cluster, _addresses) in clusters.items()
    ]


# Envoy's own replies (unknown REST path, bad JSON, service down) as the same
# JSON a gRPC error becomes: HTTP status -> gRPC code, the reason as message.
LOCAL_REPLY_CODES: Mapping[int, int] = {
    400: 3,   # INVALID_ARGUMENT: bad JSON, unknown query parameter
    404: 5,   # NOT_FOUND: no REST route
    408: 4,   # DEADLINE_EXCEEDED: request headers too slow
    413: 8,   # RESOURCE_EXHAUSTED: JSON body over MAX_JSON_REQUEST_BYTES
    500: 13,  # INTERNAL: reply over MAX_JSON_RESPONSE_BYTES
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE: the service is down or unreachable
    504: 4,   # DEADLINE_EXCEEDED
}
_UNKNOWN = 2


def _local_reply_config() -> dict[str, Any]:
    # Native gRPC calls passing through get gRPC statuses from Envoy, and must
    # keep them: only requests that came as REST (the transcoder records the
    # original path) or are not gRPC get JSON bodies.
    rest_request = {"or_filter": {"filters": [
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": True}}},
        {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"},
                                      "invert_match": True, "treat_missing_header_as_empty": True}}},
    ]}}

    def json_body(code: int) -> dict[str, Any]:
        return {"json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"}}

    def status_is(status: int) -> dict[str, Any]:
        return {"status_code_filter": {"comparison": {
            "op": "EQ", "value": {"default_value": status, "runtime_key": f"vtc.local_reply.{status}"}}}}

    mappers = [{"filter": {"and_filter": {"filters": [status_is(status), rest_request]}},
                "body_format_override": json_body(code)}
               for status, code in LOCAL_REPLY_CODES.items()]
    mappers.append({"filter": rest_request, "body_format_override": json_body(_UNKNOWN)})
    return {"mappers": mappers}


def _transcoder(descriptor_path: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": _TYPE + "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": descriptor_path,
            "services": list(TRANSCODED_SERVICES),
            "print_options": {
                "add_whitespace": False,
                # A user sees `"percent": 0` rather than a missing field.
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
                # WatchJob: one JSON object per line, flushed as each event
                # arrives, so `curl -N ... | jq` works on a live stream.
                "stream_newline_delimited": True,
            },
            # gRPC errors come back as {"code": 5, "message": "...", "details": [...]}.
            "convert_grpc_status": True,
            "request_validation_options": {
                # An unknown REST path is a 404 here, not an odd error from a service.
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
            },
            # ?header.title=My+clip means "My clip", as every form encoder (and
            # curl --url-query, httpx, requests) writes it; a literal + is %2B.
            "query_param_unescape_plus": True,
            "max_request_body_size": MAX_JSON_REQUEST_BYTES,
            "max_response_body_size": MAX_JSON_RESPONSE_BYTES,
        },
    }


def _connection_manager(clusters: Mapping[str, tuple[str, Address]], descriptor_path: str,
                        access_log: bool) -> dict[str, Any]:
    manager: dict[str, Any] = {
        "@type": _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "rest",
        # HTTP/1.1 from curl, h2c from Traefik and gRPC clients.
        "codec_type": "AUTO",
        "stream_idle_timeout": f"{STREAM_IDLE_SECONDS}s",
        "request_timeout": "0s",
        "request_headers_timeout": "30s",
        "common_http_protocol_options": {"idle_timeout": "300s"},
        "normalize_path": True,
        "merge_slashes": True,
        "local_reply_config": _local_reply_config(),
        "route_config": {
            "name": "vtc",
            "virtual_hosts": [{"name": "vtc", "domains": ["*"], "routes": _routes(clusters)}],
        },
        "http_filters": [
            _transcoder(descriptor_path),
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": _TYPE + "envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    if access_log:
        manager["access_log"] = _access_logs()
    return manager


def _access_logs() -> list[dict[str, Any]]:
    """JSON lines on stdout. Fields are named one by one: headers (Authorization) are
    never logged, nor a query string (a client may put a token there: ?access_token=).
    A signed URL's path is its credential (/play/<token>/...), so those requests get
    a logger of their own that writes the route and not the path."""
    fields = {
        "time": "%START_TIME%",
        "logger": "vtc.gateway",
        "method": "%REQ(:METHOD)%",
        "path": "%PATH(NQ:ORIG_OR_PATH)%",
        "grpc_method": "%PATH(NQ:PATH)%",
        "status": "%RESPONSE_CODE%",
        "grpc_status": "%GRPC_STATUS%",
        "bytes_in": "%BYTES_RECEIVED%",
        "bytes_out": "%BYTES_SENT%",
        "ms": "%DURATION%",
        "flags": "%RESPONSE_FLAGS%",
        "request_id": "%REQ(X-REQUEST-ID)%",
    }
    signed_fields = {**{k: v for k, v in fields.items() if k != "grpc_method"}, "path": "/%ROUTE_NAME%/(signed)"}

    def signed_path(prefix: str, invert: bool) -> dict[str, Any]:
        return {"header_filter": {"header": {"name": ":path", "string_match": {"prefix": prefix},
                                             "invert_match": invert}}}

    def logger(json_format: dict[str, str], log_filter: dict[str, Any]) -> dict[str, Any]:
        return {"name": "envoy.access_loggers.stdout", "filter": log_filter, "typed_config": {
            "@type": _TYPE + "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"json_format": json_format}}}

    return [
        logger(fields, {"and_filter": {"filters": [signed_path(p, True) for p in SIGNED_PREFIXES]}}),
        logger(signed_fields, {"or_filter": {"filters": [signed_path(p, False) for p in SIGNED_PREFIXES]}}),
    ]


def build_envoy_config(
    *,
    descriptor_path: str | Path,
    upstreams: str | Mapping[str, str],
    listen_host: str = "127.0.0.1",
    listen_port: int = 8080,
    admin_socket: str | Path | None = None,
    upstream_tls: TlsFiles | None = None,
    access_log: bool = True,
    files_upstream: str | None = None,
) -> dict[str, Any]:
    """Envoy's bootstrap config.

    upstreams: one "host:port" serving all four services (all-in-one), or a
    mapping of each service's full name to its "host:port" (compose).
    Port 0 lets the kernel pick (read the bound port from the admin API).
    admin_socket: where the admin API listens, a unix socket only its owner
    may open (0600); None disables it. Never a TCP port: any local user could
    reach that, and the admin API can stop Envoy and dumps its config.
    upstream_tls: the services' TLS settings when they serve TLS (Envoy then
    verifies them against the CA and presents their certificate).
    files_upstream: "host:port[,host:port]" of the signed file servers (local
    storage's download and playback URLs), routed at /files/ and /play/; None when storage is B2.
    """
    clusters = _clusters_by_service(upstreams)
    unique = {name: address for name, address in clusters.values()}
    config: dict[str, Any] = {
        "node": {"id": "vtc-gateway", "cluster": "vtc-gateway"},
        "static_resources": {
            "listeners": [{
                "name": "rest",
                "address": Address(listen_host, listen_port).socket_address(),
                # Linux's SO_REUSEPORT would let a second gateway share a taken
                # port silently; failing to start says what is wrong.
                "enable_reuse_port": False,
                # Envoy reads at most this much of a request at once; the
                # transcoder turns each read into gRPC messages of <= 1 MiB.
                "per_connection_buffer_limit_bytes": 1024 * 1024,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": _connection_manager(clusters, str(descriptor_path), access_log),
                }]}],
            }],
            "clusters": [_cluster(name, address, upstream_tls) for name, address in unique.items()],
        },
    }
    if admin_socket is not None:
        config["admin"] = {"address": {"pipe": {"path": str(admin_socket), "mode": ADMIN_SOCKET_MODE}}}
    if files_upstream is not None:
        _add_files_route(config, Address.parse_list(files_upstream))
    return config


# Signed URLs (services/shared/storage/signed_urls.py): single files, and HLS/DASH presentations.
SIGNED_PREFIXES = ("/files/", "/play/")


def _add_files_route(config: dict[str, Any], addresses: tuple[Address, ...]) -> None:
    """/files/... and /play/... to the signed file server as plain HTTP/1.1, past the
    transcoder (it would refuse a path no RPC maps to). The server checks signatures itself."""
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    for prefix in reversed(SIGNED_PREFIXES):
        routes.insert(0, {
            "name": prefix.strip("/"),
            "match": {"prefix": prefix},
            "route": {"cluster": "files", "timeout": "0s", "idle_timeout": "300s"},
            "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
                "@type": _TYPE + "envoy.config.route.v3.FilterConfig", "disabled": True}},
        })
    config["static_resources"]["clusters"].append({
        "name": "files",
        "type": "STATIC" if all(a.is_ip for a in addresses) else "STRICT_DNS",
        "connect_timeout": "5s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": "files", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": a.socket_address()}} for a in addresses]}]},
    })


def admin_socket_of(config: Mapping[str, Any]) -> Path | None:
    """The admin API's unix socket in a config build_envoy_config made, if it has one."""
    pipe = config.get("admin", {}).get("address", {}).get("pipe")
    return Path(pipe["path"]) if pipe else None


def render_yaml(config: Mapping[str, Any], header: str = "") -> str:
    body = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=100)
    return header + body


# The docker-compose mesh: service names resolve on the compose network,
# deploy/Dockerfile builds the descriptor set into the image at
# /app/gateway/vtc.pb, and the admin API is a socket inside the container
# (its health check runs there: deploy/healthcheck.py envoy-admin).
COMPOSE_UPSTREAMS: Mapping[str, str] = {
    "vtc.v1.AuthService": "auth:50051",
    "vtc.v1.UploadService": "upload:50051",
    "vtc.v1.MetadataService": "metadata:50051",
    "vtc.v1.ProcessService": "process:50051",
}
COMPOSE_DESCRIPTOR = "/app/gateway/vtc.pb"
# The metadata replicas' signed file servers (VTC_METADATA_FILES_PORT in docker-compose.yml).
COMPOSE_FILES = "metadata:8081"
COMPOSE_ADMIN_SOCKET = "/tmp/envoy-admin.sock"
COMPOSE_HEADER = ("# Envoy's config for docker-compose.yml. Generated: do not edit.\n"
                  "#   python -m gateway.envoy_config --compose > deploy/envoy.yaml\n")


def compose_config(upstream_tls: TlsFiles | None = None) -> dict[str, Any]:
    """deploy/envoy.yaml; with upstream_tls, for a mesh whose services serve TLS (docs/tls.md)."""
    return build_envoy_config(descriptor_path=COMPOSE_DESCRIPTOR, upstreams=COMPOSE_UPSTREAMS,
                              listen_host="0.0.0.0", listen_port=8080, admin_socket=COMPOSE_ADMIN_SOCKET,
                              upstream_tls=upstream_tls, files_upstream=COMPOSE_FILES)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.envoy_config",
                                     description="Print Envoy's REST gateway config as YAML.")
    parser.add_argument("--compose", action="store_true",
                        help="the docker-compose mesh's config (what deploy/envoy.yaml holds)")
    parser.add_argument("--grpc", default="127.0.0.1:50051", help="host:port serving all four services")
    for name in ("auth", "upload", "metadata", "process"):
        parser.add_argument(f"--{name}", metavar="HOST:PORT[,HOST:PORT]",
                            help=f"the {name} service's address(es), instead of --grpc (give all four)")
    parser.add_argument("--descriptor", default=str(Path(__file__).resolve().parent / "vtc.pb"),
                        help="descriptor set built by `make proto`")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="REST listener host:port")
    parser.add_argument("--admin-socket", default=None,
                        help="unix socket for the admin API (mode 0600); default: no admin API")
    parser.add_argument("--upstream-tls-cert", type=Path, help="services serve TLS: client certificate Envoy presents")
    parser.add_argument("--upstream-tls-key", type=Path, help="its private key")
    parser.add_argument("--upstream-tls-ca", type=Path, help="CA the services' certificates are checked against")
    parser.add_argument("--files", default=None, metavar="HOST:PORT",
                        help="the metadata service's signed file server (local storage), routed at /files/")
    return parser.parse_args(argv)


def upstreams_from_args(args: argparse.Namespace) -> str | dict[str, str]:
    per_service = {service: getattr(args, _short_name(service)) for service in TRANSCODED_SERVICES}
    if not any(per_service.values()):
        return str(args.grpc)
    missing = [f"--{_short_name(s)}" for s, address in per_service.items() if not address]
    if missing:
        raise SystemExit(f"give every service's address: missing {' '.join(missing)}")
    return per_service


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    tls = TlsFiles(args.upstream_tls_cert, args.upstream_tls_key, args.upstream_tls_ca)
    if args.compose:
        sys.stdout.write(render_yaml(compose_config(tls) if tls.enabled else compose_config(), COMPOSE_HEADER))
        return 0
    listen = Address.parse(args.listen)
    config = build_envoy_config(descriptor_path=args.descriptor, upstreams=upstreams_from_args(args),
                                listen_host=listen.host, listen_port=listen.port, admin_socket=args.admin_socket,
                                upstream_tls=tls, files_upstream=args.files)
    sys.stdout.write(render_yaml(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
