"""Dispatch latency: from the upload's reply to the client seeing its job
RUNNING, on RabbitMQ through metadata's outbox, with an idle worker.

    make bench BENCH=dispatch     (or: .venv/bin/python bench/dispatch_latency.py [--jobs 200])

The all-in-one process runs on the RabbitMQ at VTC_BENCH_AMQP_URL (default the
local one, under a namespace of this run's own, deleted afterwards) and the
PostgreSQL at VTC_BENCH_POSTGRES_URL when reachable (a database of its own),
else SQLite. Each of --jobs tiny uploads (0.5 s, 160x90) is made once the
previous job has finished, so a worker is idle; the client opens WatchJob
right after the reply and stops the clock at the first update that is not
QUEUED. The path measured: RegisterVideo's commit -> relay publishes
job.requested (confirmed) -> worker takes it, publishes job.event.started ->
metadata applies it -> WatchJob. For scale it also prints the broker's own
publish -> consume round trip measured in the same run.
Prints `dispatch p50 = N ms`, `dispatch p99 = N ms` (target p99 <= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from service_stack import ServiceStack, percentile, tiny_clip

from services.shared.bus import Delivery
from services.shared.bus.amqp import RabbitMqBus
from services.shared.bus.contract import JOB_REQUESTED, Namespace, QueueSpec
from vtc.v1 import common_pb2, events_pb2

AMQP_URL = os.environ.get("VTC_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get("VTC_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def database(data_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """(SQLAlchemy URL, what it is): a PostgreSQL database of this run's own, else SQLite."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    name = f"vtc_bench_{secrets.token_hex(5)}"
    try:
        admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    except (OSError, asyncpg.PostgresError):
        yield f"sqlite+aiosqlite:///{data_dir / 'metadata.db'}", "SQLite"
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False), "PostgreSQL"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_namespace(namespace: Namespace, queues: list[QueueSpec]) -> None:
    import aio_pika

    from services.shared.bus.contract import METADATA_JOB_EVENTS, PROCESS_JOBS

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for spec in [*queues, PROCESS_JOBS, METADATA_JOB_EVENTS]:
            for queue in (namespace.queue(spec), namespace.dead_letter_queue(spec)):
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(queue)
        for exchange in (namespace.exchange, namespace.dead_letter_exchange):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)


async def broker_round_trips(namespace: Namespace, count: int) -> list[float]:
    """The floor under our figure: a confirmed publish until its consumer has it."""
    bus = RabbitMqBus(AMQP_URL, namespace=namespace)
    await bus.start()
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def consume(delivery: Delivery) -> None:
        arrived.put_nowait(time.monotonic())

    try:
        await bus.consume(QueueSpec("bench.round-trip", (JOB_REQUESTED,)), consume)
        times = []
        for _ in range(count):
            sent = time.monotonic()
            await bus.publish(JOB_REQUESTED, events_pb2.JobRequested(job_id="bench"))
            times.append((await asyncio.wait_for(arrived.get(), 10)) - sent)
        return times
    finally:
        await bus.close()


async def main(jobs: int) -> None:
    namespace = Namespace(f"vtc-bench-{uuid.uuid4().hex[:8]}")
    clip = tiny_clip()
    with tempfile.TemporaryDirectory(prefix="vtc-bench-dispatch-") as tmp:
        async with database(Path(tmp)) as (database_url, database_name):
            stack = await ServiceStack.start(Path(tmp) / "var", bus_url=AMQP_URL, bus_namespace=namespace.name,
                                             metadata_database_url=database_url)
            try:
                tenant = await stack.tenant("bench")
                waits: list[float] = []
                for _ in range(jobs):
                    reply = await stack.upload(tenant, clip)
                    waits.append(await stack.seconds_until_running(tenant, reply.job_id, time.monotonic()))
                    job = await stack.wait_finished(tenant, reply.job_id)
                    if job.status != common_pb2.JOB_STATUS_COMPLETED:
                        raise SystemExit(f"job {job.job_id} ended {common_pb2.JobStatus.Name(job.status)}: {job.error}")
            finally:
                await stack.stop()
        round_trips = await broker_round_trips(namespace, 200)
    await delete_namespace(namespace, [QueueSpec("bench.round-trip", (JOB_REQUESTED,))])
    ms = [w * 1000 for w in waits]
    floor = [t * 1000 for t in round_trips]
    print(f"{jobs} tiny jobs on RabbitMQ ({AMQP_URL.rsplit('@', 1)[-1]}) and {database_name}, one idle worker")
    print(f"dispatch p50 = {statistics.median(ms):.1f} ms")
    print(f"dispatch p99 = {percentile(ms, 0.99):.1f} ms")
    print(f"dispatch max = {max(ms):.1f} ms")
    print(f"broker round trip (publish confirmed -> consumed) p50 = {statistics.median(floor):.1f} ms, "
          f"p99 = {percentile(floor, 0.99):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    asyncio.run(main(parser.parse_args().jobs))
