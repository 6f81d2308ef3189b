"""Upload speed: the upload service against servers that only count the bytes.

    make bench BENCH=upload        (or: .venv/bin/python bench/upload.py [--mib 1024] [--runs 5])

One run starts, each as its own process: the upload service (`python -m
services.upload_svc`, its peers the all-in-one process of this script with
the gateway off), a bare grpc.aio servicer that counts bytes, and a bare HTTP
server that counts bytes (bench/upload_sinks.py); and Envoy (the gateway's
own config) routing REST uploads to the upload service. The source is a real
H.264 MP4 of at least --mib MiB (made once with PyAV, cached in bench/out/),
sent in 1 MiB chunks.

Pairs alternate (which side goes first swaps every round) so the noise of a
shared machine hits both:
- gRPC: the same grpc.aio client sends the file to upload_svc and to the bare servicer;
- REST: `curl -T` sends it through Envoy to upload_svc, and straight to the bare HTTP sink;
  then through a second Envoy, same config, whose UploadService is the bare grpc.aio servicer:
  the most REST through the gateway can reach against that sink (`upload rest ceiling`).

The ratios compare the streaming phase: for upload_svc, the call's time less
what the service reports (in its "upload accepted" log line) for the work
after the last byte (probe, store, register), which is printed on its own.
The upload service's RSS is sampled from /proc during every upload; the
growth is the peak less its RSS just before the upload. Every process on an
upload's way is charged its CPU (/proc for the servers and Envoy, this
process's own for the gRPC client, the ended child's for curl), printed per
MiB against the wall time per MiB: on two cores, a sum near twice the wall
time means the machine had no CPU left for that side. Last, the CLI's own
upload (`vtc upload`: it reads the file to hash it, then sends it) is timed
end to end.

Prints `upload grpc/bare = N.NN`, `upload rest/bare = N.NN` (medians of the
pairs' ratios) and `upload rss growth = N MiB` (the largest seen), with the
figures behind them. Targets: >= 0.80, >= 0.60, <= 64 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.envoy_config import TRANSCODED_SERVICES, build_envoy_config  # noqa: E402
from gateway.envoy_process import DESCRIPTOR_SET, start_envoy  # noqa: E402
from services.all_in_one import AllInOneSettings, start_all_in_one  # noqa: E402
from services.shared.server import MAX_MESSAGE_BYTES  # noqa: E402
from vtc.v1 import (  # noqa: E402
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    metadata_pb2,
    metadata_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

OUT = ROOT / "bench" / "out"
MIB = 1024 * 1024
CHUNK_BYTES = MIB
TARGETS = {"grpc": 0.80, "rest": 0.60, "rss_mib": 64}
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


# --- the source -------------------------------------------------------------------------------------------

def source_file(min_mib: int) -> Path:
    """A real H.264 MP4 (lossless 720p noise at 25 fps, about 35 MB/s of video)
    of at least min_mib MiB; made once, kept in bench/out/."""
    path = OUT / f"upload-source-{min_mib}mib.mp4"
    if path.exists():
        return path
    import av
    import numpy as np

    OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    started = time.monotonic()
    rng = np.random.default_rng(7)
    width, height, fps = 1280, 720, 25
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "qp": "0"}
        stream.codec_context.thread_type = "AUTO"
        pictures = [rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8) for _ in range(16)]
        written, index = 0, 0
        while written < min_mib * MIB:
            frame = av.VideoFrame.from_ndarray(pictures[index % len(pictures)], format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                written += packet.size
                container.mux(packet)
            index += 1
        container.mux(stream.encode(None))
    partial.rename(path)
    print(f"made {path.name}: {path.stat().st_size / MIB:.0f} MiB, {index / fps:.1f} s of 720p25 "
          f"in {time.monotonic() - started:.0f} s", flush=True)
    return path


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


# --- processes ----------------------------------------------------------------------------------------------

class Process:
    """A child process whose stdout goes to a log file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env or os.environ.copy(), stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    async def wait_for_line(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.startswith(prefix):
                    return line
            if self.popen.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not say {prefix!r}:\n" + "\n".join(self.log_lines()[-20:]))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSamples:
    """The process's RSS before a block and sampled every `interval` while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_bytes(pid)
        self.samples: list[tuple[float, int]] = []  # (time.perf_counter(), RSS)

    def sample(self) -> None:
        self.samples.append((time.perf_counter(), rss_bytes(self.pid)))

    def growth(self, until: float = float("inf")) -> int:
        """Peak RSS (up to `until`, a time.perf_counter()) less RSS before."""
        return max((rss for at, rss in self.samples if at <= until), default=self.before) - self.before


@contextlib.asynccontextmanager
async def rss_sampled(pid: int, interval: float = 0.01) -> AsyncIterator[RssSamples]:
    samples = RssSamples(pid)

    async def sample() -> None:
        while True:
            samples.sample()
            await asyncio.sleep(interval)

    sampler = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        sampler.cancel()
        samples.sample()


# --- one upload each way --------------------------------------------------------------------------------------

@dataclass
class Sent:
    seconds: float  # the whole call, as the client saw it
    after_last_byte: float = 0.0  # what the server says it spent after the last byte (probe, store, register)
    rss_growth: int = 0  # the whole call
    rss_receive_growth: int = 0  # until the last byte
    video_id: str = ""
    job_id: str = ""
    server_cpu: float = 0.0  # CPU seconds the server spent receiving
    client_cpu: float = 0.0  # CPU seconds of the client (this process's gRPC client, or curl)
    gateway_cpu: float = 0.0  # CPU seconds of Envoy, for REST through it

    def cpu_line(self, server: str, size: int) -> str:
        """Where the CPU went per MiB, against the wall time per MiB: on two cores a sum near twice the
        wall time means both cores were busy with this upload."""
        mib = size / MIB
        parts = [("client", self.client_cpu)] + ([("Envoy", self.gateway_cpu)] if self.gateway_cpu else []) + \
            [(server, self.server_cpu)]
        total = sum(cpu for _, cpu in parts)
        return (" + ".join(f"{name} {cpu / mib * 1000:.2f}" for name, cpu in parts) +
                f" = {total / mib * 1000:.2f} ms of CPU in {self.streaming_seconds / mib * 1000:.2f} ms per MiB")

    @property
    def streaming_seconds(self) -> float:
        return self.seconds - self.after_last_byte


async def grpc_upload(address: str, token: str, path: Path,
                      sha256: str) -> tuple[float, upload_pb2.UploadResponse, float]:
    """Seconds, the reply, and the CPU seconds this process spent (the client; the rest of it idles)."""
    size = path.stat().st_size

    async def requests() -> AsyncIterator[upload_pb2.UploadRequest]:
        yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
            filename=path.name, size_bytes=size, sha256=sha256, profile="default"))
        for chunk in file_chunks(path):
            request = upload_pb2.UploadRequest()
            request.chunk.data = chunk
            yield request

    async with grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        await channel.channel_ready()
        stub = upload_pb2_grpc.UploadServiceStub(channel)
        started, cpu = time.perf_counter(), time.process_time()
        reply = await stub.Upload(requests(), metadata=bearer(token), timeout=600)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if reply.size_bytes != size:
        raise RuntimeError(f"{address} counted {reply.size_bytes} bytes of {size}")
    return seconds, reply, cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # children that ended: curl, nothing else ends here
    return usage.ru_utime + usage.ru_stime


async def curl_upload(url: str, path: Path, headers: list[str]) -> tuple[float, dict, float]:
    """Seconds, the JSON reply, and curl's CPU seconds."""
    argv = ["curl", "-sS", "-X", "POST", "-T", str(path), "-H", "Content-Type: video/mp4",
            "-w", "\n%{http_code} %{time_total}", url]
    for header in headers:
        argv += ["-H", header]
    started, cpu = time.perf_counter(), children_cpu()
    process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    body, _, tail = out.decode().rpartition("\n")
    status = tail.split()[0] if tail else "?"
    if process.returncode != 0 or status != "200":
        raise RuntimeError(f"curl {url.split('?')[0]}: exit {process.returncode}, HTTP {status}: "
                           f"{body[:500]} {err.decode()[:500]}")
    reply = json.loads(body)
    if int(reply.get("sizeBytes", 0)) != path.stat().st_size:
        raise RuntimeError(f"{url.split('?')[0]} counted {reply.get('sizeBytes')} bytes of {path.stat().st_size}")
    return seconds, reply, cpu


class Bench:
    def __init__(self, path: Path, sha256: str, upload_svc: Process, upload_address: str, grpc_sink: str,
                 http_sink: str, rest_url: str, ceiling_url: str, token: str,
                 metadata: metadata_pb2_grpc.MetadataServiceStub) -> None:
        self.path, self.sha256 = path, sha256
        self.upload_svc, self.upload_address = upload_svc, upload_address
        self.grpc_sink, self.http_sink, self.rest_url = grpc_sink, http_sink, rest_url
        self.ceiling_url = ceiling_url
        self.token, self.metadata = token, metadata
        self.accepted_seen = 0
        self.grpc_sink_pid = self.http_sink_pid = self.envoy_pid = self.ceiling_envoy_pid = 0

    def _after_last_byte(self) -> float:
        """The service's own account of its last upload: seconds spent after the last byte."""
        lines = [json.loads(line) for line in self.upload_svc.log_lines()
                 if line.startswith("{") and '"upload accepted"' in line]
        if len(lines) <= self.accepted_seen:
            raise RuntimeError("the upload service logged no 'upload accepted' line for the upload")
        self.accepted_seen = len(lines)
        fields = lines[-1]
        self.last_phases = {k: fields.get(k, 0.0) for k in ("receive_seconds", "probe_seconds", "store_seconds",
                                                               "messages", "receive_cpu_seconds")}
        return float(fields["probe_seconds"]) + float(fields["store_seconds"])

    async def _forget(self, video_id: str, job_id: str) -> None:
        """Cancels the transcode and deletes the video, so runs do not pile up work or disk."""
        auth = bearer(self.token)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.metadata.CancelJob(metadata_pb2.CancelJobRequest(job_id=job_id), metadata=auth, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = await self.metadata.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=auth, timeout=30)
            if job.status in (common_pb2.JOB_STATUS_COMPLETED, common_pb2.JOB_STATUS_FAILED,
                              common_pb2.JOB_STATUS_CANCELLED):
                break
            await asyncio.sleep(0.1)
        await self.metadata.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id), metadata=auth,
                                        timeout=60)

    def _sent(self, seconds: float, ended: float, rss: RssSamples, video_id: str, job_id: str,
              client_cpu: float, gateway_cpu: float = 0.0) -> Sent:
        after = self._after_last_byte()
        return Sent(seconds=seconds, after_last_byte=after, rss_growth=rss.growth(),
                    rss_receive_growth=rss.growth(until=ended - after), video_id=video_id, job_id=job_id,
                    server_cpu=self.last_phases["receive_cpu_seconds"], client_cpu=client_cpu,
                    gateway_cpu=gateway_cpu)

    async def grpc_service(self) -> Sent:
        async with rss_sampled(self.upload_svc.pid) as rss:
            seconds, reply, client_cpu = await grpc_upload(self.upload_address, self.token, self.path, self.sha256)
            ended = time.perf_counter()
        sent = self._sent(seconds, ended, rss, reply.video_id, reply.job_id, client_cpu)
        await self._forget(reply.video_id, reply.job_id)
        return sent

    async def grpc_bare(self) -> Sent:
        cpu = cpu_seconds(self.grpc_sink_pid)
        seconds, _, client_cpu = await grpc_upload(self.grpc_sink, self.token, self.path, self.sha256)
        return Sent(seconds, server_cpu=cpu_seconds(self.grpc_sink_pid) - cpu, client_cpu=client_cpu)

    def _rest_query(self) -> str:
        return f"header.filename={self.path.name}&header.size_bytes={self.path.stat().st_size}" \
               f"&header.sha256={self.sha256}"

    async def rest_ceiling(self) -> Sent:
        """REST through the same Envoy config to the bare servicer: what the transcoder leaves of the bare sink."""
        server, gateway = cpu_seconds(self.grpc_sink_pid), cpu_seconds(self.ceiling_envoy_pid)
        seconds, _, client_cpu = await curl_upload(f"{self.ceiling_url}/v1/uploads?{self._rest_query()}",
                                                   self.path, [])
        return Sent(seconds, server_cpu=cpu_seconds(self.grpc_sink_pid) - server, client_cpu=client_cpu,
                    gateway_cpu=cpu_seconds(self.ceiling_envoy_pid) - gateway)

    async def rest_service(self) -> Sent:
        query = self._rest_query()
        gateway = cpu_seconds(self.envoy_pid)
        async with rss_sampled(self.upload_svc.pid) as rss:
            seconds, reply, client_cpu = await curl_upload(f"{self.rest_url}/v1/uploads?{query}", self.path,
                                                           [f"Authorization: Bearer {self.token}"])
            ended = time.perf_counter()
        sent = self._sent(seconds, ended, rss, reply["videoId"], reply["jobId"], client_cpu,
                          cpu_seconds(self.envoy_pid) - gateway)
        await self._forget(sent.video_id, sent.job_id)
        return sent

    async def rest_bare(self) -> Sent:
        cpu = cpu_seconds(self.http_sink_pid)
        seconds, _, client_cpu = await curl_upload(f"http://{self.http_sink}/upload", self.path, [])
        return Sent(seconds, server_cpu=cpu_seconds(self.http_sink_pid) - cpu, client_cpu=client_cpu)


