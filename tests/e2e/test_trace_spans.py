"""The spans of one upload in the all-in-one process, as a trace backend would
receive them (an in-memory exporter on the process's tracer provider): one
trace from the client's call to metadata's handling of the completion, each
span under the one that caused it; and REST calls through Envoy join the
trace their caller sent too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.shared import tracing
from tests.calls import bearer, upload_requests
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    tracing.configure_tracing("vtc").add_span_processor(processor)  # the process's provider (made once)
    try:
        yield exporter
    finally:
        processor.shutdown()  # it takes no more spans


def traceparent() -> tuple[str, list[tuple[str, str]]]:
    trace_id = os.urandom(16).hex()
    return trace_id, [("traceparent", f"00-{trace_id}-{os.urandom(8).hex()}-01")]


def of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]


def test_one_upload_is_one_trace_with_a_span_per_step(stack: Stack, clip_640x360: Path,
                                                      exported: InMemorySpanExporter) -> None:
    trace_id, sent = traceparent()
    token = stack.admin_token()
    with stack.channel() as channel:
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip_640x360, "spans"), metadata=[*bearer(token), *sent], timeout=60)
        final = list(metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token), timeout=120))[-1].job
    assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error

    deadline = time.monotonic() + 10  # metadata applies the completion after the watcher hears of it
    while not any(s.name == "job.event.completed process" for s in of_trace(exported, trace_id)):
        assert time.monotonic() < deadline, [s.name for s in of_trace(exported, trace_id)]
        time.sleep(0.1)
    spans = of_trace(exported, trace_id)
    by_id = {s.context.span_id: s for s in spans}

    def parent(name: str) -> str:
        [span] = [s for s in spans if s.name == name]
        assert span.parent is not None, f"{name} has no parent"
        return by_id[span.parent.span_id].name if span.parent.span_id in by_id else "(the client)"

    assert parent("vtc.v1.UploadService/Upload") == "(the client)"
    assert parent("vtc.v1.MetadataService/RegisterVideo") == "vtc.v1.UploadService/Upload"
    assert parent("job.requested publish") == "vtc.v1.MetadataService/RegisterVideo"  # through the outbox row
    assert parent("job.requested process") == "job.requested publish"
    for step in ("fetch source", "probe", "plan", "encode", "store outputs"):
        assert parent(step) == "job.requested process", step
    outputs = {output.name for output in final.outputs if output.files}
    assert "360p" in outputs
    for output in outputs:  # a span per output, holding the storage calls of its files
        assert parent(f"output {output}") == "store outputs"
    assert parent("job.event.completed process") == "job.requested process"
    assert {s.attributes["vtc.output"] for s in spans if s.name.startswith("output ")} == outputs
    [encode] = [s for s in spans if s.name == "encode"]
    assert encode.attributes["vtc.speed_realtime"] > 0
    storage = [s for s in spans if s.name == "storage put_file"]
    assert {by_id[s.parent.span_id].name for s in storage} == {
        "vtc.v1.UploadService/Upload", *(f"output {output}" for output in outputs)}


def test_a_rest_call_through_envoy_joins_the_caller_s_trace(stack: Stack, exported: InMemorySpanExporter) -> None:
    trace_id, sent = traceparent()
    reply = httpx.get(f"{stack.rest_url}/v1/profiles", timeout=30,
                      headers={"authorization": f"Bearer {stack.admin_token()}", **dict(sent)})
    assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 5
    while not of_trace(exported, trace_id):
        assert time.monotonic() < deadline, "Envoy did not pass the traceparent on"
        time.sleep(0.05)
    assert [s.name for s in of_trace(exported, trace_id)] == ["vtc.v1.ProcessService/ListProfiles"]
