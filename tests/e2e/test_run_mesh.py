"""`make run-mesh`'s topology, started the way it starts it: auth, two
metadata replicas, two process workers and upload as separate processes on
RabbitMQ and PostgreSQL, Envoy, and Traefik at the edge. The CLI and REST are
used through Traefik only, exactly as against `make run`; then both metadata
replicas are SIGKILLed under five `vtc watch` commands."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import create_private_database, drop_private_database
from tests.media import make_clip
from tests.mesh import RunningMesh, run_mesh
from tests.metadata_replicas import AMQP_URL, BrokerNamespace, require_rabbitmq
from tests.presentation import make_presentation

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
VTC = Path(sys.executable).with_name("vtc")
WATCHERS = 5


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    require_rabbitmq()
    namespace = BrokerNamespace()
    database_url = asyncio.run(create_private_database("vtc_mesh"))
    try:
        # The upload service asks the workers for the profiles at every upload, not from a cache.
        yield from run_mesh(tmp_path_factory.mktemp("mesh") / "var", database_url, AMQP_URL,
                            service_env={"VTC_UPLOAD_PROFILES_CACHE_SECONDS": "0"}, **namespace.settings())
    finally:
        asyncio.run(drop_private_database(database_url))
        asyncio.run(namespace.cleanup())


@pytest.fixture(scope="module")
def cli(mesh: RunningMesh, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config_dir = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTC_")}
    env.update(VTC_CONFIG_DIR=str(config_dir), VTC_ADDR=mesh.grpc_address)

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VTC), *args], capture_output=True, text=True, timeout=timeout, env=env)

    done = run("login", "--key-file", str(mesh.mesh.admin_key_file))
    assert done.returncode == 0, done.stderr
    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2.0, width=640, height=360)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three rungs: still transcoding when the replicas are killed."""
    return make_clip(tmp_path_factory.mktemp("media") / "long.mp4", seconds=4.0, width=1280, height=720)


