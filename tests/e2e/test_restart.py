"""A restart loses no job: stop the all-in-one process (SIGTERM, as Ctrl-C or an
orchestrator would) while jobs are queued, start it again, and they complete."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.calls import bearer, upload_requests
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2, upload_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AllInOneProcess:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.address = f"127.0.0.1:{port}"
        env = {**os.environ, "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": str(port),
               "VTC_GATEWAY_ENABLED": "false", "VTC_SHUTDOWN_GRACE_SECONDS": "2"}
        self.log = (data_dir / "process.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "services"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(data_dir)

    def _wait_ready(self, data_dir: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (data_dir / "process.log").read_text()[-3000:]
            try:
                with grpc.insecure_channel(self.address) as channel:
                    grpc.channel_ready_future(channel).result(timeout=1)
                    if (data_dir / "keys" / "admin.key").exists():
                        return
            except grpc.FutureTimeoutError:
                pass
            time.sleep(0.2)
        raise AssertionError("the all-in-one process did not become ready in 60 s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "var"


def _upload(channel: grpc.Channel, token: str, path: Path) -> upload_pb2.UploadResponse:
    return upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(path), metadata=bearer(token), timeout=60)


def test_jobs_queued_at_shutdown_complete_after_restart(data_dir: Path, tmp_path: Path) -> None:
    data_dir.mkdir(parents=True)
    # 1280x720 makes three rungs: slow enough that later uploads are still queued at shutdown.
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0, width=1280, height=720)
    port = _free_port()
    first = AllInOneProcess(data_dir, port)
    admin_key = (data_dir / "keys" / "admin.key").read_text().strip()
    try:
        with grpc.insecure_channel(first.address) as channel:
            token = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
                auth_pb2.IssueTokenRequest(api_key=admin_key)).access_token
            jobs = [_upload(channel, token, clip).job_id for _ in range(3)]
            metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
            before = [metadata.GetJob(metadata_pb2.GetJobRequest(job_id=job),
                                      metadata=bearer(token)).status for job in jobs]
    finally:
        assert first.stop() == 0, "the all-in-one process did not shut down cleanly"
    assert common_pb2.JOB_STATUS_QUEUED in before, f"no job was still queued at shutdown: {before}"

    second = AllInOneProcess(data_dir, port)
    try:
        with grpc.insecure_channel(second.address) as channel:
            token = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
                auth_pb2.IssueTokenRequest(api_key=admin_key)).access_token
            metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
            for job in jobs:
                updates = list(metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=job),
                                                 metadata=bearer(token), timeout=180))
                final = updates[-1].job
                assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error
                assert [r.name for r in final.renditions] == ["720p", "480p", "360p"]
    finally:
        assert second.stop() == 0
