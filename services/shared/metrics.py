"""Prometheus metrics: every metric the services export, defined once here
(names follow Prometheus conventions: base units in the name, `_total` on
counters), and the HTTP endpoint that serves them.

One registry per process: the all-in-one process serves all four services'
metrics on one endpoint, a service running alone its own
(VTC_METRICS_HOST / VTC_METRICS_PORT). docs/observability.md lists them with
what each means.

Hot paths touch these only at the edges of their work: once per RPC, per
upload, per job, per storage call, never per chunk or frame.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("vtc.metrics")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_JOB_SECONDS_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
_SPEED_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
_THROUGHPUT_BUCKETS = tuple(float(mb * 1_000_000) for mb in (1, 5, 10, 25, 50, 100, 200, 400, 800, 1600))

# gRPC (interceptors.TelemetryInterceptor): every call a server handled.
GRPC_HANDLED = Counter(
    "vtc_grpc_server_handled_total", "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_type", "grpc_code"])
GRPC_HANDLING_SECONDS = Histogram(
    "vtc_grpc_server_handling_seconds", "Time from an RPC's start to its end on the server (whole stream "
    "for streaming calls).", ["grpc_service", "grpc_method", "grpc_type"], buckets=_LATENCY_BUCKETS)

# Uploads (upload_svc): counted once per upload, never per chunk.
UPLOAD_BYTES = Counter("vtc_upload_received_bytes_total", "Bytes of uploads received in full (size checked).")
UPLOAD_THROUGHPUT = Histogram(
    "vtc_upload_throughput_bytes_per_second", "Each upload's size over the time its bytes took to arrive.",
    buckets=_THROUGHPUT_BUCKETS)

# Jobs: the worker's view (process_svc) ...
JOBS_FINISHED = Counter(
    "vtc_jobs_finished_total", "Job runs a worker ended, by profile and outcome (completed, failed, cancelled).",
    ["profile", "outcome"])
JOB_SECONDS = Histogram(
    "vtc_job_duration_seconds", "Wall time of a job run on a worker, from taking it to its last event.",
    ["profile", "outcome"], buckets=_JOB_SECONDS_BUCKETS)
ENCODE_SPEED = Histogram(
    "vtc_job_encode_speed_ratio", "Encode speed as a multiple of realtime: the source's seconds over the "
    "encode's wall seconds (2 = twice as fast as playback).", ["profile"], buckets=_SPEED_BUCKETS)
JOBS_RUNNING_HERE = Gauge("vtc_worker_jobs_running", "Jobs this worker process runs now.")
# ... and the database's (metadata_svc's sampler; every replica reports the same numbers: use max()).
JOBS = Gauge("vtc_jobs", "Jobs in the metadata database by state and profile.", ["state", "profile"])

# The broker, read by metadata's sampler (every replica reports the same numbers: use max()).
QUEUE_MESSAGES = Gauge("vtc_bus_queue_messages", "Messages waiting in a queue on the broker (ready, not "
                       "delivered).", ["queue"])
QUEUE_CONSUMERS = Gauge("vtc_bus_queue_consumers", "Consumers of a queue on the broker (for process.jobs: worker "
                        "slots).", ["queue"])
OUTBOX_MESSAGES = Gauge("vtc_outbox_messages", "Rows in metadata's outbox waiting for the relay, by kind "
                        "(job_request: held for a free worker; event: published as soon as the broker takes it).",
                        ["kind"])
OUTBOX_OLDEST_AGE = Gauge("vtc_outbox_oldest_age_seconds", "Age of the oldest outbox row of each kind (0: none).",
                          ["kind"])

# WatchJob (metadata_svc): streams open on this replica.
WATCH_SUBSCRIBERS = Gauge("vtc_watchjob_subscribers", "WatchJob streams open on this metadata replica.")

# Object storage (every service that uses it).
STORAGE_SECONDS = Histogram(
    "vtc_storage_operation_duration_seconds", "Time of one object storage operation.",
    ["backend", "operation"], buckets=_LATENCY_BUCKETS)
STORAGE_ERRORS = Counter(
    "vtc_storage_operation_errors_total", "Object storage operations that failed (a missing object is an "
    "answer, not an error), by error type.", ["backend", "operation", "error"])


@dataclass
class MetricsEndpoint:
    """The HTTP endpoint serving the registry at /metrics."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> MetricsEndpoint:
    """Serves /metrics on host:port (0 picks a free port) in a thread of its own."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise RuntimeError(f"cannot serve metrics on {host}:{port} ({error.strerror}): is the port taken? "
                           "Set VTC_METRICS_PORT (0 picks a free one, -1 serves none)") from error
    return MetricsEndpoint(host=host, port=int(server.server_port), _server=server, _thread=thread)


def write_scrape_targets(path: Path, endpoints: Mapping[str, MetricsEndpoint | str]) -> None:
    """Writes where each process serves its metrics as a Prometheus file_sd target
    list ({"targets": ["host:port"], "labels": {"job": "vtc-<name>", ...}}), so a
    local Prometheus (deploy/prometheus/local.yml) finds ports picked at start."""
    groups = []
    for name, endpoint in endpoints.items():
        address = endpoint if isinstance(endpoint, str) else f"{endpoint.host}:{endpoint.port}"
        groups.append({"targets": [address], "labels": {"job": f"vtc-{name.split('-')[0]}", "process": name}})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(groups, indent=2) + "\n")
    os.replace(temporary, path)  # Prometheus never reads half a file
