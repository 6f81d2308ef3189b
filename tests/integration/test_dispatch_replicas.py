"""Several metadata replicas relay the outbox at once, on one PostgreSQL
database and one RabbitMQ namespace: every job request goes out exactly once,
and together they never release more than the workers' free slots."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.metadata_svc.models import JobRow
from services.shared.bus import Delivery
from services.shared.bus.contract import PROCESS_JOBS
from services.shared.db import create_engine
from tests.databases import private_postgres_database
from tests.metadata_replicas import BrokerNamespace, metadata_replicas, register_job, require_rabbitmq
from tests.tokens import TestKeys
from vtc.v1 import events_pb2

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


async def dispatched(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(
                select(func.count()).select_from(JobRow).where(JobRow.dispatched_at.is_not(None)))).scalar_one())
    finally:
        await engine.dispose()


async def test_three_relaying_replicas_send_each_job_request_once_and_only_into_free_slots(tmp_path: Path) -> None:
    require_rabbitmq()
    namespace, keys = BrokerNamespace(), TestKeys()
    slots = 12
    worker = namespace.bus()  # stands for workers with 12 slots that take requests and never start them
    taken: collections.Counter[str] = collections.Counter()

    async def take(delivery: Delivery) -> None:
        request = delivery.decode()
        assert isinstance(request, events_pb2.JobRequested)
        taken[request.job_id] += 1
        await asyncio.sleep(3600)  # holds its slot: the job never starts

    try:
        async with private_postgres_database("vtc_dispatch_replicas") as database_url, \
                metadata_replicas(3, database_url, namespace, keys, tmp_path) as replicas:
            await worker.start()
            await worker.consume(PROCESS_JOBS, take, prefetch=slots)
            registered = await asyncio.gather(*(register_job(replicas[i % 3], keys) for i in range(30)))
            async with asyncio.timeout(30):
                while sum(taken.values()) < slots:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # every replica has polled again meanwhile
            assert max(taken.values()) == 1, f"sent twice: {[j for j, n in taken.items() if n > 1]}"
            assert set(taken) <= {r.job_id for r in registered}
            # Released: one per slot, none left waiting in the broker beyond them.
            assert await dispatched(database_url) == slots == sum(taken.values())
    finally:
        await worker.close()
        await namespace.cleanup()
