"""Roles and tenant boundaries against the whole service (auth, metadata,
process and upload on one real gRPC server, as the all-in-one assembles them):
a tenant admin stays inside its tenant, operator and service identities come
only from the bootstrap, and every RPC answers every role as the access policy
(services/shared/access_policy.py, docs/auth.md) says."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio

from services.auth_svc.server import AuthComponent
from services.shared.access_policy import ACCESS_POLICY
from services.shared.ids import new_id
from services.shared.logs import JsonFormatter
from services.shared.principal import Role
from services.shared.storage.keys import source_key
from tests.integration.test_upload_grpc import Stack, bearer, start_stack, upload
from tests.media import make_clip
from vtc.v1 import auth_pb2, auth_pb2_grpc, metadata_pb2, process_pb2, upload_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN_SCOPES = ["admin", "videos:read", "videos:write"]
SERVICES = {service.full_name: service for module in (auth_pb2, metadata_pb2, process_pb2, upload_pb2)
            for service in module.DESCRIPTOR.services_by_name.values()}


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    key: auth_pb2.ApiKey
    secret: str
    token: str

    @property
    def as_me(self) -> list[tuple[str, str]]:
        return bearer(self.token)


@dataclass(frozen=True)
class World:
    stack: Stack
    operator: list[tuple[str, str]]
    a: Tenant  # the victim: has a video
    b: Tenant  # the attacker: an admin of its own tenant
    video_id: str  # tenant A's

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.stack.channel)

    async def key_of(self, tenant_id: str, name: str, scopes: list[str]) -> Tenant:
        return await key_made_by_operator(self.stack, self.operator, tenant_id, name, scopes)

    async def token(self, api_key: str) -> str:
        return await token_for(self.stack, api_key)

    async def keys_of_a(self) -> set[str]:
        listed = await self.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=self.a.tenant_id),
                                             metadata=self.operator, timeout=10)
        return {key.key_id for key in listed.keys}

    async def video_ids_of_a(self) -> set[str]:
        reply = await self.stack.metadata.ListVideos(metadata_pb2.ListVideosRequest(page_size=500),
                                                     metadata=self.a.as_me, timeout=10)
        return {video.video_id for video in reply.videos}

    async def legacy_key_in_b(self, scope: str) -> str:
        """A token of a key in tenant B holding `scope`, written straight into the
        auth DB: what a tenant admin could mint before the roles were split."""
        [auth] = [c for c in self.stack.server.components if isinstance(c, AuthComponent)]
        _, minted = await auth.directory.create_api_key(self.b.tenant_id, f"legacy {scope}", [scope],
                                                        datetime.now(UTC))
        return await self.token(minted.text)


async def token_for(stack: Stack, api_key: str) -> str:
    reply = await auth_pb2_grpc.AuthServiceStub(stack.channel).IssueToken(
        auth_pb2.IssueTokenRequest(api_key=api_key), timeout=10)
    return reply.access_token


async def key_made_by_operator(stack: Stack, operator: list[tuple[str, str]], tenant_id: str, name: str,
                               scopes: list[str]) -> Tenant:
    created = await auth_pb2_grpc.AuthServiceStub(stack.channel).CreateApiKey(auth_pb2.CreateApiKeyRequest(
        tenant_id=tenant_id, name=name, scopes=scopes), metadata=operator, timeout=10)
    return Tenant(tenant_id, created.key, created.secret, await token_for(stack, created.secret))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("tenant-boundaries")
    stack = await start_stack(data_dir)
    try:
        operator = bearer(await stack.bootstrap_token("operator.key"))
        auth = auth_pb2_grpc.AuthServiceStub(stack.channel)
        tenants = []
        for name in ("Studio A", "Studio B"):
            tenant = await auth.CreateTenant(auth_pb2.CreateTenantRequest(name=name), metadata=operator, timeout=10)
            tenants.append(await key_made_by_operator(stack, operator, tenant.tenant_id, f"{name} admin",
                                                      ADMIN_SCOPES))
        a, b = tenants
        clip = make_clip(data_dir / "unreleased.mp4", seconds=1.0, width=320, height=180)
        uploaded = await upload(stack, a.token, clip, title="unreleased")
        yield World(stack, operator, a, b, uploaded.video_id)
    finally:
        await stack.stop()


async def rpc_error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# --- tenant B's admin attacks tenant A -----------------------------------------------------------

async def test_a_tenant_admin_cannot_list_another_tenants_keys(world: World) -> None:
    error = await rpc_error(world.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=world.a.tenant_id),
                                                   metadata=world.b.as_me))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == f"tenant {world.a.tenant_id!r} not found"  # as for a tenant that does not exist


async def test_a_tenant_admin_cannot_revoke_another_tenants_keys(world: World) -> None:
    for tenant_id in (world.a.tenant_id, ""):  # naming A, or passing A's key id as if it were B's
        error = await rpc_error(world.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(
            tenant_id=tenant_id, key_id=world.a.key.key_id), metadata=world.b.as_me))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await world.token(world.a.secret), "A's admin key still works"


async def test_a_tenant_admin_cannot_mint_keys_in_another_tenant(world: World) -> None:
    before = await world.keys_of_a()
    error = await rpc_error(world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
        tenant_id=world.a.tenant_id, name="backdoor", scopes=["videos:read"]), metadata=world.b.as_me))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await world.keys_of_a() == before


async def test_a_tenant_admin_cannot_read_another_tenants_videos(world: World) -> None:
    async def title_read_with(metadata: list[tuple[str, str]]) -> str | None:
        try:
            video = await world.stack.metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=world.video_id),
                                                        metadata=metadata)
        except grpc.aio.AioRpcError as error:
            assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
            return None
        return video.title

    async def keys_minted_in_a() -> list[list[tuple[str, str]]]:
        try:
            minted = await world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
                tenant_id=world.a.tenant_id, name="peek", scopes=["videos:read"]), metadata=world.b.as_me)
        except grpc.aio.AioRpcError:
            return []  # this route is closed
        return [bearer(await world.token(minted.secret))]

    # B's own token, and a key B mints for itself inside A.
    for route in [world.b.as_me, *await keys_minted_in_a()]:
        assert await title_read_with(route) is None
    listed = await world.stack.metadata.ListVideos(metadata_pb2.ListVideosRequest(), metadata=world.b.as_me)
    assert world.video_id not in {video.video_id for video in listed.videos}
    assert await title_read_with(world.a.as_me) == "unreleased"


@pytest.mark.parametrize("scope", ["service", "operator"])
async def test_a_tenant_admin_cannot_mint_service_or_operator_keys(world: World, scope: str) -> None:
    error = await rpc_error(world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="escalate", scopes=[scope]),
                                                    metadata=world.b.as_me))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (f"the '{scope}' scope is given only by the bootstrap; "
                               "API keys may hold admin, videos:read, videos:write")
    for platform_tenant in ("system", "platform"):  # nor by naming the platform's own tenants
        error = await rpc_error(world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            tenant_id=platform_tenant, name="escalate", scopes=[scope]), metadata=world.b.as_me))
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_tenant_admin_cannot_plant_videos_in_another_tenant(world: World) -> None:
    before = await world.video_ids_of_a()
    video_id = new_id("vid")
    plant = metadata_pb2.RegisterVideoRequest(
        video_id=video_id, job_id=new_id("job"), tenant_id=world.a.tenant_id, title="planted",
        filename="planted.mp4", source_key=source_key(world.a.tenant_id, video_id, "planted.mp4"))

    as_admin = await rpc_error(world.stack.metadata.RegisterVideo(plant, metadata=world.b.as_me))
    assert as_admin.code() == grpc.StatusCode.PERMISSION_DENIED
    # A service key minted into tenant B before the fix is worth nothing now.
    legacy = await world.legacy_key_in_b("service")
    as_legacy = await rpc_error(world.stack.metadata.RegisterVideo(plant, metadata=bearer(legacy)))
    assert as_legacy.code() == grpc.StatusCode.PERMISSION_DENIED
    assert as_legacy.details() == ("RegisterVideo needs the 'service' scope; this token has no role "
                                   "('service' counts only in the 'system' tenant)")
    assert await world.video_ids_of_a() == before


async def test_an_operator_scope_outside_the_platform_tenant_is_worth_nothing(world: World) -> None:
    legacy = bearer(await world.legacy_key_in_b("operator"))
    error = await rpc_error(world.auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Rogue"), metadata=legacy))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'operator' counts only in the 'platform' tenant" in error.details()
    listed = await rpc_error(world.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=world.a.tenant_id),
                                                    metadata=legacy))
    assert listed.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_tenant_admin_cannot_create_tenants(world: World) -> None:
    error = await rpc_error(world.auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Mine"),
                                                    metadata=world.b.as_me))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == ("CreateTenant needs the 'operator' scope; "
                               "this token has 'admin', 'videos:read', 'videos:write'")


async def test_a_refused_call_is_logged_with_the_tenant_that_tried(world: World) -> None:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("vtc.rpc")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await rpc_error(world.auth.CreateTenant(auth_pb2.CreateTenantRequest(name="Mine"), metadata=world.b.as_me))
        # The server writes its line as the call ends, which may be just after the client has its answer.
        for _ in range(100):
            if "/vtc.v1.AuthService/CreateTenant" in lines.getvalue():
                break
            await asyncio.sleep(0.05)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    [refused] = [json.loads(line) for line in lines.getvalue().splitlines()
                 if json.loads(line).get("method") == "/vtc.v1.AuthService/CreateTenant"]
    assert refused["code"] == "PERMISSION_DENIED" and refused["tenant"] == world.b.tenant_id


# --- what each role may do ----------------------------------------------------------------------

async def test_a_tenant_admin_manages_its_own_keys(world: World) -> None:
    reader = await world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="dashboards", scopes=["videos:read"]),
                                           metadata=world.b.as_me)
    assert reader.key.tenant_id == world.b.tenant_id and list(reader.key.scopes) == ["videos:read"]
    second_admin = await world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="deputy", scopes=["admin"]),
                                                 metadata=world.b.as_me)
    listed = await world.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=world.b.as_me)
    assert {reader.key.key_id, second_admin.key.key_id, world.b.key.key_id} <= {k.key_id for k in listed.keys}
    assert all(key.tenant_id == world.b.tenant_id for key in listed.keys)
    revoked = await world.auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=reader.key.key_id),
                                            metadata=world.b.as_me)
    assert revoked.HasField("revoked_at")


async def test_keys_without_admin_manage_no_keys(world: World) -> None:
    writer = await world.key_of(world.b.tenant_id, "ingest", ["videos:read", "videos:write"])
    error = await rpc_error(world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="more"),
                                                    metadata=writer.as_me))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == ("CreateApiKey needs the 'admin' or 'operator' scope; "
                               "this token has 'videos:read', 'videos:write'")


async def test_the_operator_manages_every_tenant_and_reads_no_videos(world: World) -> None:
    assert world.a.key.key_id in await world.keys_of_a()
    error = await rpc_error(world.stack.metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=world.video_id),
                                                          metadata=world.operator))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "GetVideo needs the 'admin' or 'videos:read' scope; this token has 'operator'"


async def test_the_operator_cannot_mint_platform_identities(world: World) -> None:
    for scopes, tenant_id in ((["service"], world.a.tenant_id), (["operator"], world.a.tenant_id),
                              (["videos:read"], "system"), (["videos:read"], "platform")):
        error = await rpc_error(world.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            tenant_id=tenant_id, name="more", scopes=scopes), metadata=world.operator))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (scopes, tenant_id)


# --- the whole RPC × role matrix, live ----------------------------------------------------------

def _call(stack: Stack, method: str):  # type: ignore[no-untyped-def]
    """A callable for `method` taking an empty request, whatever its streaming shape."""
    from google.protobuf import message_factory

    service_name, method_name = method.strip("/").split("/")
    descriptor = SERVICES[service_name].methods_by_name[method_name]
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    reply_class = message_factory.GetMessageClass(descriptor.output_type)
    shape = {(False, False): stack.channel.unary_unary, (False, True): stack.channel.unary_stream,
             (True, False): stack.channel.stream_unary, (True, True): stack.channel.stream_stream}[
        (descriptor.client_streaming, descriptor.server_streaming)]
    multicallable = shape(method, request_serializer=request_class.SerializeToString,
                          response_deserializer=reply_class.FromString)

    async def call(metadata: list[tuple[str, str]]) -> None:
        request = request_class()
        if descriptor.client_streaming:
            async def requests():  # type: ignore[no-untyped-def]
                yield request
            reply = multicallable(requests(), metadata=metadata, timeout=10)
        else:
            reply = multicallable(request, metadata=metadata, timeout=10)
        if descriptor.server_streaming:
            async for _ in reply:
                pass
        else:
            await reply

    return call


async def test_every_rpc_answers_each_role_as_the_policy_says(world: World) -> None:
    tenant = world.b.tenant_id
    tokens = {
        Role.VIDEOS_READ: (await world.key_of(tenant, "reader", ["videos:read"])).as_me,
        Role.VIDEOS_WRITE: (await world.key_of(tenant, "writer", ["videos:write"])).as_me,
        Role.ADMIN: (await world.key_of(tenant, "admin only", ["admin"])).as_me,
        Role.OPERATOR: world.operator,
        Role.SERVICE: bearer(await world.stack.bootstrap_token("service.key")),
    }
    mismatches = []
    for method, rule in ACCESS_POLICY.items():
        call = _call(world.stack, method)
        for role, metadata in tokens.items():
            try:
                await call(metadata)
                refused_by_policy = False
            except grpc.aio.AioRpcError as error:
                # The policy's refusals say what the call needs; anything else (a bad
                # empty request, a missing id) came from the handler, so the call got in.
                refused_by_policy = (error.code() == grpc.StatusCode.PERMISSION_DENIED
                                     and " needs the " in (error.details() or ""))
            if refused_by_policy == (rule.public or role in rule.roles):
                mismatches.append(f"{method} as {role}: {'refused' if refused_by_policy else 'let in'}")
    assert mismatches == []


async def test_public_rpcs_need_no_token_and_the_others_do(world: World) -> None:
    for method, rule in ACCESS_POLICY.items():
        try:
            await _call(world.stack, method)([])
            unauthenticated = False
        except grpc.aio.AioRpcError as error:
            unauthenticated = error.code() == grpc.StatusCode.UNAUTHENTICATED and "bearer" in (error.details() or "")
        assert unauthenticated != rule.public, method