def test_an_upload_through_traefik_completes_and_rest_sees_it(mesh: RunningMesh, cli, clip: Path,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    done = cli("upload", str(clip), "--watch", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["job"]["status"] == "JOB_STATUS_COMPLETED"
    assert [r["name"] for r in result["job"]["renditions"]] == ["360p"]

    token = token_of(cli)
    reply = httpx.get(f"{mesh.rest_url}/v1/videos/{result['video_id']}", timeout=30,
                      headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["job"]["status"] == "JOB_STATUS_COMPLETED"

    # A download URL from either metadata replica is served at the edge (Traefik -> Envoy -> /files/).
    for _ in mesh.mesh.plan.metadata:
        link = cli("download", result["video_id"], "--rendition", "360p", "--url")
        assert link.returncode == 0, link.stderr
        url = link.stdout.strip()
        assert url.startswith(f"{mesh.rest_url}/files/"), url
        fetched = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
        assert fetched.status_code == 206 and len(fetched.content) == 100, fetched.text

    # Playback URLs too, from either replica, through the edge's /play/ route.
    folder = (mesh.mesh.settings.data_dir / "objects" / reply.json()["tenantId"] / result["video_id"]
              / "presentation")
    if not (folder / "master.m3u8").exists():  # until the transcoder writes presentations
        shutil.copytree(make_presentation(tmp_path / "presentation", seconds=2.0), folder)
    for _ in mesh.mesh.plan.metadata:
        video = httpx.get(f"{mesh.rest_url}/v1/videos/{result['video_id']}", timeout=30,
                          headers={"authorization": f"Bearer {token}"}).json()
        assert video["hlsUrl"].startswith(f"{mesh.rest_url}/play/"), video
        master = httpx.get(video["hlsUrl"], timeout=30)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text
        assert master.headers["access-control-allow-origin"] == "*"


def test_an_upload_succeeds_while_one_of_the_two_workers_is_down(mesh: RunningMesh, cli, clip: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = (p.name for p in mesh.mesh.plan.process)
    asyncio.run_coroutine_threadsafe(mesh.mesh.hold(first), mesh.loop).result(60)
    try:
        # Twice: the upload service's calls alternate between the workers' addresses.
        for _ in range(2):
            done = cli("upload", str(clip), "--watch", "--json", timeout=300)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["job"]["status"] == "JOB_STATUS_COMPLETED"
    finally:
        asyncio.run_coroutine_threadsafe(mesh.mesh.release(first), mesh.loop).result(60)
    assert mesh.mesh.children[second].exited() is None


TERMINAL = {"JOB_STATUS_COMPLETED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED"}


def token_of(cli) -> str:  # type: ignore[no-untyped-def]
    return json.loads((Path(cli.env["VTC_CONFIG_DIR"]) / "credentials.json").read_text())["access_token"]


class RestWatch:
    """GET /v1/jobs/{id}:watch through Traefik, read line by line in a thread."""

    def __init__(self, rest_url: str, job_id: str, token: str) -> None:
        self.headers = {"authorization": f"Bearer {token}"}
        self.url = f"{rest_url}/v1/jobs/{job_id}:watch"
        self.lines: list[dict] = []
        self.ending = "not ended"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=60) as reply:
                for line in reply.iter_lines():
                    if line.strip():
                        self.lines.append(json.loads(line))
            self.ending = "the end of the response"
        except httpx.HTTPError as error:
            self.ending = f"{type(error).__name__}: {error}"


def test_five_watchers_reconnect_after_every_metadata_replica_is_sigkilled(mesh: RunningMesh, cli,  # type: ignore[no-untyped-def]
                                                                          long_clip: Path) -> None:
    uploaded = cli("upload", str(long_clip), "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    job_id = json.loads(uploaded.stdout)["job_id"]
    watchers = [subprocess.Popen([str(VTC), "watch", job_id, "--json"], env=cli.env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(WATCHERS)]
    rest = RestWatch(mesh.rest_url, job_id, token_of(cli))
    try:
        time.sleep(2)  # connected (one that was not yet would simply connect later)
        for replica in mesh.mesh.plan.metadata:
            os.kill(mesh.mesh.children[replica.name].pid, signal.SIGKILL)
        rest.thread.join(60)
        finals, errors = [], []
        for watcher in watchers:
            out, err = watcher.communicate(timeout=240)
            errors.append(err)
            if watcher.returncode == 0:
                finals.append(json.loads(out))
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
    restarts = sum(mesh.mesh.children[r.name].restarts for r in mesh.mesh.plan.metadata)
    completed = [job for job in finals if job["status"] == "JOB_STATUS_COMPLETED" and job["job_id"] == job_id]
    print(f"\n{len(completed)}/{WATCHERS} `vtc watch` through Traefik reconnected after both metadata replicas "
          f"were SIGKILLed ({restarts} restarts) and printed the final state")
    assert restarts >= len(mesh.mesh.plan.metadata)
    # REST (docs/rest.md): the stream is cut without a terminal line; watching again gives the current state.
    assert rest.lines and all(line["job"]["status"] not in TERMINAL for line in rest.lines)
    print(f"REST watch through Traefik after the SIGKILL: {len(rest.lines)} lines, then {rest.ending}")
    again = httpx.get(f"{mesh.rest_url}/v1/jobs/{job_id}:watch", headers=rest.headers, timeout=60)
    assert json.loads(again.text.splitlines()[-1])["job"]["status"] == "JOB_STATUS_COMPLETED"
    assert len(completed) == WATCHERS, errors
    assert sum("reconnecting" in err for err in errors) == WATCHERS, errors


def _trace_lines(mesh: RunningMesh, trace_id: str) -> dict[str, list[dict]]:
    """Each mesh process's JSON log lines of the trace, by service (metadata-1 and -2 count as metadata)."""
    found: dict[str, list[dict]] = {}
    for spec in mesh.mesh.plan.services:
        for line in (mesh.mesh.log_dir / f"{spec.name}.log").read_text(errors="replace").splitlines():
            if trace_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("trace_id") == trace_id:
                    found.setdefault(spec.name.split("-")[0], []).append(record)
    return found


def _wait_for_trace(mesh: RunningMesh, trace_id: str, wanted: dict[str, str]) -> dict[str, list[dict]]:
    """The trace's lines once every service in `wanted` logged its message (logs are flushed as written)."""
    deadline = time.monotonic() + 60
    while True:
        lines = _trace_lines(mesh, trace_id)
        missing = {service: message for service, message in wanted.items()
                   if not any(message in r["msg"] for r in lines.get(service, []))}
        if not missing or time.monotonic() > deadline:
            assert not missing, f"trace {trace_id}: no {missing} in the logs; found {lines}"
            return lines
        time.sleep(0.5)


def _wait_until_every_service_serves(mesh: RunningMesh, seconds: float = 60.0) -> None:
    """After the replicas were SIGKILLed, the upload service reports NOT_SERVING until its
    metadata channel is back (and Traefik answers 503 meanwhile): wait for SERVING everywhere."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + seconds
    for service in mesh.mesh.plan.services:
        while True:
            with grpc.insecure_channel(service.address) as channel:
                try:
                    status = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=5).status
                except grpc.RpcError:
                    status = None
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            assert time.monotonic() < deadline, f"{service.name} is not serving after {seconds} s"
            time.sleep(0.5)
    time.sleep(2.0)  # Traefik's health check (every 1 s) puts them back in rotation


def test_one_upload_is_one_trace_through_the_logs_of_every_service(mesh: RunningMesh, clip: Path) -> None:
    """A client that sends a W3C traceparent (as an instrumented customer system would) through Traefik:
    its token, the upload, RegisterVideo, the outbox's publish, the worker's transcode and metadata's
    handling of the job's events are all logged under its trace id."""
    import grpc

    from tests.calls import bearer, upload_requests
    from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

    _wait_until_every_service_serves(mesh)
    trace_id = os.urandom(16).hex()
    traced = [("traceparent", f"00-{trace_id}-{os.urandom(8).hex()}-01")]
    with grpc.insecure_channel(mesh.grpc_address) as channel:
        token = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(auth_pb2.IssueTokenRequest(
            api_key=mesh.mesh.admin_key_file.read_text().strip()), metadata=traced, timeout=30).access_token
        reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip, "traced"), metadata=[*bearer(token), *traced], timeout=120)
        final = list(metadata_pb2_grpc.MetadataServiceStub(channel).WatchJob(
            metadata_pb2.WatchJobRequest(job_id=reply.job_id), metadata=bearer(token), timeout=300))[-1].job
    assert final.status == common_pb2.JOB_STATUS_COMPLETED, final.error

    lines = _wait_for_trace(mesh, trace_id, {
        "auth": "rpc /vtc.v1.AuthService/IssueToken",
        "upload": "upload accepted",
        "metadata": "published job.requested from the outbox",
        "process": "job completed",
    })
    assert any("RegisterVideo" in r["msg"] for r in lines["metadata"])
    assert any(r["msg"] == "job event completed applied: job completed" for r in lines["metadata"])
    assert any(r["msg"] == "job started" for r in lines["process"])
    for service in ("upload", "metadata", "process"):  # the job's lines are the job's
        assert {r["job_id"] for r in lines[service] if "job_id" in r} == {reply.job_id}, service
    spans = {service: {r["span_id"] for r in records} for service, records in lines.items()}
    assert not spans["upload"] & spans["process"], "each service logs under spans of its own"
    print(f"\ntrace {trace_id}: " + ", ".join(f"{s} {len(r)} lines" for s, r in sorted(lines.items())))


def test_an_untraced_client_s_upload_still_starts_one_trace_across_the_services(  # type: ignore[no-untyped-def]
        mesh: RunningMesh, cli, clip: Path) -> None:
    _wait_until_every_service_serves(mesh)
    done = cli("upload", str(clip), "--watch", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    video_id = json.loads(done.stdout)["video_id"]
    accepted = [json.loads(line) for line in (mesh.mesh.log_dir / "upload.log").read_text().splitlines()
                if video_id in line and '"upload accepted"' in line]
    assert len(accepted) == 1 and accepted[0]["trace_id"]
    _wait_for_trace(mesh, accepted[0]["trace_id"], {
        "metadata": "job event completed applied", "process": "job completed"})
