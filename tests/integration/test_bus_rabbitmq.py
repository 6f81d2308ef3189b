"""The RabbitMQ bus against the real broker on 127.0.0.1:5672. Every test uses
an exchange and queues of its own and deletes them, leaving the broker as found."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import aio_pika
import pytest

from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings as ProcessSettings
from services.shared.bus import Delivery, Reject
from services.shared.bus.amqp import RabbitMqBus
from services.shared.storage.local import LocalDirectoryStore
from tests.conftest import require_service
from tests.media import make_clip
from vtc.v1 import events_pb2

AMQP_URL = os.environ.get("VTC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
pytestmark = pytest.mark.rabbitmq


class Broker:
    """Names of this test's own, and the cleanup of everything it declared."""

    def __init__(self) -> None:
        self.exchange = f"vtc.test.{uuid.uuid4().hex[:10]}"
        self.queues: list[str] = []

    def queue(self, name: str) -> str:
        full = f"{self.exchange}.{name}"
        self.queues += [full, f"{full}.dead-letter"]
        return full

    def bus(self) -> RabbitMqBus:
        return RabbitMqBus(AMQP_URL, exchange=self.exchange)

    async def cleanup(self) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            for name in [*self.queues]:
                channel = await connection.channel()
                with contextlib.suppress(Exception):  # already gone
                    await channel.queue_delete(name)
            for name in (self.exchange, f"{self.exchange}.dead-letter"):
                channel = await connection.channel()
                with contextlib.suppress(Exception):  # already gone
                    await channel.exchange_delete(name)

    async def dead_letters(self, queue: str) -> list[bytes]:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(f"{queue}.dead-letter", passive=True)
            bodies = []
            while (message := await declared.get(fail=False)) is not None:
                bodies.append(message.body)
                await message.ack()
            return bodies


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    parsed = urlparse(AMQP_URL)
    require_service("RabbitMQ", parsed.hostname or "127.0.0.1", parsed.port or 5672)
    broker = Broker()
    try:
        yield broker
    finally:
        await broker.cleanup()


def request(job: str = "job_1") -> events_pb2.JobRequested:
    return events_pb2.JobRequested(event_id=uuid.uuid4().hex, job_id=job, video_id="vid_1", tenant_id="ten_a")


async def collect(queue: asyncio.Queue[Delivery], count: int, timeout: float = 10) -> list[Delivery]:
    return [await asyncio.wait_for(queue.get(), timeout) for _ in range(count)]


async def test_a_published_event_reaches_its_consumer_decoded(broker: Broker) -> None:
    bus = broker.bus()
    await bus.start()
    got: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus.consume(broker.queue("jobs"), ["job.requested"], got.put)
        await bus.publish("job.requested", request("job_42"), message_id="m-1")
        [delivery] = await collect(got, 1)
        assert delivery.message_id == "m-1" and delivery.delivery_count == 1
        assert delivery.message_type == "vtc.v1.JobRequested"
        assert delivery.decode().job_id == "job_42"
    finally:
        await bus.close()


async def test_topic_routing_sends_each_event_only_where_it_is_bound(broker: Broker) -> None:
    bus = broker.bus()
    await bus.start()
    events: asyncio.Queue[Delivery] = asyncio.Queue()
    jobs: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus.consume(broker.queue("events"), ["job.event.#"], events.put)
        await bus.consume(broker.queue("jobs"), ["job.requested"], jobs.put)
        await bus.publish("job.event.progress", events_pb2.JobEvent(job_id="job_1"))
        await bus.publish("job.requested", request())
        assert (await collect(events, 1))[0].routing_key == "job.event.progress"
        assert (await collect(jobs, 1))[0].routing_key == "job.requested"
        await asyncio.sleep(0.3)
        assert events.empty() and jobs.empty()
    finally:
        await bus.close()