def mb_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


async def cli_upload(address: str, api_key: str, token: str, path: Path,
                     config_dir: Path) -> tuple[float, upload_pb2.UploadResponse]:
    """`vtc upload` as the CLI does it (hash, then send), timed end to end."""
    from datetime import UTC, datetime, timedelta

    from vtc.cli.client import Session
    from vtc.cli.commands.upload import upload_file
    from vtc.cli.credentials import Credentials, CredentialStore

    store = CredentialStore(config_dir)
    credentials = Credentials(addr=address, api_key=api_key, access_token=token,
                              expires_at=datetime.now(UTC) + timedelta(minutes=10))

    def run() -> tuple[float, upload_pb2.UploadResponse]:
        session = Session(store, credentials, address)
        try:
            started = time.perf_counter()
            reply = upload_file(session, path, title="", profile="", show_progress=False)
            return time.perf_counter() - started, reply
        finally:
            session.channel.close()

    seconds, reply = await asyncio.to_thread(run)
    return seconds, reply


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=int(os.environ.get("VTC_BENCH_UPLOAD_MIB", "1024")),
                        help="size of the source, at least 512 (default 1024: the RSS figure is for 1 GiB)")
    parser.add_argument("--runs", type=int, default=5, help="pairs of each kind (the figures are their medians)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("bench upload needs curl: apt-get install -y curl")
        return 1
    path = source_file(max(args.mib, 512))
    size = path.stat().st_size
    sha256 = await asyncio.to_thread(sha256_of, path)

    with tempfile.TemporaryDirectory(prefix="vtc-bench-upload-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "var"
        vtc = await start_all_in_one(AllInOneSettings(data_dir=data_dir, grpc_port=0, gateway_enabled=False,
                                                      shutdown_grace_seconds=1.0))
        processes: list[Process] = []
        envoy = envoy_ceiling = None
        try:
            channel = grpc.aio.insecure_channel(vtc.grpc_address)
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            operator = (await auth.IssueToken(auth_pb2.IssueTokenRequest(
                api_key=vtc.operator_key_file.read_text().strip()))).access_token
            tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Upload Bench"),
                                             metadata=bearer(operator))
            key = await auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name="bench"),
                                          metadata=bearer(operator))
            token = (await auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret))).access_token

            upload_port = _free_port()
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("VTC_")},
                   "VTC_DATA_DIR": str(data_dir), "VTC_GRPC_PORT": str(upload_port),
                   "VTC_AUTH_ADDR": vtc.grpc_address, "VTC_METADATA_ADDR": vtc.grpc_address,
                   "VTC_PROCESS_ADDR": vtc.grpc_address, "VTC_UPLOAD_TMP_DIR": str(tmp / "spool")}
            upload_svc = Process("upload_svc", [sys.executable, "-m", "services.upload_svc"], tmp, env)
            grpc_sink = Process("grpc_sink", [sys.executable, str(ROOT / "bench" / "upload_sinks.py"), "grpc"], tmp)
            http_sink = Process("http_sink", [sys.executable, str(ROOT / "bench" / "upload_sinks.py"), "http"], tmp)
            processes += [upload_svc, grpc_sink, http_sink]
            upload_address = f"127.0.0.1:{upload_port}"
            grpc_port = (await grpc_sink.wait_for_line("listening")).split()[1]
            http_port = (await http_sink.wait_for_line("listening")).split()[1]
            async with grpc.aio.insecure_channel(upload_address) as probe_channel:
                await asyncio.wait_for(probe_channel.channel_ready(), 60)

            upstreams = {service: vtc.grpc_address for service in TRANSCODED_SERVICES}
            upstreams["vtc.v1.UploadService"] = upload_address
            config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams=upstreams, listen_port=0,
                                        admin_socket=tmp / "envoy-admin.sock", access_log=False)
            envoy = await start_envoy(config, workdir=tmp / "envoy", log_path=tmp / "envoy.log")
            upstreams["vtc.v1.UploadService"] = f"127.0.0.1:{grpc_port}"
            ceiling_config = build_envoy_config(descriptor_path=DESCRIPTOR_SET, upstreams=upstreams, listen_port=0,
                                                admin_socket=tmp / "envoy-ceiling-admin.sock", access_log=False)
            envoy_ceiling = await start_envoy(ceiling_config, workdir=tmp / "envoy-ceiling",
                                              log_path=tmp / "envoy-ceiling.log")
            bench = Bench(path, sha256, upload_svc, upload_address, f"127.0.0.1:{grpc_port}",
                          f"127.0.0.1:{http_port}", envoy.url, envoy_ceiling.url, token,
                          metadata_pb2_grpc.MetadataServiceStub(channel))
            bench.grpc_sink_pid, bench.http_sink_pid = grpc_sink.pid, http_sink.pid
            bench.envoy_pid, bench.ceiling_envoy_pid = envoy.process.pid, envoy_ceiling.process.pid
            print(f"source {path.name}: {size / MIB:.0f} MiB ({size / 1e6:.0f} MB), 1 MiB chunks; "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)

            # Warm-up: connections, the first token check, the spool directory, page cache.
            await bench.grpc_bare()
            await bench.grpc_service()

            ratios: dict[str, list[float]] = {"grpc": [], "rest": [], "ceiling": []}
            rss_growth: list[int] = []
            accounts: dict[str, list[Sent]] = {}  # every process's CPU on the way, per side
            after: list[float] = []
            for round_index in range(args.runs):
                for kind, service, bare in (("grpc", bench.grpc_service, bench.grpc_bare),
                                            ("rest", bench.rest_service, bench.rest_bare)):
                    order = (service, bare) if round_index % 2 == 0 else (bare, service)
                    results = {}
                    for side in order:
                        results[side] = await side()
                    ours, peer = results[service], results[bare]
                    ratios[kind].append(peer.seconds / ours.streaming_seconds)
                    ceiling = ""
                    accounts.setdefault(f"{kind} upload_svc", []).append(ours)
                    accounts.setdefault(f"{kind} bare", []).append(peer)
                    if kind == "rest":
                        through_gateway = await bench.rest_ceiling()
                        accounts.setdefault("rest ceiling", []).append(through_gateway)
                        ratios["ceiling"].append(peer.seconds / through_gateway.seconds)
                        ceiling = f" (Envoy to the bare servicer: {ratios['ceiling'][-1]:.2f})"
                    rss_growth.append(ours.rss_growth)
                    after.append(ours.after_last_byte)
                    phases = bench.last_phases
                    mib = size / MIB
                    print(f"  {kind} {round_index + 1}: upload_svc {mb_s(size, ours.streaming_seconds):5.0f} MB/s "
                          f"(CPU {ours.server_cpu / mib * 1000:.2f} ms/MiB)  bare {mb_s(size, peer.seconds):5.0f} MB/s "
                          f"(CPU {peer.server_cpu / mib * 1000:.2f} ms/MiB)  ratio {ratios[kind][-1]:.2f}{ceiling} | "
                          f"call {ours.seconds:.2f} s: receive {phases['receive_seconds']:.2f} + probe "
                          f"{phases['probe_seconds']:.2f} + store/register {phases['store_seconds']:.2f}; "
                          f"{phases['messages']} msgs; RSS +{ours.rss_growth / MIB:.0f} MiB "
                          f"(+{ours.rss_receive_growth / MIB:.0f} MiB by the last byte)", flush=True)

            cli_config = tmp / "cli"
            cli_config.mkdir()
            cli_seconds, cli_reply = await cli_upload(upload_address, key.secret, token, path, cli_config)
            bench._after_last_byte()
            await bench._forget(cli_reply.video_id, cli_reply.job_id)
            print(f"  vtc upload (CLI: hash, send, probe, store): {cli_seconds:.2f} s, "
                  f"{mb_s(size, cli_seconds):.0f} MB/s effective", flush=True)
            print(f"after the last byte (probe, store, register): median {statistics.median(after):.2f} s "
                  f"for {size / MIB:.0f} MiB; load average {os.getloadavg()[0]:.2f}")
            for kind in ("grpc", "rest"):
                ours_ms, bare_ms = (statistics.median(sent.server_cpu for sent in accounts[f"{kind} {side}"])
                                    / (size / MIB) * 1000 for side in ("upload_svc", "bare"))
                print(f"server CPU per MiB received, {kind}: upload_svc {ours_ms:.2f} ms, bare {bare_ms:.2f} ms "
                      f"(medians; steadier than the ratios on a busy machine)")
            print("where the CPU went (the run of median wall time per side; "
                  "two cores give at most twice the wall time):")
            for side, sents in accounts.items():
                typical = sorted(sents, key=lambda sent: sent.streaming_seconds)[len(sents) // 2]
                server = "bare servicer" if side == "rest ceiling" else side.split()[1]
                print(f"  {side:15} {typical.cpu_line(server, size)}")
            print(f"upload grpc/bare = {statistics.median(ratios['grpc']):.2f}   (target >= {TARGETS['grpc']:.2f})")
            print(f"upload rest/bare = {statistics.median(ratios['rest']):.2f}   (target >= {TARGETS['rest']:.2f})")
            print(f"upload rest ceiling = {statistics.median(ratios['ceiling']):.2f}   (REST through Envoy's "
                  f"transcoder to the bare servicer, against the same bare HTTP sink: the most the gateway leaves)")
            print(f"upload rss growth = {max(rss_growth) / MIB:.0f} MiB   (target <= {TARGETS['rss_mib']} MiB, "
                  f"during a {size / MIB:.0f} MiB upload)")
            print(f"upload cli = {mb_s(size, cli_seconds):.0f} MB/s effective (hash + upload + probe + store)")
            await channel.close()
        finally:
            for gateway in (envoy, envoy_ceiling):
                if gateway is not None:
                    await gateway.stop()
            for process in processes:
                process.stop()
            await vtc.stop()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
