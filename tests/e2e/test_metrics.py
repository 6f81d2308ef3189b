"""The all-in-one process's /metrics endpoint after a real job: scraped over
HTTP and parsed as Prometheus parses it. Counters are compared before and
after the job, so other tests sharing the process cannot make this pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.calls import bearer, upload_requests
from tests.conftest import REQUIRE_SERVICES
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(stack: Stack) -> tuple[str, Samples]:
    assert stack.vtc.metrics is not None, "the all-in-one process serves no metrics"
    reply = httpx.get(stack.vtc.metrics.url, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return reply.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def test_metrics_after_a_job(stack: Stack, clip_640x360: Path) -> None:
    _, before = scrape(stack)
    token = stack.admin_token()
    with stack.channel() as channel:
        upload = upload_pb2_grpc.UploadServiceStub(channel)
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        reply = upload.Upload(upload_requests(clip_640x360, "metrics clip"), metadata=bearer(token), timeout=60)
        watching = metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token),
                                     timeout=120)
        first = next(watching)  # the stream is open on the server now
        _, during = scrape(stack)
        assert value(during, "vtc_watchjob_subscribers") >= 1
        final = first.job
        for update in watching:
            final = update.job
        assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error
        with pytest.raises(grpc.RpcError) as refused:
            metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply.video_id), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    text, after = scrape(stack)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # gRPC: by method and code, with a latency histogram.
    upload_rpc = {"grpc_service": "vtc.v1.UploadService", "grpc_method": "Upload"}
    assert grew("vtc_grpc_server_handled_total", **upload_rpc, grpc_type="client_stream", grpc_code="OK") == 1
    assert grew("vtc_grpc_server_handling_seconds_count", **upload_rpc) == 1
    assert grew("vtc_grpc_server_handling_seconds_sum", **upload_rpc) > 0
    assert grew("vtc_grpc_server_handled_total", grpc_method="RegisterVideo", grpc_code="OK") == 1
    assert grew("vtc_grpc_server_handled_total", grpc_method="GetVideo", grpc_code="UNAUTHENTICATED") == 1
    assert grew("vtc_grpc_server_handling_seconds_bucket", **upload_rpc, le="+Inf") == 1
    # Upload bytes and throughput.
    assert grew("vtc_upload_received_bytes_total") == clip_640x360.stat().st_size
    assert grew("vtc_upload_throughput_bytes_per_second_count") == 1
    # The job: outcome by profile, wall time, encode speed.
    assert grew("vtc_jobs_finished_total", profile="default", outcome="completed") == 1
    assert grew("vtc_job_duration_seconds_count", profile="default", outcome="completed") == 1
    assert grew("vtc_job_duration_seconds_sum", profile="default", outcome="completed") > 0
    assert grew("vtc_job_encode_speed_ratio_count", profile="default") == 1
    assert grew("vtc_job_encode_speed_ratio_sum", profile="default") > 0
    assert value(after, "vtc_worker_jobs_running") == 0
    # Storage: the source in, every file of the job's outputs in, and the source fetched by the worker.
    stored_files = 1 + sum(len(output.files) for output in final.outputs)
    assert stored_files >= 2
    assert grew("vtc_storage_operation_duration_seconds_count", backend="local", operation="put_file") == stored_files
    assert grew("vtc_storage_operation_duration_seconds_count", backend="local", operation="get_file") == 1
    assert value(after, "vtc_watchjob_subscribers") == 0

    # Sampled gauges (jobs by state, broker queues, outbox) show the job within a sampling period
    # (VTC_METADATA_METRICS_SAMPLE_SECONDS is 10), and no job running once the stack is idle: the stack
    # is the session's, and a job an earlier test left encoding may still run for a while on a loaded machine.
    def settled(samples: Samples) -> bool:
        return (value(samples, "vtc_jobs", state="completed", profile="default") >= 1
                and value(samples, "vtc_jobs", state="running") == 0)

    deadline = time.monotonic() + 180
    while not settled(after) and time.monotonic() < deadline:
        time.sleep(0.5)
        text, after = scrape(stack)
    assert value(after, "vtc_jobs", state="completed", profile="default") >= 1
    assert value(after, "vtc_jobs", state="running") == 0
    assert value(after, "vtc_bus_queue_consumers", queue="process.jobs") >= 1
    assert ("vtc_bus_queue_messages", frozenset({("queue", "process.jobs.dead-letter")})) in after
    assert ("vtc_outbox_messages", frozenset({("kind", "job_request")})) in after
    assert value(after, "vtc_outbox_oldest_age_seconds", kind="event") >= 0

    # Where a local Prometheus finds it (deploy/prometheus/local.yml).
    targets = json.loads((stack.data_dir / "metrics-targets.json").read_text())
    assert targets[0]["targets"] == [f"127.0.0.1:{stack.vtc.metrics.port}"]

    # Prometheus's own linter on the names (units, _total on counters), where it is installed.
    promtool = shutil.which("promtool")
    if promtool is None:
        if REQUIRE_SERVICES:
            pytest.fail("promtool is not installed (.ci/run installs it)")
        return
    vtc_only = "\n".join(line for line in text.splitlines() if "vtc_" in line) + "\n"
    linted = subprocess.run([promtool, "check", "metrics"], input=vtc_only, capture_output=True, text=True,
                            timeout=30)
    assert linted.returncode == 0, linted.stdout + linted.stderr

