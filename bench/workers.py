"""Throughput of transcode workers: 1 worker against 2, each a separate
process (`python -m services.process_svc`) on RabbitMQ, fed by metadata's
dispatch (outbox relay) with 40 short jobs.

    make bench BENCH=workers      (or: .venv/bin/python bench/workers.py [--jobs 40])

Needs RabbitMQ ($VTC_BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/);
each run has a namespace of its own and deletes its queues afterwards. The
workers are started and consuming before the clock starts; the clock stops
when metadata holds the last job COMPLETED. Prints each run and
`2 workers / 1 worker throughput = N.NN` from the medians of alternated
runs (2.00 would be perfect scaling; on two cores x264 already spreads one
job over both, so expect less, and the figure means little on a machine
busy with other work: the load average is printed with it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.metadata_svc.job import JobStatus  # noqa: E402
from services.metadata_svc.server import MetadataComponent  # noqa: E402
from services.metadata_svc.settings import Settings as MetadataSettings  # noqa: E402
from services.metadata_svc.video import NewVideo  # noqa: E402
from services.process_svc.execute import probe_source  # noqa: E402
from services.shared.bus.amqp import RabbitMqBus  # noqa: E402
from services.shared.bus.contract import PROCESS_JOBS, Namespace  # noqa: E402
from services.shared.db import sqlite_url  # noqa: E402
from services.shared.ids import new_id  # noqa: E402
from services.shared.storage.keys import source_key  # noqa: E402
from services.shared.storage.local import LocalDirectoryStore  # noqa: E402
from tests.buses import delete_namespace  # noqa: E402
from tests.media import make_clip  # noqa: E402
from tests.worker_processes import WorkerPool, worker_env  # noqa: E402
from vtc.v1 import common_pb2  # noqa: E402

AMQP_URL = os.environ.get("VTC_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TENANT = "ten_bench"


async def consumers_on(namespace: Namespace) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(namespace.queue(PROCESS_JOBS), passive=True)
        return int(queue.declaration_result.consumer_count or 0)


async def run(workers: int, jobs: int, clip: Path, probe: common_pb2.MediaProbe, scratch: Path) -> float:
    """Seconds from the first job registered to the last one COMPLETED."""
    namespace = Namespace(f"vtc-bench-{uuid.uuid4().hex[:10]}")
    base = scratch / f"{workers}-workers"
    store = LocalDirectoryStore(base / "objects")
    bus = RabbitMqBus(AMQP_URL, namespace=namespace)
    await bus.start()
    metadata = MetadataComponent(MetadataSettings(
        data_dir=base / "metadata", metadata_database_url=sqlite_url(base / "metadata.db"),
        metadata_dispatch_window=2 * workers), bus, store)
    pool = WorkerPool(worker_env(amqp_url=AMQP_URL, namespace=namespace.name, objects=base / "objects",
                                 work_dir=base / "work", data_dir=base / "worker"), base / "logs")
    try:
        await metadata.start()
        for _ in range(workers):
            pool.start()
        deadline = time.monotonic() + 60
        while await consumers_on(namespace) < workers:
            if time.monotonic() > deadline or len(pool.alive()) < workers:
                raise RuntimeError(f"the workers did not start:\n{pool.logs()}")
            await asyncio.sleep(0.1)

        started = time.monotonic()
        job_ids = []
        for n in range(jobs):
            video_id, job_id = new_id("vid"), new_id("job")
            key = source_key(TENANT, video_id, clip.name)
            await store.put_file(key, clip, "video/mp4")
            await metadata.catalog.register(NewVideo(
                video_id=video_id, job_id=job_id, tenant_id=TENANT, title=f"bench {n}", filename=clip.name,
                size_bytes=clip.stat().st_size, sha256="00" * 32, probe=probe, source_key=key,
                profile="default"), datetime.now(UTC))
            job_ids.append(job_id)
        metadata.relay.wake()
        pending = set(job_ids)
        while pending:
            for job_id in list(pending):
                job = await metadata.catalog.find_job(job_id)
                if job is not None and job.status is JobStatus.COMPLETED:
                    pending.discard(job_id)
                elif job is not None and job.status.is_terminal:
                    raise RuntimeError(f"job {job_id} ended {job.status.name}: {job.error}")
            if time.monotonic() - started > 600:
                raise RuntimeError(f"{len(pending)} jobs never completed:\n{pool.logs()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        await pool.stop()
        await metadata.stop()
        await bus.close()
        await delete_namespace(AMQP_URL, namespace, [])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternated (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtc-bench-workers-") as tmp:
        scratch = Path(tmp)
        clip = make_clip(scratch / "short.mp4", seconds=1.0, width=640, height=360)
        info = probe_source(clip)
        probe = common_pb2.MediaProbe(container="mov,mp4,m4a,3gp,3g2,mj2", duration_seconds=info.duration_seconds,
                                      width=640, height=360, fps=30.0, video_codec="h264", audio_codec="aac",
                                      has_audio=True, video_frames=30)
        print(f"{args.jobs} jobs of a 1 s 640x360 H.264/AAC clip (one 360p rendition each), RabbitMQ, "
              "workers as separate processes")
        seconds: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.runs):
            for workers in (1, 2):
                took = await run(workers, args.jobs, clip, probe, scratch)
                seconds[workers].append(took)
                print(f"  {workers} worker{'s' if workers > 1 else ' '}: {took:6.1f} s  {args.jobs / took:5.2f} jobs/s"
                      f"  (load average {os.getloadavg()[0]:.1f})")
        one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
        print(f"medians: 1 worker {one:.1f} s, 2 workers {two:.1f} s")
        print(f"2 workers / 1 worker throughput = {one / two:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
