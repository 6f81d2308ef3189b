"""Metadata owns dispatch: a registered job reaches a worker whatever happens
to the upload service or the broker after RegisterVideo answered; quotas
refuse uploads with RESOURCE_EXHAUSTED; one tenant's burst does not hold up
another tenant's job. Real workers transcode real clips."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.metadata_svc.models import OutboxRow
from services.shared.bus import Bus, Delivery
from services.shared.bus.contract import JOB_CANCEL
from services.shared.bus.memory import InProcessBus
from services.shared.db import create_engine, sqlite_url
from tests.buses import backend
from tests.databases import private_postgres_database
from tests.dispatch_mesh import TERMINAL, start_dispatch_mesh
from tests.media import make_clip
from vtc.v1 import common_pb2, metadata_pb2

QUEUED, COMPLETED = common_pb2.JOB_STATUS_QUEUED, common_pb2.JOB_STATUS_COMPLETED


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "tiny.mp4", seconds=0.5, width=160, height=90)


async def outbox_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(OutboxRow)) or 0)
    finally:
        await engine.dispose()


@pytest.fixture(params=["memory+sqlite", pytest.param("rabbitmq+postgres", marks=[pytest.mark.rabbitmq,
                                                                                   pytest.mark.postgres])])
async def mesh_parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Bus, str]]:
    bus_kind, database = request.param.split("+")
    async with backend(bus_kind) as world:
        if database == "sqlite":
            yield world.bus(), sqlite_url(tmp_path / "metadata.db")
        else:
            async with private_postgres_database("vtc_dispatch_test") as url:
                yield world.bus(), url


async def test_a_registered_job_completes_though_the_uploader_died_right_after_registering(
        mesh_parts: tuple[Bus, str], tmp_path: Path, tiny_clip: Path) -> None:
    bus, database_url = mesh_parts
    mesh = await start_dispatch_mesh(tmp_path, bus, database_url)
    try:
        await mesh.add_worker()
        # RegisterVideo is the upload service's last step: nothing it does (or fails to do) afterwards matters.
        registered = await mesh.register("ten_a", tiny_clip)
        job = await mesh.wait_until("ten_a", registered.job.job_id, TERMINAL)
        assert job.status == COMPLETED, job.error
        assert [(r.width, r.height) for r in job.renditions] == [(160, 90)]
        assert await outbox_rows(database_url) == 0, "a confirmed message leaves the outbox"
    finally:
        await mesh.stop()


async def test_a_job_registered_before_any_worker_started_runs_when_one_does(
        mesh_parts: tuple[Bus, str], tmp_path: Path, tiny_clip: Path) -> None:
    bus, database_url = mesh_parts
    mesh = await start_dispatch_mesh(tmp_path, bus, database_url)
    try:
        registered = await mesh.register("ten_a", tiny_clip)
        await asyncio.sleep(0.5)  # published into the queue metadata declared; no worker yet
        await mesh.add_worker()
        job = await mesh.wait_until("ten_a", registered.job.job_id, TERMINAL)
        assert job.status == COMPLETED, job.error
    finally:
        await mesh.stop()


class BrokerOutage(InProcessBus):
    """The in-process bus, with publishing refused while `down` (as a stopped broker
    refuses connections); tests/integration/test_broker_restart.py stops a real one."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def publish(self, routing_key: str, message: Message, *, message_id: str = "",
                      mandatory: bool = True) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("the broker is unreachable")
        await super().publish(routing_key, message, message_id=message_id, mandatory=mandatory)


async def test_an_upload_registered_while_the_broker_is_down_is_dispatched_when_it_is_back(
        tmp_path: Path, tiny_clip: Path) -> None:
    bus = BrokerOutage()
    database_url = sqlite_url(tmp_path / "metadata.db")
    mesh = await start_dispatch_mesh(tmp_path, bus, database_url, metadata_outbox_poll_seconds=0.1)
    try:
        await mesh.add_worker()
        bus.down = True
        registered = await mesh.register("ten_a", tiny_clip)  # accepted: it only needs the database
        await asyncio.sleep(1.0)
        assert bus.refused >= 2, "the relay kept trying"
        assert (await mesh.job("ten_a", registered.job.job_id)).status == QUEUED
        assert await outbox_rows(database_url) == 1, "the request waits in the outbox"
        bus.down = False
        job = await mesh.wait_until("ten_a", registered.job.job_id, TERMINAL, timeout=30)
        assert job.status == COMPLETED, job.error
        assert await outbox_rows(database_url) == 0
    finally:
        await mesh.stop()


async def test_quotas_refuse_uploads_with_resource_exhausted_and_name_the_limit(
        tmp_path: Path, tiny_clip: Path) -> None:
    mesh = await start_dispatch_mesh(tmp_path, InProcessBus(), sqlite_url(tmp_path / "metadata.db"),
                                     metadata_quota_queued_jobs=2, metadata_quota_stored_bytes=10_000_000)
    try:
        # No worker: the jobs stay queued.
        await mesh.register("ten_a", tiny_clip)
        await mesh.register("ten_a", tiny_clip)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.register("ten_a", tiny_clip)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "has 2 jobs queued, the most it may have is 2" in (refused.value.details() or "")
        # Another tenant is not held to ten_a's count.
        await mesh.register("ten_b", tiny_clip)
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await mesh.register("ten_b", tiny_clip, size_bytes=9_999_999)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "may store at most 10000000" in (too_big.value.details() or "")
    finally:
        await mesh.stop()


