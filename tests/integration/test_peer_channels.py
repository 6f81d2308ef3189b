"""Peer addresses naming several replicas: the upload service's calls to the
process service's profile catalogue succeed while at least one worker is up."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from services.process_svc.server import ProcessComponent
from services.process_svc.settings import Settings
from services.shared.bus.memory import InProcessBus
from services.shared.channels import grpc_target, peer_channel
from services.shared.server import RunningServer, start_server
from services.shared.storage.local import LocalDirectoryStore
from tests.tokens import TestKeys
from vtc.v1 import process_pb2, process_pb2_grpc

KEYS = TestKeys()


async def start_worker(tmp_path: Path, bus: InProcessBus) -> RunningServer:
    component = ProcessComponent(Settings(data_dir=tmp_path), bus, LocalDirectoryStore(tmp_path / "objects"))
    return await start_server([component], KEYS.verifier(), "127.0.0.1", 0)


def test_a_list_of_addresses_becomes_one_balanced_target() -> None:
    assert grpc_target("process:50051") == "process:50051"
    assert grpc_target("127.0.0.1:5001, 127.0.0.1:5002") == "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert grpc_target("[::1]:5001,[::1]:5002") == "ipv6:[::1]:5001,[::1]:5002"
    with pytest.raises(ValueError, match="IP addresses only"):
        grpc_target("process-1:50051,process-2:50051")


async def test_profiles_are_served_while_one_of_two_workers_is_up(tmp_path: Path) -> None:
    bus = InProcessBus()
    first, second = await start_worker(tmp_path / "a", bus), await start_worker(tmp_path / "b", bus)
    channel = peer_channel(f"127.0.0.1:{first.port},127.0.0.1:{second.port}")
    stub = process_pb2_grpc.ProcessServiceStub(channel)

    async def profiles() -> list[str]:
        as_service = KEYS.metadata(tenant_id="system", scopes=("service",), subject="service:upload")
        reply = await stub.ListProfiles(process_pb2.ListProfilesRequest(), metadata=as_service, timeout=10)
        return [p.name for p in reply.profiles]

    try:
        assert all(["default" in await profiles() for _ in range(4)])
        await first.stop(0)  # killed: its connection drops under the channel
        answered = [await profiles() for _ in range(20)]
        assert all("default" in names for names in answered)
        await second.stop(0)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await profiles()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
        await first.stop(0)
        await second.stop(0)
        await bus.close()
