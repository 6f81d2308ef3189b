"""`vtc watch` outlives the server it watches: SIGKILL the all-in-one process
under five running `vtc watch` commands, start it again, and every one of them
reconnects and prints the job's final state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from tests.calls import bearer, upload_requests
from tests.e2e.test_restart import AllInOneProcess, _free_port
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

VTC = Path(sys.executable).with_name("vtc")
WATCHERS = 5


def start_watchers(job_id: str, addr: str, config_dir: Path) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTC_")}
    env["VTC_CONFIG_DIR"] = str(config_dir)
    return [subprocess.Popen([str(VTC), "watch", job_id, "--addr", addr, "--json"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(WATCHERS)]


def test_five_watchers_reconnect_after_a_sigkill_and_print_the_final_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    clip = make_clip(tmp_path / "clip.mp4", seconds=3.0, width=1280, height=720)
    port = _free_port()
    server = AllInOneProcess(data_dir, port)
    watchers: list[subprocess.Popen[str]] = []
    try:
        login = subprocess.run([str(VTC), "login", "--addr", server.address, "--key-file",
                                str(data_dir / "keys" / "admin.key")], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "VTC_CONFIG_DIR": str(tmp_path / "cli")})
        assert login.returncode == 0, login.stderr
        admin_key = (data_dir / "keys" / "admin.key").read_text().strip()
        with grpc.insecure_channel(server.address) as channel:
            token = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(
                auth_pb2.IssueTokenRequest(api_key=admin_key)).access_token
            job_id = upload_pb2_grpc.UploadServiceStub(channel).Upload(
                upload_requests(clip), metadata=bearer(token), timeout=60).job_id
            watchers = start_watchers(job_id, server.address, tmp_path / "cli")
            metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
            time.sleep(2)  # the watchers have connected (a watcher that had not would simply connect later)
            status = metadata.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=bearer(token)).status
        assert status in (common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_RUNNING), status
        assert all(w.poll() is None for w in watchers), "a watcher ended before the server was killed"

        server.proc.kill()
        server.proc.wait(10)
        server.log.close()
        time.sleep(1)  # the watchers meet a dead server for a while
        server = AllInOneProcess(data_dir, port)

        finals = []
        for watcher in watchers:
            out, err = watcher.communicate(timeout=180)
            assert watcher.returncode == 0, err
            assert "reconnecting" in err
            finals.append(json.loads(out))
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
        server.stop()
    completed = [job for job in finals if job["status"] == "JOB_STATUS_COMPLETED"]
    print(f"\n{len(completed)}/{WATCHERS} `vtc watch` reconnected after SIGKILL and printed the final state")
    assert len(completed) == WATCHERS
    assert all(job["job_id"] == job_id and len(job["renditions"]) == 3 for job in completed)