async def test_quotas_refuse_a_retranscode_or_a_retry_as_they_refuse_an_upload(tmp_path: Path,
                                                                               tiny_clip: Path) -> None:
    mesh = await start_dispatch_mesh(tmp_path, InProcessBus(), sqlite_url(tmp_path / "metadata.db"),
                                     metadata_quota_queued_jobs=2)
    try:
        # No worker: the jobs stay queued.
        first = await mesh.register("ten_a", tiny_clip)
        again = await mesh.stub.Retranscode(metadata_pb2.RetranscodeRequest(video_id=first.video.video_id),
                                            metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert again.status == QUEUED and again.video_id == first.video.video_id
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.stub.Retranscode(metadata_pb2.RetranscodeRequest(video_id=first.video.video_id,
                                                                        profile="hevc"),
                                        metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "has 2 jobs queued, the most it may have is 2" in (refused.value.details() or "")
        cancelled = await mesh.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=again.job_id),
                                              metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert cancelled.status == common_pb2.JOB_STATUS_CANCELLED
        await mesh.register("ten_a", tiny_clip)  # the queue is full again
        with pytest.raises(grpc.aio.AioRpcError) as no_retry:
            await mesh.stub.RetryJob(metadata_pb2.RetryJobRequest(job_id=again.job_id),
                                     metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert no_retry.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await mesh.stop()


async def test_a_quiet_tenants_job_starts_ahead_of_another_tenants_burst(tmp_path: Path, tiny_clip: Path) -> None:
    mesh = await start_dispatch_mesh(tmp_path, InProcessBus(), sqlite_url(tmp_path / "metadata.db"),
                                     metadata_outbox_poll_seconds=0.2)
    try:
        # The burst is queued before the quiet tenant's job, and before a worker is free.
        burst = [await mesh.register("ten_busy", tiny_clip) for _ in range(12)]
        quiet = await mesh.register("ten_quiet", tiny_clip)
        await mesh.add_worker()
        done = await mesh.wait_until("ten_quiet", quiet.job.job_id, TERMINAL)
        assert done.status == COMPLETED, done.error
        statuses = [(await mesh.job("ten_busy", r.job.job_id)).status for r in burst]
        # In one FIFO queue the quiet job would run last, behind all 12.
        assert statuses.count(QUEUED) >= 8, f"the quiet job waited behind the burst: {statuses}"
        for registered in burst:
            assert (await mesh.wait_until("ten_busy", registered.job.job_id, TERMINAL)).status == COMPLETED
    finally:
        await mesh.stop()


async def test_an_upload_over_the_stored_bytes_quota_is_refused_through_the_upload_service_and_leaves_nothing(
        tmp_path: Path, tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_upload_grpc import start_stack, upload

    size = tiny_clip.stat().st_size
    monkeypatch.setenv("VTC_METADATA_QUOTA_STORED_BYTES", str(size + size // 2))  # room for one source
    stack = await start_stack(tmp_path)
    try:
        caller = await stack.tenant_token("Quota Co")
        first = await upload(stack, caller.token, tiny_clip)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await upload(stack, caller.token, tiny_clip)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"may store at most {size + size // 2}" in (refused.value.details() or "")
        assert stack.stored_video_ids() == {first.video_id}, "the refused upload's source was removed"
    finally:
        await stack.stop()


async def test_a_cancel_made_while_the_broker_is_down_reaches_the_workers_once_it_is_back(
        tmp_path: Path, tiny_clip: Path) -> None:
    bus = BrokerOutage()
    mesh = await start_dispatch_mesh(tmp_path, bus, sqlite_url(tmp_path / "metadata.db"),
                                     metadata_outbox_poll_seconds=0.1)
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def worker_hears(delivery: Delivery) -> None:
        heard.put_nowait(delivery.decode().job_id)

    try:
        await bus.consume_broadcast([JOB_CANCEL], worker_hears)
        registered = await mesh.register("ten_a", tiny_clip)
        bus.down = True
        cancelled = await mesh.stub.CancelJob(metadata_pb2.CancelJobRequest(job_id=registered.job.job_id),
                                              metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert cancelled.status == common_pb2.JOB_STATUS_CANCELLED  # the database says so at once
        await asyncio.sleep(0.5)
        assert heard.empty()
        bus.down = False
        assert await asyncio.wait_for(heard.get(), 10) == registered.job.job_id
    finally:
        await mesh.stop()


async def test_retranscode_checks_names_against_the_profile_folder_the_workers_run(tmp_path: Path,
                                                                                  tiny_clip: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "index.yaml").write_text("profiles: [tiny.yaml]\n")
    (folder / "tiny.yaml").write_text(
        "name: tiny\noutputs:\n  - {type: video, name: 144p, height: 144, crf: 30, maxrate: 200k, bufsize: 400k}\n")
    mesh = await start_dispatch_mesh(tmp_path, InProcessBus(), sqlite_url(tmp_path / "metadata.db"),
                                     process_profiles_dir=folder)
    try:
        video = (await mesh.register("ten_a", tiny_clip)).video.video_id
        job = await mesh.stub.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video, profile="tiny"),
                                          metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert job.profile == "tiny" and job.status == QUEUED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await mesh.stub.Retranscode(metadata_pb2.RetranscodeRequest(video_id=video, profile="hevc"),
                                        metadata=mesh.as_tenant("ten_a"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown profile 'hevc'; available profiles: tiny" in (refused.value.details() or "")
    finally:
        await mesh.stop()
