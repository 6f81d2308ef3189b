"""The mesh plan, without starting anything: who runs, on which port, told what."""

from __future__ import annotations

import itertools
from pathlib import Path

from gateway.traefik_config import dynamic_config
from services.mesh.plan import plan_mesh
from services.mesh.settings import DEFAULT_BUS_URL, MeshSettings


def test_two_replicas_each_know_every_peer_and_keep_their_own_scratch(tmp_path: Path) -> None:
    settings = MeshSettings(data_dir=tmp_path, bus_url="memory://", bus_namespace="mesh-a")
    plan = plan_mesh(settings, itertools.count(7001), auth_database_url="postgresql+asyncpg://h/a",
                     metadata_database_url="postgresql+asyncpg://h/m")
    assert [p.name for stage in plan.stages for p in stage] == [
        "auth", "metadata-1", "metadata-2", "process-1", "process-2", "upload"]
    assert len({p.port for p in plan.services}) == 6
    upload = plan.upload.env
    assert upload["VTC_METADATA_ADDR"] == "127.0.0.1:7002,127.0.0.1:7003"
    assert upload["VTC_PROCESS_ADDR"] == "127.0.0.1:7004,127.0.0.1:7005"
    assert all(p.env["VTC_GRPC_PORT"] == str(p.port) for p in plan.services)
    # Each process its own metrics endpoint, on a port nothing else uses.
    assert all(p.env["VTC_METRICS_PORT"] == str(p.metrics_port) for p in plan.services)
    assert len({p.port for p in plan.services} | {p.metrics_port for p in plan.services}) == 12
    assert all(p.env["VTC_BUS_URL"] == DEFAULT_BUS_URL for p in plan.services)  # memory:// cannot join processes
    assert all(p.env["VTC_BUS_NAMESPACE"] == "mesh-a" for p in plan.services)
    assert len({p.env["VTC_PROCESS_WORK_DIR"] for p in plan.process}) == 2
    assert {p.env["VTC_DATA_DIR"] for p in plan.services} == {str(tmp_path.resolve())}


def test_traefik_routes_each_grpc_service_to_all_its_replicas_and_rest_to_envoy() -> None:
    config = dynamic_config(services={"AuthService": ["127.0.0.1:1"], "UploadService": ["127.0.0.1:2"],
                                      "MetadataService": ["127.0.0.1:3", "127.0.0.1:4"],
                                      "ProcessService": ["127.0.0.1:5"]}, envoy="127.0.0.1:9")
    http = config["http"]
    assert http["routers"]["grpc-metadata"]["rule"] == "PathPrefix(`/vtc.v1.MetadataService/`)"
    assert [s["url"] for s in http["services"]["metadata"]["loadBalancer"]["servers"]] == [
        "h2c://127.0.0.1:3", "h2c://127.0.0.1:4"]
    assert http["services"]["metadata"]["loadBalancer"]["healthCheck"]["mode"] == "grpc"
    assert http["routers"]["rest"]["entryPoints"] == ["rest"]
    assert http["services"]["envoy"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:9"}]
