"""The WatchJob fan-out hub, without a server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.metadata_svc.job import Job
from services.metadata_svc.watch import JobGone, JobUpdate, JobWatchHub
from vtc.v1 import common_pb2, events_pb2

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def update(job: Job, sequence: int, percent: float, *, terminal: bool = False) -> JobUpdate:
    event = events_pb2.JobEvent(job_id=job.job_id, attempt=1, sequence=sequence)
    if terminal:
        event.completed.SetInParent()
    else:
        event.progress.CopyFrom(common_pb2.Progress(percent=percent))
    after = replace(job)
    after.apply(event)
    return JobUpdate(after, event)


async def collect(hub: JobWatchHub, snapshot: Job, ready: asyncio.Event) -> list[float]:
    seen = []
    with hub.subscribe(snapshot.job_id) as subscription:
        ready.set()
        async for item in subscription.after(snapshot):
            seen.append(item.job.progress.percent)
    return seen


async def test_updates_already_in_the_snapshot_are_skipped_and_the_stream_ends_when_finished() -> None:
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    first = update(job, 1, 10.0)
    snapshot = first.job  # the watcher read its state after event 1 was applied
    ready = asyncio.Event()
    watcher = asyncio.create_task(collect(hub, snapshot, ready))
    await ready.wait()
    hub.publish(first)  # fanned out after the watcher read the DB: must not be sent twice
    second = update(snapshot, 2, 50.0)
    hub.publish(second)
    hub.publish(update(second.job, 3, 0, terminal=True))
    assert await asyncio.wait_for(watcher, 5) == [50.0, 100.0]
    assert hub.watcher_count() == 0


async def test_a_watcher_that_goes_away_is_removed() -> None:
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    ready = asyncio.Event()
    watcher = asyncio.create_task(collect(hub, job, ready))
    await ready.wait()
    assert hub.watcher_count("job_1") == 1
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert hub.watcher_count() == 0
    hub.publish(update(job, 1, 10.0))  # publishing to nobody is fine


async def test_deleting_the_job_ends_its_watchers() -> None:
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    ready = asyncio.Event()
    watcher = asyncio.create_task(collect(hub, job, ready))
    await ready.wait()
    hub.end(["job_1"])
    with pytest.raises(JobGone):
        await asyncio.wait_for(watcher, 5)
    assert hub.watcher_count() == 0
