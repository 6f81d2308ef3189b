"""One contract, two buses: every test here runs on the in-process bus and on
the real RabbitMQ (under a namespace of its own, deleted afterwards)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.shared.bus import Delivery, Reject, Unroutable
from services.shared.bus.contract import API_KEY_REVOKED, JOB_EVENTS, JOB_REQUESTED, job_event_key
from tests.buses import Backend, backend
from vtc.v1 import events_pb2


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with backend(request.param) as made:
        yield made


def request(job: str = "job_1") -> events_pb2.JobRequested:
    return events_pb2.JobRequested(event_id=uuid.uuid4().hex, job_id=job, video_id="vid_1", tenant_id="ten_a")


async def collect(queue: asyncio.Queue[Delivery], count: int, timeout: float = 10) -> list[Delivery]:
    return [await asyncio.wait_for(queue.get(), timeout) for _ in range(count)]


async def eventually(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_published_event_reaches_its_consumer_decoded(world: Backend) -> None:
    bus = world.bus()
    await bus.start()
    got: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus.consume(world.queue("jobs", JOB_REQUESTED), got.put)
        await bus.publish(JOB_REQUESTED, request("job_42"), message_id="m-1")
        [delivery] = await collect(got, 1)
        assert delivery.message_id == "m-1" and delivery.delivery_count == 1
        assert delivery.message_type == "vtc.v1.JobRequested"
        assert delivery.decode().job_id == "job_42"
    finally:
        await bus.close()


async def test_topic_routing_sends_each_event_only_where_it_is_bound(world: Backend) -> None:
    bus = world.bus()
    await bus.start()
    events: asyncio.Queue[Delivery] = asyncio.Queue()
    jobs: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus.consume(world.queue("events", JOB_EVENTS), events.put)
        await bus.consume(world.queue("jobs", JOB_REQUESTED), jobs.put)
        await bus.publish(job_event_key("progress"), events_pb2.JobEvent(job_id="job_1"))
        await bus.publish(JOB_REQUESTED, request())
        assert (await collect(events, 1))[0].routing_key == "job.event.progress"
        assert (await collect(jobs, 1))[0].routing_key == JOB_REQUESTED
        await asyncio.sleep(0.3)
        assert events.empty() and jobs.empty()
    finally:
        await bus.close()


async def test_a_mandatory_publish_nobody_is_bound_to_raises_unroutable(world: Backend) -> None:
    bus = world.bus()
    await bus.start()
    try:
        with pytest.raises(Unroutable):
            await bus.publish(JOB_REQUESTED, request())
        # A broadcast nobody listens to is not an error.
        await bus.publish(API_KEY_REVOKED, events_pb2.ApiKeyRevoked(key_id="key_1"), mandatory=False)
    finally:
        await bus.close()


async def test_a_declared_queue_keeps_what_was_published_before_its_consumer_came(world: Backend) -> None:
    jobs = world.queue("jobs", JOB_REQUESTED)
    publisher = world.bus()
    await publisher.start()
    await publisher.declare(jobs)
    await publisher.publish(JOB_REQUESTED, request("job_early"))
    consumer = world.bus()
    await consumer.start()
    got: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await consumer.consume(jobs, got.put)
        assert (await collect(got, 1))[0].decode().job_id == "job_early"
    finally:
        await consumer.close()
        await publisher.close()


async def test_a_failing_handler_is_retried_then_dead_lettered_and_the_dead_letter_is_consumed(
        world: Backend) -> None:
    bus = world.bus(max_deliveries=3)
    await bus.start()
    counts: list[int] = []
    flaky = world.queue("flaky", JOB_REQUESTED)
    dead: asyncio.Queue[Delivery] = asyncio.Queue()

    async def always_fails(delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        raise RuntimeError("storage is down")

    try:
        await bus.consume(flaky, always_fails)
        await bus.consume_dead_letters(flaky, dead.put)
        await bus.publish(JOB_REQUESTED, request("job_dead"))
        [letter] = await collect(dead, 1)
        assert letter.decode().job_id == "job_dead"
        assert counts == [1, 2, 3]
    finally:
        await bus.close()


async def test_reject_dead_letters_at_once(world: Backend) -> None:
    bus = world.bus()
    await bus.start()
    seen: list[int] = []
    poison = world.queue("poison", JOB_REQUESTED)
    dead: asyncio.Queue[Delivery] = asyncio.Queue()

    async def rejects(delivery: Delivery) -> None:
        seen.append(delivery.delivery_count)
        raise Reject("can never be processed")

    try:
        await bus.consume(poison, rejects)
        await bus.consume_dead_letters(poison, dead.put)
        await bus.publish(JOB_REQUESTED, request("job_poison"))
        assert (await collect(dead, 1))[0].decode().job_id == "job_poison"
        assert seen == [1]
    finally:
        await bus.close()


async def test_every_broadcast_subscriber_gets_its_own_copy(world: Backend) -> None:
    bus_a, bus_b = world.bus(), world.bus()
    await bus_a.start()
    await bus_b.start()
    got_a: asyncio.Queue[Delivery] = asyncio.Queue()
    got_b: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus_a.consume_broadcast([API_KEY_REVOKED], got_a.put)
        await bus_b.consume_broadcast([API_KEY_REVOKED], got_b.put)
        await bus_a.publish(API_KEY_REVOKED, events_pb2.ApiKeyRevoked(key_id="key_1"), mandatory=False)
        assert (await collect(got_a, 1))[0].decode().key_id == "key_1"
        assert (await collect(got_b, 1))[0].decode().key_id == "key_1"
    finally:
        await bus_a.close()
        await bus_b.close()


async def test_a_message_in_flight_at_shutdown_is_delivered_again(world: Backend) -> None:
    jobs = world.queue("jobs", JOB_REQUESTED)
    first = world.bus()
    await first.start()
    started = asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(60)

    await first.consume(jobs, slow)
    await first.publish(JOB_REQUESTED, request("job_inflight"))
    await asyncio.wait_for(started.wait(), 10)
    await first.close()  # like a worker stopped mid-job

    second = world.bus()
    await second.start()
    got: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await second.consume(jobs, got.put)
        [delivery] = await collect(got, 1)
        assert delivery.decode().job_id == "job_inflight" and delivery.delivery_count == 2
    finally:
        await second.close()


async def test_competing_consumers_with_prefetch_one_share_the_work(world: Backend) -> None:
    jobs = world.queue("jobs", JOB_REQUESTED)
    bus_a, bus_b = world.bus(), world.bus()
    await bus_a.start()
    await bus_b.start()
    busy = {"a": 0, "b": 0}
    handled: list[str] = []

    def worker(name: str):  # type: ignore[no-untyped-def]
        async def handle(delivery: Delivery) -> None:
            busy[name] += 1
            assert busy[name] == 1, "prefetch 1: one message at a time per consumer"
            await asyncio.sleep(0.2)
            handled.append(name)
            busy[name] -= 1
        return handle

    try:
        await bus_a.consume(jobs, worker("a"))
        await bus_b.consume(jobs, worker("b"))
        for i in range(6):
            await bus_a.publish(JOB_REQUESTED, request(f"job_{i}"))
        await eventually(lambda: len(handled) == 6)
        assert set(handled) == {"a", "b"}
    finally:
        await bus_a.close()
        await bus_b.close()


async def test_two_namespaces_on_one_backend_never_share_a_queue(world: Backend) -> None:
    jobs = world.queue("jobs", JOB_REQUESTED)
    other = Backend(world.kind)  # a second deployment (or test run) on the same broker
    mine, theirs = world.bus(), other.bus()
    await mine.start()
    await theirs.start()
    got_mine: asyncio.Queue[Delivery] = asyncio.Queue()
    got_theirs: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await mine.consume(jobs, got_mine.put)
        await theirs.consume(other.queue("jobs", JOB_REQUESTED), got_theirs.put)
        await mine.publish(JOB_REQUESTED, request("job_mine"))
        await theirs.publish(JOB_REQUESTED, request("job_theirs"))
        assert (await collect(got_mine, 1))[0].decode().job_id == "job_mine"
        assert (await collect(got_theirs, 1))[0].decode().job_id == "job_theirs"
        await asyncio.sleep(0.3)
        assert got_mine.empty() and got_theirs.empty()
    finally:
        await mine.close()
        await theirs.close()
        await other.cleanup()


async def test_consumer_count_is_how_many_messages_the_consumers_can_run_at_once(world: Backend) -> None:
    jobs = world.queue("jobs", JOB_REQUESTED)
    publisher, worker_a, worker_b = world.bus(), world.bus(), world.bus()
    for bus in (publisher, worker_a, worker_b):
        await bus.start()

    async def handle(delivery: Delivery) -> None:
        return None

    try:
        await publisher.declare(jobs)
        assert await publisher.consumer_count(jobs) == 0
        await worker_a.consume(jobs, handle, prefetch=2)  # a worker running two jobs at once
        await worker_b.consume(jobs, handle)
        assert await publisher.consumer_count(jobs) == 3
    finally:
        for bus in (publisher, worker_a, worker_b):
            await bus.close()