async def test_a_failing_handler_is_retried_then_dead_lettered(broker: Broker) -> None:
    bus = broker.bus()
    await bus.start()
    counts: list[int] = []
    queue = broker.queue("flaky")

    async def always_fails(delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        raise RuntimeError("storage is down")

    try:
        await bus.consume(queue, ["job.requested"], always_fails, max_deliveries=3)
        await bus.publish("job.requested", request("job_dead"))
        for _ in range(100):
            if len(counts) >= 3:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert counts == [1, 2, 3]
    finally:
        await bus.close()
    [body] = await broker.dead_letters(queue)
    assert events_pb2.JobRequested.FromString(body).job_id == "job_dead"


async def test_reject_dead_letters_at_once(broker: Broker) -> None:
    bus = broker.bus()
    await bus.start()
    seen: list[int] = []
    queue = broker.queue("poison")

    async def rejects(delivery: Delivery) -> None:
        seen.append(delivery.delivery_count)
        raise Reject("can never be processed")

    try:
        await bus.consume(queue, ["job.requested"], rejects)
        await bus.publish("job.requested", request("job_poison"))
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
    finally:
        await bus.close()
    assert seen == [1]
    assert len(await broker.dead_letters(queue)) == 1


async def test_every_broadcast_subscriber_gets_its_own_copy(broker: Broker) -> None:
    bus_a, bus_b = broker.bus(), broker.bus()
    await bus_a.start()
    await bus_b.start()
    got_a: asyncio.Queue[Delivery] = asyncio.Queue()
    got_b: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await bus_a.consume_broadcast(["auth.api_key.revoked"], got_a.put)
        await bus_b.consume_broadcast(["auth.api_key.revoked"], got_b.put)
        await bus_a.publish("auth.api_key.revoked", events_pb2.ApiKeyRevoked(key_id="key_1"))
        assert (await collect(got_a, 1))[0].decode().key_id == "key_1"
        assert (await collect(got_b, 1))[0].decode().key_id == "key_1"
    finally:
        await bus_a.close()
        await bus_b.close()


async def test_a_message_in_flight_at_shutdown_is_delivered_again(broker: Broker) -> None:
    queue = broker.queue("jobs")
    first = broker.bus()
    await first.start()
    started = asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(60)

    await first.consume(queue, ["job.requested"], slow)
    await first.publish("job.requested", request("job_inflight"))
    await asyncio.wait_for(started.wait(), 10)
    await first.close()  # like a worker stopped mid-job

    second = broker.bus()
    await second.start()
    got: asyncio.Queue[Delivery] = asyncio.Queue()
    try:
        await second.consume(queue, ["job.requested"], got.put)
        [delivery] = await collect(got, 1)
        assert delivery.decode().job_id == "job_inflight"
    finally:
        await second.close()


async def test_competing_consumers_with_prefetch_one_share_the_work(broker: Broker) -> None:
    queue = broker.queue("jobs")
    bus_a, bus_b = broker.bus(), broker.bus()
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
        await bus_a.consume(queue, ["job.requested"], worker("a"))
        await bus_b.consume(queue, ["job.requested"], worker("b"))
        for i in range(6):
            await bus_a.publish("job.requested", request(f"job_{i}"))
        for _ in range(100):
            if len(handled) == 6:
                break
            await asyncio.sleep(0.1)
        assert len(handled) == 6 and set(handled) == {"a", "b"}
    finally:
        await bus_a.close()
        await bus_b.close()


async def test_the_transcode_worker_runs_a_job_over_rabbitmq(broker: Broker, tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, width=320, height=180)
    await store.put_file("ten_a/vid_1/source.mp4", clip, "video/mp4")
    bus = broker.bus()
    await bus.start()
    events: asyncio.Queue[Delivery] = asyncio.Queue()
    component = ProcessComponent(ProcessSettings(data_dir=tmp_path), bus, store)
    try:
        # The worker's queue name is fixed; this test's exchange keeps it apart from others'.
        broker.queues += ["process.jobs", "process.jobs.dead-letter"]
        await bus.consume(broker.queue("events"), ["job.event.#"], events.put)
        await component.start()
        job = request("job_rmq")
        job.source_key, job.profile, job.attempt = "ten_a/vid_1/source.mp4", "default", 1
        job.probe.width, job.probe.height, job.probe.fps, job.probe.duration_seconds = 320, 180, 30, 1.0
        await bus.publish("job.requested", job)
        while True:
            event = (await collect(events, 1, timeout=60))[0].decode()
            if event.WhichOneof("kind") in ("completed", "failed"):
                break
        assert event.WhichOneof("kind") == "completed", event.failed.reason
        [rendition] = event.completed.renditions
        assert (rendition.width, rendition.height) == (320, 180)
        assert (await store.stat(rendition.storage_key)).size_bytes == rendition.size_bytes
    finally:
        await component.stop()
        await bus.close()
