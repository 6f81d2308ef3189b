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


def applied(job: Job, sequence: int, percent: float, *, terminal: bool = False) -> tuple[Job, JobUpdate]:
    """The job after the event, and the update a replica fans out for it."""
    event = events_pb2.JobEvent(job_id=job.job_id, attempt=1, sequence=sequence)
    if terminal:
        event.completed.SetInParent()
    else:
        event.progress.CopyFrom(common_pb2.Progress(percent=percent))
    after = replace(job)
    after.apply(event)
    return after, JobUpdate(after.to_proto(), event)


def update(job: Job, sequence: int, percent: float, *, terminal: bool = False) -> JobUpdate:
    return applied(job, sequence, percent, terminal=terminal)[1]


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
    snapshot, first = applied(job, 1, 10.0)  # the watcher read its state after event 1 was applied
    ready = asyncio.Event()
    watcher = asyncio.create_task(collect(hub, snapshot, ready))
    await ready.wait()
    hub.publish(first)  # fanned out after the watcher read the DB: must not be sent twice
    after_second, second = applied(snapshot, 2, 50.0)
    hub.publish(second)
    hub.publish(update(after_second, 3, 0, terminal=True))
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


async def test_copies_from_two_replicas_out_of_order_are_sent_once_each_in_order() -> None:
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    after_1, first = applied(job, 1, 10.0)
    after_2, second = applied(after_1, 2, 40.0)
    third = update(after_2, 3, 0, terminal=True)
    ready = asyncio.Event()
    watcher = asyncio.create_task(collect(hub, job, ready))
    await ready.wait()
    # Replica A's copies and replica B's: a repeat and one that overtook a later one.
    for item in (first, second, first, second, third):
        hub.publish(item)
    assert await asyncio.wait_for(watcher, 5) == [10.0, 40.0, 100.0]


async def test_a_watcher_that_hears_nothing_reads_the_job_again_and_ends_on_its_final_state() -> None:
    """The broadcast between replicas is best effort: a lost copy of the last event must not leave a
    watch hanging on a job that has ended."""
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)
    running, _ = applied(job, 1, 10.0)
    stored = [running]  # what the database says, as the test moves the job on without telling the hub

    async def reread() -> Job:
        return stored[0]

    async def watch() -> list[tuple[int, bool]]:
        seen = []
        with hub.subscribe(job.job_id) as subscription:
            async for item in subscription.after(running, reread, recheck_seconds=0.05):
                seen.append((item.job.status, item.event is None))
        return seen

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)  # several rechecks find nothing new: nothing is sent
    assert not watcher.done()
    stored[0] = applied(running, 2, 0, terminal=True)[0]  # completed; its broadcast was lost

    assert await asyncio.wait_for(watcher, 5) == [(common_pb2.JOB_STATUS_COMPLETED, True)]
    assert hub.watcher_count() == 0


async def test_a_watcher_whose_job_is_gone_when_read_again_ends() -> None:
    hub = JobWatchHub()
    job = Job.queued("job_1", "vid_1", "ten_a", "default", T0)

    async def reread() -> Job:
        raise JobGone(job.job_id)

    with hub.subscribe(job.job_id) as subscription, pytest.raises(JobGone):
        async for _ in subscription.after(job, reread, recheck_seconds=0.05):
            pass
