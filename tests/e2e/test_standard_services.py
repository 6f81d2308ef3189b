"""What grpcurl and orchestrators rely on: reflection and health, without a token."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.stack import Stack

SERVICES = ["vtc.v1.AuthService", "vtc.v1.UploadService", "vtc.v1.MetadataService", "vtc.v1.ProcessService"]


def test_reflection_describes_every_service_and_its_methods(stack: Stack) -> None:
    with stack.channel() as channel:
        reflection = ProtoReflectionDescriptorDatabase(channel)
        assert set(SERVICES) <= set(reflection.get_services())
        upload = reflection.FindFileContainingSymbol("vtc.v1.UploadService")
        assert [m.name for m in upload.service[0].method] == ["Upload"]


def test_health_reports_every_service_serving(stack: Stack) -> None:
    with stack.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", *SERVICES]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
