"""Transcode workers as separate processes (`python -m services.process_svc`,
or a crashing wrapper of it) on the shared RabbitMQ under a namespace of the
test's own, fed by metadata's dispatch: workers SIGKILLed mid-encode, and a
file that crashes every worker. Every job still ends, and ends right."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.shared.bus import Delivery
from services.shared.db import sqlite_url
from tests.buses import AMQP_URL, backend
from tests.dispatch_mesh import TERMINAL, DispatchMesh, start_dispatch_mesh
from tests.faults.crashing_worker import CRASH_EXIT_CODE
from tests.media import decoded_summary
from tests.worker_processes import WorkerPool, worker_env
from vtc.v1 import common_pb2, events_pb2, metadata_pb2

pytestmark = pytest.mark.rabbitmq
TENANT = "ten_faults"


@dataclass
class JobLog:
    """What the workers said, from a queue of the test's own bound to every job event."""

    worked_by: dict[tuple[str, int], int] = field(default_factory=dict)  # (job, attempt) -> worker pid
    completions: collections.Counter[str] = field(default_factory=collections.Counter)
    encoding: asyncio.Queue[tuple[str, int]] = field(default_factory=asyncio.Queue)  # (job, attempt) mid-encode
    stopped: asyncio.Queue[tuple[str, float]] = field(default_factory=asyncio.Queue)  # a worker's `cancelled`

    async def record(self, delivery: Delivery) -> None:
        event = delivery.decode()
        assert isinstance(event, events_pb2.JobEvent)
        kind = event.WhichOneof("kind")
        if kind == "started":
            self.worked_by[(event.job_id, event.attempt)] = int(event.started.worker.rsplit(":", 1)[1])
        elif kind == "progress" and event.progress.frames > 0:
            self.encoding.put_nowait((event.job_id, event.attempt))
        elif kind == "completed":
            self.completions[event.job_id] += 1
        elif kind == "cancelled" and event.cancelled.worker:  # sent once its encoder stopped
            self.stopped.put_nowait((event.job_id, time.monotonic()))


@dataclass
class Faults:
    mesh: DispatchMesh
    pool: WorkerPool
    jobs: JobLog
    work_dir: Path


@contextlib.asynccontextmanager
async def faults(tmp_path: Path, *, module: str = "services.process_svc",
                 max_deliveries: int = 5) -> AsyncIterator[Faults]:
    """Metadata in the test, workers as processes, all on one broker namespace; stopped and deleted after."""
    async with backend("rabbitmq") as broker, contextlib.AsyncExitStack() as stack:
        bus = broker.bus(max_deliveries=max_deliveries)
        mesh = await start_dispatch_mesh(tmp_path, bus, sqlite_url(tmp_path / "metadata.db"))
        stack.push_async_callback(mesh.stop)
        jobs = JobLog()
        await bus.consume(broker.queue("events", "job.event.#"), jobs.record)
        work_dir = tmp_path / "work"  # shared by every worker, as on one machine
        pool = WorkerPool(worker_env(amqp_url=AMQP_URL, namespace=broker.namespace.name,
                                     objects=tmp_path / "objects", work_dir=work_dir, data_dir=tmp_path / "workers",
                                     VTC_BUS_MAX_DELIVERIES=str(max_deliveries)),
                          tmp_path / "logs", module=module)
        stack.push_async_callback(pool.stop)
        yield Faults(mesh, pool, jobs, work_dir)


async def wait_all(found: Faults, job_ids: list[str], timeout: float) -> dict[str, common_pb2.Job]:
    ended = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(job_ids):
        for job_id in job_ids:
            if job_id not in ended and (job := await found.mesh.job(TENANT, job_id)).status in TERMINAL:
                ended[job_id] = job
        assert time.monotonic() < deadline, (
            f"{len(job_ids) - len(ended)} jobs never ended\n{found.pool.logs()}")
        await asyncio.sleep(0.1)
    return ended


