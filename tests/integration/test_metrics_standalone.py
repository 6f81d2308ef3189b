"""A service running alone (`python -m services.auth_svc`) serves its own
metrics on VTC_METRICS_PORT, says where in its start line, counts its calls
there, and refuses to start on a port that is taken, saying which setting to change."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from vtc.v1 import auth_pb2, auth_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_line(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    for line in process.stdout:
        record = json.loads(line)
        if "listening on" in str(record["msg"]):
            return record
    raise AssertionError(f"the service exited ({process.wait()}) without saying where it listens")


def auth_alone(data_dir: Path, metrics_port: int) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VTC_", "OTEL_"))}
    env = {**clean, "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": "0", "VTC_BUS_URL": "memory://",
           "VTC_METRICS_PORT": str(metrics_port)}
    return subprocess.Popen([sys.executable, "-m", "services.auth_svc"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def counted(text: str, method: str, code: str) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "vtc_grpc_server_handled_total" and sample.labels["grpc_method"] == method
               and sample.labels["grpc_code"] == code)


def test_a_service_alone_serves_its_metrics_on_its_own_port(tmp_path: Path) -> None:
    port = free_port()
    process = auth_alone(tmp_path / "var", port)
    try:
        started = start_line(process)
        url = f"http://127.0.0.1:{port}/metrics"
        assert started["metrics"] == url
        grpc_port = int(str(started["msg"]).rsplit(":", 1)[1])
        admin_key = (tmp_path / "var" / "keys" / "admin.key").read_text().strip()
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=admin_key), timeout=10)
            try:
                auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=admin_key[:-4] + "0000"), timeout=10)
            except grpc.RpcError as refused:
                assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        text = httpx.get(url, timeout=10).text
        assert counted(text, "IssueToken", "OK") == 1
        assert counted(text, "IssueToken", "UNAUTHENTICATED") == 1

        # A second service on the same metrics port stops at once, naming the setting.
        clash = auth_alone(tmp_path / "other", port)
        output, _ = clash.communicate(timeout=60)
        assert clash.returncode == 1
        assert "Traceback" not in output
        assert f"cannot serve metrics on 127.0.0.1:{port}" in output and "VTC_METRICS_PORT" in output
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
