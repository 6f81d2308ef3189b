"""Two metadata replicas on one PostgreSQL database and one RabbitMQ namespace:
job events go to whichever replica takes them from the competing queue, yet
every WatchJob stream, on either replica, sees its job to the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.process_svc.execute import TranscodeProgress
from services.shared.storage.keys import rendition_key
from tests.databases import private_postgres_database
from tests.metadata_replicas import (
    BrokerNamespace,
    Replica,
    as_reader,
    metadata_replicas,
    register_job,
    require_rabbitmq,
    worker_events,
)
from tests.tokens import TestKeys
from vtc.v1 import common_pb2, events_pb2, metadata_pb2

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

JOBS = 20


@pytest.fixture
async def namespace() -> AsyncIterator[BrokerNamespace]:
    require_rabbitmq()
    namespace = BrokerNamespace()
    try:
        yield namespace
    finally:
        await namespace.cleanup()


async def watch_to_the_end(replica: Replica, keys: TestKeys, job_id: str,
                           subscribed: asyncio.Event) -> list[common_pb2.Job]:
    call = replica.stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=as_reader(keys))
    seen = []
    while (message := await call.read()) is not grpc.aio.EOF:
        seen.append(message.job)
        subscribed.set()
    return seen


async def run_job(publisher_bus, request: events_pb2.JobRequested) -> None:  # type: ignore[no-untyped-def]
    events = worker_events(publisher_bus, request)
    await events.started("worker-test")
    for percent in (25.0, 50.0, 75.0):
        await events.progress(TranscodeProgress(percent=percent, frames=int(percent), total_frames=100,
                                                fps=30.0, speed=1.0, eta_seconds=1.0))
    key = rendition_key(request.tenant_id, request.video_id, "360p")
    rendition = common_pb2.Rendition(name="360p", width=640, height=360, storage_key=key)
    await events.completed([common_pb2.Output(
        name="360p", type="video", status=common_pb2.OUTPUT_STATUS_COMPLETED, rendition=rendition,
        files=[common_pb2.OutputFile(path="renditions/360p.mp4", storage_key=key, content_type="video/mp4")])])


async def test_twenty_watchers_spread_over_two_replicas_all_see_their_job_end(
        tmp_path: Path, namespace: BrokerNamespace) -> None:
    keys = TestKeys()
    async with private_postgres_database("vtc_replicas") as database_url, \
            metadata_replicas(2, database_url, namespace, keys, tmp_path) as replicas:
        requests = [await register_job(replicas[0], keys) for _ in range(JOBS)]
        subscribed = [asyncio.Event() for _ in requests]
        watchers = [asyncio.create_task(watch_to_the_end(replicas[i % 2], keys, r.job_id, subscribed[i]))
                    for i, r in enumerate(requests)]
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in subscribed)), 20)
        # Both replicas take events from the one queue: without the fan-out about
        # half the jobs would end on the replica their watcher is not on.
        workers = namespace.bus()
        await workers.start()
        try:
            await asyncio.gather(*(run_job(workers, r) for r in requests))
            await asyncio.wait(watchers, timeout=20)
        finally:
            await workers.close()
            for task in watchers:
                task.cancel()

    results = [t.result() for t in watchers if t.done() and not t.cancelled() and t.exception() is None]
    ended = [seen for seen in results if seen[-1].status == common_pb2.JOB_STATUS_COMPLETED]
    print(f"\n{len(ended)}/{JOBS} watchers spread over 2 metadata replicas saw their job end")
    assert len(ended) == JOBS
    for seen in ended:
        steps = [(job.status, job.progress.percent) for job in seen]
        assert steps == sorted(steps), f"a watcher saw its job go backwards: {steps}"
        assert len(steps) == len(set(steps)), f"a watcher got an update twice: {steps}"
