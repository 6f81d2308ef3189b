"""Cancelling a job on the whole stack, over gRPC and REST: the 1080p encoder
stops within 2 s, the job ends CANCELLED, and nothing it wrote is left."""

from __future__ import annotations

import asyncio
import queue
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from services.shared.bus import Delivery
from services.shared.bus.contract import QueueSpec, job_event_key
from tests.calls import bearer, upload_requests
from tests.stack import Stack
from vtc.v1 import common_pb2, events_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc


class WorkerCancels:
    """The `cancelled` events workers publish once their encoder has stopped, with when each arrived."""

    def __init__(self, stack: Stack) -> None:
        self.arrived: queue.Queue[tuple[str, float]] = queue.Queue()

        async def record(delivery: Delivery) -> None:
            event = delivery.decode()
            assert isinstance(event, events_pb2.JobEvent)
            if event.cancelled.worker:  # metadata's own event carries no worker
                self.arrived.put((event.job_id, time.monotonic()))

        queue_spec = QueueSpec(f"test.cancels.{uuid.uuid4().hex[:8]}", (job_event_key("cancelled"),))
        asyncio.run_coroutine_threadsafe(stack.vtc.bus.consume(queue_spec, record), stack.loop).result(10)

    def stopped_at(self, job_id: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while True:
            seen, at = self.arrived.get(timeout=max(deadline - time.monotonic(), 0.01))
            if seen == job_id:
                return at


def _upload_until_running(stack: Stack, clip: Path, token: str) -> upload_pb2.UploadResponse:
    with stack.channel() as channel:
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(clip), metadata=bearer(token),
                                                                  timeout=60)
        watch = metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token), timeout=120)
        for update in watch:
            if update.job.progress.percent > 0:
                break
        watch.cancel()
    assert update.job.status == common_pb2.JOB_STATUS_RUNNING
    return reply


def _leftovers(stack: Stack, reply: upload_pb2.UploadResponse) -> list[Path]:
    renditions = [p for p in (stack.data_dir / "objects").rglob("*") if reply.video_id in str(p) and
                  "renditions" in p.parts and p.is_file()]
    scratch = [p for p in (stack.data_dir / "work").glob(f"{reply.job_id}-*")]
    return renditions + scratch


def test_cancel_job_on_a_running_1080p_job_stops_its_encoder_within_2_s(stack: Stack, clip_1080p: Path) -> None:
    cancels = WorkerCancels(stack)
    token = stack.admin_token()
    reply = _upload_until_running(stack, clip_1080p, token)

    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        asked = time.monotonic()
        job = metadata.CancelJob(metadata_pb2.CancelJobRequest(job_id=reply.job_id), metadata=bearer(token),
                                 timeout=10)
        stopped = cancels.stopped_at(reply.job_id) - asked
        print(f"\nCancelJob on a running 1080p job: encoder stopped {stopped:.2f} s after the call")

        assert job.status == common_pb2.JOB_STATUS_CANCELLED and job.finished_at.seconds > 0
        assert stopped <= 2.0
        assert _leftovers(stack, reply) == [], "no outputs or scratch left"
        [update] = metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token),
                                     timeout=10)
        assert update.job.status == common_pb2.JOB_STATUS_CANCELLED and not update.job.renditions
        again = metadata.CancelJob(metadata_pb2.CancelJobRequest(job_id=reply.job_id), metadata=bearer(token))
        assert again.status == common_pb2.JOB_STATUS_CANCELLED, "cancelling twice is harmless"
        with pytest.raises(grpc.RpcError) as missing:
            metadata.CancelJob(metadata_pb2.CancelJobRequest(job_id="job_" + "0" * 20), metadata=bearer(token))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_cancel_of_a_running_job_and_of_a_finished_one(stack: Stack, clip_1080p: Path,
                                                            clip_640x360: Path) -> None:
    token = stack.admin_token()
    with stack.channel() as channel:
        done = upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(clip_640x360), metadata=bearer(token))
        list(metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=done.job_id), metadata=bearer(token), timeout=120))
    running = _upload_until_running(stack, clip_1080p, token)

    with httpx.Client(base_url=stack.rest_url, timeout=30, headers={"authorization": f"Bearer {token}"}) as rest:
        cancelled = rest.post(f"/v1/jobs/{running.job_id}:cancel", json={})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "JOB_STATUS_CANCELLED"

        refused = rest.post(f"/v1/jobs/{done.job_id}:cancel", json={})
        assert refused.status_code == 400 and refused.json()["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert refused.json()["message"] == (f"job {done.job_id!r} is COMPLETED already; only a queued or running "
                                             "job can be cancelled")