async def test_workers_sigkilled_mid_encode_lose_no_job(tmp_path: Path, clip_640x360: Path) -> None:
    jobs, kills_wanted = 20, 10
    async with faults(tmp_path) as found:
        found.pool.start(), found.pool.start()
        job_ids = [(await found.mesh.register(TENANT, clip_640x360)).job.job_id for _ in range(jobs)]

        async def kill_mid_encode() -> int:
            killed: set[str] = set()
            while len(killed) < kills_wanted:
                job_id, attempt = await found.jobs.encoding.get()
                worker = found.pool.by_pid(found.jobs.worked_by.get((job_id, attempt), -1))
                if job_id in killed or worker is None:
                    continue
                await worker.kill()
                killed.add(job_id)
                found.pool.start()  # as a supervisor would
            return len(killed)

        killer = asyncio.create_task(kill_mid_encode())
        try:
            ended = await wait_all(found, job_ids, timeout=240)
            kills = await asyncio.wait_for(killer, 10)
        finally:
            killer.cancel()
        await found.pool.stop()

        completed = [job for job in ended.values() if job.status == common_pb2.JOB_STATUS_COMPLETED]
        decoded = 0
        for job in completed:
            for rendition in job.renditions:
                out = tmp_path / "downloads" / f"{job.job_id}-{rendition.name}.mp4"
                out.parent.mkdir(exist_ok=True)
                await found.mesh.store.get_file(rendition.storage_key, out)
                summary = decoded_summary(out)
                assert (summary["width"], summary["height"], summary["frames"]) == (
                    rendition.width, rendition.height, 60)
                decoded += 1
        twice = [job_id for job_id, count in found.jobs.completions.items() if count > 1]
        left = list(found.work_dir.iterdir())
        print(f"\nworker SIGKILL x{kills} mid-encode over {jobs} jobs with 2 workers: {len(completed)}/{jobs} "
              f"COMPLETED, {decoded} renditions decode, {len(twice)} completed twice, {len(left)} scratch left")
        assert kills == kills_wanted
        assert len(completed) == jobs, {j.job_id: j.error for j in ended.values()}
        assert decoded == sum(len(job.renditions) for job in completed) >= jobs
        assert twice == [] and sorted(found.jobs.completions) == sorted(job_ids)
        assert left == []
        assert max(job.attempt for job in completed) >= 2, "killed jobs ran again as a new attempt"


async def test_a_job_that_crashes_every_worker_fails_with_its_reason_and_the_others_complete(
        tmp_path: Path, clip_640x360: Path) -> None:
    poison = tmp_path / "crash.poison"
    shutil.copyfile(clip_640x360, poison)
    async with faults(tmp_path, module="tests.faults.crashing_worker", max_deliveries=3) as found:
        crashes = 0

        async def supervise() -> None:  # restarts what died, as systemd or Kubernetes would
            nonlocal crashes
            while True:
                for worker in found.pool.workers:
                    if not worker.alive() and not getattr(worker, "replaced", False):
                        assert worker.popen.returncode == CRASH_EXIT_CODE, found.pool.logs()
                        worker.replaced = True  # type: ignore[attr-defined]
                        crashes += 1
                        found.pool.start()
                await asyncio.sleep(0.1)

        found.pool.start(), found.pool.start()
        supervisor = asyncio.create_task(supervise())
        try:
            bad = (await found.mesh.register(TENANT, poison)).job.job_id
            good = [(await found.mesh.register(TENANT, clip_640x360)).job.job_id for _ in range(4)]
            ended = await wait_all(found, [bad, *good], timeout=180)
        finally:
            supervisor.cancel()

        failed = ended[bad]
        others = sum(ended[job_id].status == common_pb2.JOB_STATUS_COMPLETED for job_id in good)
        print(f"\na job that crashes every worker: {common_pb2.JobStatus.Name(failed.status)} after {crashes} "
              f"crashes ({failed.error!r}); {others}/{len(good)} other jobs COMPLETED")
        assert failed.status == common_pb2.JOB_STATUS_FAILED
        assert failed.error.startswith("the transcoder crashed on this file 3 times: every worker that took it "
                                       "stopped without finishing;")
        assert crashes == 3
        assert others == len(good)


async def test_cancel_job_stops_a_1080p_encode_in_another_process(tmp_path: Path, clip_1080p: Path) -> None:
    async with faults(tmp_path) as found:
        worker = found.pool.start()
        registered = await found.mesh.register(TENANT, clip_1080p)
        job_id = registered.job.job_id
        async with asyncio.timeout(120):
            while (await found.jobs.encoding.get())[0] != job_id:
                pass

        asked = time.monotonic()
        cancelled = await found.mesh.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=job_id),
                                                    metadata=found.mesh.as_tenant(TENANT), timeout=10)
        stopped_job, stopped_at = await asyncio.wait_for(found.jobs.stopped.get(), 10)

        renditions = [p for p in (tmp_path / "objects").rglob("*") if "renditions" in p.parts and p.is_file()]
        print(f"\nCancelJob on a running 1080p job in a worker process: encoder stopped {stopped_at - asked:.2f} s "
              f"after the call, job {common_pb2.JobStatus.Name(cancelled.status)}, {len(renditions)} outputs left")
        assert stopped_job == job_id and stopped_at - asked <= 2.0
        assert cancelled.status == common_pb2.JOB_STATUS_CANCELLED
        assert (await found.mesh.job(TENANT, job_id)).status == common_pb2.JOB_STATUS_CANCELLED
        assert renditions == [] and list(found.work_dir.iterdir()) == []
        assert worker.alive(), "the worker goes on to its next job"
