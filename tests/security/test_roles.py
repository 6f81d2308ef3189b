"""Escalation through roles: a tenant admin, a read-only key and an ordinary
user try what only the platform operator or a service identity may do. Each
is refused, over gRPC and REST, and nothing is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.calls import bearer
from tests.security.world import World
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc

REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}


def _role_token(world: World, scopes: list[str]) -> str:
    """A fresh key of tenant B with these scopes, minted by the operator, exchanged for a token."""
    with world.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        created = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=world.b.tenant_id, name="role",
                                                                 scopes=scopes),
                                    metadata=bearer(world.operator), timeout=10)
        return auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=created.secret), timeout=10).access_token


@pytest.fixture(scope="module")
def b_admin(world: World) -> str:
    return _role_token(world, ["admin"])


@pytest.fixture(scope="module")
def b_reader(world: World) -> str:
    return _role_token(world, ["videos:read"])


def _auth(channel: grpc.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(channel)


def _register(w: World, c: grpc.Channel, m: list[tuple[str, str]], tenant: str) -> Any:
    return metadata_pb2_grpc.MetadataServiceStub(c).RegisterVideo(metadata_pb2.RegisterVideoRequest(
        video_id="vid_" + "a" * 20, job_id="job_" + "a" * 20, tenant_id=tenant, title="planted",
        filename="planted.mp4", size_bytes=1000, source_key=f"videos/{tenant}/vid_{'a' * 20}/source.mp4",
        probe=common_pb2.MediaProbe(width=320, height=240, duration_seconds=1.0)), metadata=m, timeout=10)


ADMIN_ATTACKS: dict[str, Callable[[World, grpc.Channel, list[tuple[str, str]]], Any]] = {
    "create a tenant": lambda w, c, m: _auth(c).CreateTenant(auth_pb2.CreateTenantRequest(name="rogue"), metadata=m,
                                                              timeout=10),
    "mint a service key": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id=w.b.tenant_id, name="svc", scopes=["service"]), metadata=m, timeout=10),
    "mint an operator key": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id=w.b.tenant_id, name="op", scopes=["operator"]), metadata=m, timeout=10),
    "mint a key in the platform tenant": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id="platform", name="op"), metadata=m, timeout=10),
    "mint a key in the system tenant": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id="system", name="svc", scopes=["service"]), metadata=m, timeout=10),
    "list the operator's keys": lambda w, c, m: _auth(c).ListApiKeys(
        auth_pb2.ListApiKeysRequest(tenant_id="platform"), metadata=m, timeout=10),
    "plant a video in A with RegisterVideo": lambda w, c, m: _register(w, c, m, w.a.tenant_id),
    "plant a video in its own tenant with RegisterVideo": lambda w, c, m: _register(w, c, m, w.b.tenant_id),
}


@pytest.mark.parametrize("attack", ADMIN_ATTACKS.values(), ids=ADMIN_ATTACKS.keys())
def test_tenant_admin_cannot_act_as_operator_or_service(attack, world: World, b_admin: str) -> None:  # type: ignore[no-untyped-def]
    assert world.grpc_call(lambda channel: attack(world, channel, bearer(b_admin))) in REFUSED


@pytest.mark.parametrize("attack", ADMIN_ATTACKS.values(), ids=ADMIN_ATTACKS.keys())
def test_read_only_key_cannot_act_as_operator_or_service(attack, world: World, b_reader: str) -> None:  # type: ignore[no-untyped-def]
    assert world.grpc_call(lambda channel: attack(world, channel, bearer(b_reader))) in REFUSED


READER_ATTACKS: dict[str, Callable[[World, grpc.Channel, list[tuple[str, str]]], Any]] = {
    "mint itself a write key": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id=w.b.tenant_id, name="upgrade", scopes=["videos:write"]), metadata=m,
        timeout=10),
    "mint itself an admin key": lambda w, c, m: _auth(c).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(tenant_id=w.b.tenant_id, name="upgrade", scopes=["admin"]), metadata=m,
        timeout=10),
    "revoke its tenant's admin key": lambda w, c, m: _auth(c).RevokeApiKey(
        auth_pb2.RevokeApiKeyRequest(tenant_id=w.b.tenant_id, key_id=w.b.key_id), metadata=m, timeout=10),
    "delete a video": lambda w, c, m: metadata_pb2_grpc.MetadataServiceStub(c).DeleteVideo(
        metadata_pb2.DeleteVideoRequest(video_id="vid_" + "b" * 20), metadata=m, timeout=10),
}


@pytest.mark.parametrize("attack", READER_ATTACKS.values(), ids=READER_ATTACKS.keys())
def test_read_only_key_cannot_write_or_escalate(attack, world: World, b_reader: str) -> None:  # type: ignore[no-untyped-def]
    assert world.grpc_call(lambda channel: attack(world, channel, bearer(b_reader))) in REFUSED


REST_ATTACKS = {
    "create a tenant": ("POST", "/v1/tenants", {"json": {"name": "rogue-rest"}}),
    "mint a service key": ("POST", "/v1/tenants/{b}/api-keys", {"json": {"name": "svc", "scopes": ["service"]}}),
    "mint an operator key": ("POST", "/v1/tenants/{b}/api-keys", {"json": {"name": "op", "scopes": ["operator"]}}),
    "mint a key in A": ("POST", "/v1/tenants/{a}/api-keys", {"json": {"name": "x"}}),
    "list the platform's keys": ("GET", "/v1/tenants/platform/api-keys", {}),
}


@pytest.mark.parametrize("attack", REST_ATTACKS.values(), ids=REST_ATTACKS.keys())
def test_tenant_admin_escalation_over_rest(attack, world: World, b_admin: str) -> None:  # type: ignore[no-untyped-def]
    method, path, extra = attack
    with world.rest() as rest:
        reply = rest.request(method, path.format(a=world.a.tenant_id, b=world.b.tenant_id),
                             headers={"authorization": f"Bearer {b_admin}"}, **extra)
    assert reply.status_code in {400, 403, 404}, reply.text
