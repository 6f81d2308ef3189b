"""Spans leave a service over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set: a
service running alone (`python -m services.auth_svc`) sends its spans to an
OTLP/HTTP receiver (a small HTTP server here, decoding what it gets with the
OTLP protobufs), joined to the trace the caller sent; without the variable it
sends nothing anywhere."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from vtc.v1 import auth_pb2, auth_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


class OtlpReceiver:
    """Collects the OTLP/HTTP trace exports POSTed to /v1/traces."""

    def __init__(self, port: int = 0) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        received = self.exports

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    received.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[str, str, bytes, bytes]]:
        """(service.name, span name, trace id, parent span id) of every span received."""
        found = []
        for export in self.exports:
            for resource_spans in export.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found += [(attributes["service.name"], s.name, s.trace_id, s.parent_span_id) for s in scope.spans]
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def auth_alone(data_dir: Path, otel: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VTC_", "OTEL_"))}
    env = {**clean, **otel, "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": "0", "VTC_BUS_URL": "memory://",
           "VTC_METRICS_PORT": "-1"}
    process = subprocess.Popen([sys.executable, "-m", "services.auth_svc"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        record = json.loads(line)
        if "listening on" in str(record["msg"]):
            return process, int(str(record["msg"]).rsplit(":", 1)[1])
    raise AssertionError(f"auth exited ({process.wait()}) without saying where it listens")


def issue_token_traced(port: int, data_dir: Path, trace_id: str) -> None:
    key = (data_dir / "keys" / "admin.key").read_text().strip()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
            auth_pb2.IssueTokenRequest(api_key=key), timeout=10,
            metadata=[("traceparent", f"00-{trace_id}-{'ab' * 8}-01")])


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)  # the service flushes its spans on the way out
    try:
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_spans_go_to_the_otlp_endpoint_joined_to_the_caller_s_trace(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    try:
        process, port = auth_alone(tmp_path / "var", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                                                      "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        trace_id = os.urandom(16).hex()
        try:
            issue_token_traced(port, tmp_path / "var", trace_id)
        finally:
            stop(process)
        spans = receiver.spans()
    finally:
        receiver.close()
    assert ("vtc-auth", "vtc.v1.AuthService/IssueToken", bytes.fromhex(trace_id), bytes.fromhex("ab" * 8)) in spans


def test_without_an_endpoint_nothing_is_sent(tmp_path: Path) -> None:
    # The exporter's default endpoint is localhost:4318: a receiver there would see any stray export.
    try:
        receiver = OtlpReceiver(4318)
    except OSError:
        pytest.skip("port 4318 is taken here: cannot watch the default OTLP endpoint")
    try:
        process, port = auth_alone(tmp_path / "var", {})
        try:
            issue_token_traced(port, tmp_path / "var", os.urandom(16).hex())
        finally:
            stop(process)
    finally:
        receiver.close()
    assert receiver.exports == []
