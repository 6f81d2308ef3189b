"""What ends a token, against a real auth service on port 0 (and other real
services where one is the point): a deleted signing key ends the tokens it
signed, within the verifiers' refresh interval and within moments when the
auth service announces it on the bus; a revocation outlives restarts, because
the revocation list travels with the key set; a token claiming a longer life
than the issuer grants is refused; a service whose cached token a peer
refuses gets a new one instead of failing every upload."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlparse

import grpc
import jwt
import pytest

from services.auth_svc.rotate import announce
from services.auth_svc.server import AuthComponent
from services.auth_svc.settings import Settings as AuthSettings
from services.auth_svc.signing_keys import SigningKey, load_signing_keys, rotate_signing_key
from services.metadata_svc.server import create_server as create_metadata_server
from services.metadata_svc.settings import Settings as MetadataSettings
from services.shared.bus import Delivery
from services.shared.bus.amqp import RabbitMqBus
from services.shared.bus.contract import SIGNING_KEYS_CHANGED
from services.shared.errors import Unauthenticated
from services.shared.server import OwnedResources, start_server
from services.shared.tokens import AUDIENCE, ISSUER, TokenVerifier, grpc_jwks_source
from tests.buses import AMQP_URL, delete_namespace
from tests.buses import test_namespace as private_namespace  # not a test itself
from tests.conftest import require_service
from tests.integration.test_auth_service import (  # noqa: F401  (database_url is a fixture)
    TTL_SECONDS,
    Auth,
    bearer,
    database_url,
    rpc_error,
    start_auth,
)
from vtc.v1 import auth_pb2, events_pb2, metadata_pb2, metadata_pb2_grpc


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[Auth]:
    # Announcements of key changes every 0.1 s; the service's own verifier refreshes only every 30 s.
    service = await start_auth(tmp_path / "data", "", auth_signing_key_poll_seconds=0.1)
    try:
        yield service
    finally:
        await service.stop()


def stolen(auth: Auth) -> SigningKey:
    """The signing key now in use, as someone who copied its file holds it."""
    [key] = [k for k in load_signing_keys(auth.settings.resolved_signing_key_dir)
             if k.kid == auth.component.keyring.current().kid]
    return key


async def forge(auth: Auth, key: SigningKey, scopes: Iterable[str] = ("admin", "videos:read", "videos:write"),
                lifetime_seconds: int = TTL_SECONDS) -> str:
    """A token for the bootstrap admin key minted with `key`, as its thief would."""
    admin = await auth.component.directory.authenticate(auth.admin_key())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": admin.key_id, "tenant": admin.tenant_id,
              "scope": " ".join(scopes), "iat": now, "exp": now + lifetime_seconds}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


async def retire_and_delete(auth: Auth, key: SigningKey) -> None:
    """Rotation, then the retired key's file deleted (as after a leak)."""
    rotate_signing_key(auth.settings.resolved_signing_key_dir)
    os.unlink(key.path)


async def list_keys(auth: Auth, token: str) -> auth_pb2.ListApiKeysResponse:
    return await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(token), timeout=10)


async def refused_within(seconds: float, call) -> float:  # type: ignore[no-untyped-def]
    """How long until `call()` answers UNAUTHENTICATED (failing after `seconds`)."""
    started = time.monotonic()
    while True:
        try:
            await call()
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"still accepted after {seconds} s")
        await asyncio.sleep(0.05)


# --- signing keys --------------------------------------------------------------------------------

async def test_a_deleted_keys_tokens_are_refused_within_the_refresh_interval(auth: Auth) -> None:
    """No bus here: the verifier's periodic refresh alone retires the key."""
    verifier = TokenVerifier(grpc_jwks_source(auth.channel), refresh_seconds=1.0)
    key = stolen(auth)
    assert (await verifier.verify(await forge(auth, key))).tenant_id == "default", "the key is trusted so far"

    await retire_and_delete(auth, key)
    await asyncio.sleep(1.1)

    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(await forge(auth, key))
    genuine = (await auth.token(auth.admin_key())).access_token
    assert (await verifier.verify(genuine)).tenant_id == "default", "the new key's tokens verify"


async def test_the_auth_service_announces_a_deleted_key_and_its_tokens_are_refused_at_once(auth: Auth) -> None:
    key = stolen(auth)
    forged = await forge(auth, key)
    assert (await list_keys(auth, forged)).keys, "the server's verifier trusts the key so far"

    await retire_and_delete(auth, key)
    # The server's verifier refreshes only every 30 s: the announcement is what retires the key.
    waited = await refused_within(5.0, lambda: list_keys(auth, forged))

    assert waited < 2.0
    error = await rpc_error(list_keys(auth, await forge(auth, key)))
    assert error.details() == "token signed with an unknown key"
    assert (await list_keys(auth, (await auth.token(auth.admin_key())).access_token)).keys


async def test_after_a_rotation_no_service_refuses_a_token_for_naming_a_key_it_has_not_fetched_yet(
        tmp_path: Path) -> None:
    """A new key signs only once every verifier has had time to fetch it."""
    auth = await start_auth(tmp_path / "data", "", auth_signing_key_activation_seconds=1.0)
    try:
        # A service's verifier with no bus: a 0.5 s refresh, unknown kids fetched at most every 5 s.
        verifier = TokenVerifier(grpc_jwks_source(auth.channel), refresh_seconds=0.5)
        await verifier.verify((await auth.token(auth.admin_key())).access_token)
        new_key = rotate_signing_key(auth.settings.resolved_signing_key_dir)

        kids = []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            token = (await auth.token(auth.admin_key())).access_token
            kids.append(jwt.get_unverified_header(token)["kid"])
            assert (await verifier.verify(token)).tenant_id == "default"
            await asyncio.sleep(0.1)
        assert kids[0] != new_key.kid and kids[-1] == new_key.kid, "the new key took over meanwhile"
    finally:
        await auth.stop()


async def test_a_token_claiming_a_longer_life_than_the_issuer_grants_is_refused(auth: Auth) -> None:
    months = await forge(auth, stolen(auth), lifetime_seconds=90 * 86_400)

    error = await rpc_error(list_keys(auth, months))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"invalid token: it claims to live longer than the {TTL_SECONDS} s the issuer grants"
    jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=10)
    assert jwks.max_token_lifetime_seconds == TTL_SECONDS
    assert (await list_keys(auth, await forge(auth, stolen(auth)))).keys, "a token of the usual lifetime passes"


# --- revocations ---------------------------------------------------------------------------------

async def test_a_revocation_outlives_a_restart_of_the_auth_service_and_reaches_new_verifiers(
        tmp_path: Path, database_url: str) -> None:  # noqa: F811
    data_dir = tmp_path / "data"
    first = await start_auth(data_dir, database_url)
    try:
        tenant_id, key = await first.tenant_with_key("Revoked Before Restart")
        live = (await first.token(key.secret)).access_token
        await first.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=key.key.key_id),
                                      metadata=await first.as_operator(), timeout=10)
    finally:
        await first.stop()

    second = await start_auth(data_dir, database_url)
    try:
        error = await rpc_error(list_keys(second, live))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == "this token's API key was revoked"
        # A verifier that never heard the broadcast, as in any service started now.
        fresh = TokenVerifier(grpc_jwks_source(second.channel))
        with pytest.raises(Unauthenticated, match="revoked"):
            await fresh.verify(live)
        jwks = await second.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=10)
        assert [r.key_id for r in jwks.revoked] == [key.key.key_id]
        # Once no token it issued can be alive, the revocation leaves the list.
        revoked_at = jwks.revoked[0].revoked_at.ToDatetime(tzinfo=UTC)
        later = await second.component.key_set.jwks(now=revoked_at + timedelta(seconds=TTL_SECONDS + 61))
        assert later["revoked"] == []
    finally:
        await second.stop()


async def test_a_service_started_after_a_revocation_refuses_the_keys_tokens(auth: Auth, tmp_path: Path) -> None:
    tenant_id, revoked_key = await auth.tenant_with_key("Revoked Co")
    _, kept_key = await auth.tenant_with_key("Kept Co")
    revoked_token = (await auth.token(revoked_key.secret)).access_token
    kept_token = (await auth.token(kept_key.secret)).access_token
    await auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=revoked_key.key.key_id),
                                 metadata=await auth.as_operator(), timeout=10)

    # The metadata service starts now, on a bus of its own: it never hears the broadcast.
    metadata = await create_metadata_server(MetadataSettings(
        data_dir=tmp_path / "metadata", grpc_port=0, auth_addr=f"127.0.0.1:{auth.running.port}",
        bus_url="memory://"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{metadata.port}") as channel:
            videos = metadata_pb2_grpc.MetadataServiceStub(channel)
            error = await rpc_error(videos.ListVideos(metadata_pb2.ListVideosRequest(),
                                                      metadata=bearer(revoked_token), timeout=10))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.details() == "this token's API key was revoked"
            await videos.ListVideos(metadata_pb2.ListVideosRequest(), metadata=bearer(kept_token), timeout=10)
    finally:
        await metadata.stop(0)


# --- across processes, over RabbitMQ -------------------------------------------------------------

@pytest.mark.rabbitmq
async def test_over_rabbitmq_another_services_verifier_drops_a_deleted_key_and_a_revoked_key_at_once(
        tmp_path: Path) -> None:
    parsed = urlparse(AMQP_URL)
    require_service("RabbitMQ", parsed.hostname or "127.0.0.1", parsed.port or 5672)
    namespace = private_namespace()  # this test's own
    auth_bus, service_bus = RabbitMqBus(AMQP_URL, namespace=namespace), RabbitMqBus(AMQP_URL, namespace=namespace)
    settings = AuthSettings(data_dir=tmp_path / "data", grpc_port=0, auth_token_ttl_seconds=TTL_SECONDS,
                            auth_signing_key_poll_seconds=0.1)
    component = AuthComponent(settings, auth_bus)
    running = await start_server([OwnedResources(auth_bus), component], TokenVerifier(component.local_jwks),
                                 "127.0.0.1", 0, revocations=auth_bus)
    auth = Auth(running, settings, grpc.aio.insecure_channel(f"127.0.0.1:{running.port}"))
    try:
        # Another service's verifier: its own connection, default 30 s refresh, following the bus.
        await service_bus.start()
        verifier = TokenVerifier(grpc_jwks_source(auth.channel))
        await verifier.follow(service_bus)

        key = stolen(auth)
        forged = await forge(auth, key)
        tenant_id, tenant_key = await auth.tenant_with_key("Broadcast Co")
        tenant_token = (await auth.token(tenant_key.secret)).access_token
        await verifier.verify(forged)
        await verifier.verify(tenant_token)

        await auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=tenant_key.key.key_id),
                                     metadata=await auth.as_operator(), timeout=10)
        await retire_and_delete(auth, key)

        async def refused(token: str) -> float:
            started = time.monotonic()
            while time.monotonic() - started < 5.0:
                try:
                    await verifier.verify(token)
                except Unauthenticated:
                    return time.monotonic() - started
                await asyncio.sleep(0.05)
            raise AssertionError("still accepted after 5 s")

        assert await refused(forged) < 2.0
        assert await refused(tenant_token) < 2.0
    finally:
        await auth.stop()
        await service_bus.close()
        await delete_namespace(AMQP_URL, namespace, [])


@pytest.mark.rabbitmq
async def test_the_rotate_command_announces_its_new_key_on_the_broker(tmp_path: Path) -> None:
    parsed = urlparse(AMQP_URL)
    require_service("RabbitMQ", parsed.hostname or "127.0.0.1", parsed.port or 5672)
    namespace = private_namespace()  # this test's own
    listener = RabbitMqBus(AMQP_URL, namespace=namespace)
    heard: asyncio.Queue[events_pb2.SigningKeysChanged] = asyncio.Queue()

    async def on_event(delivery: Delivery) -> None:
        heard.put_nowait(delivery.decode())

    settings = AuthSettings(data_dir=tmp_path / "data", bus_url=AMQP_URL)
    try:
        await listener.start()
        await listener.consume_broadcast([SIGNING_KEYS_CHANGED], on_event)
        first = rotate_signing_key(settings.resolved_signing_key_dir)
        second = rotate_signing_key(settings.resolved_signing_key_dir)

        assert await announce(settings, RabbitMqBus(AMQP_URL, namespace=namespace))

        event = await asyncio.wait_for(heard.get(), 10)
        assert list(event.kids) == [second.kid, first.kid]
        assert not await announce(settings.model_copy(update={"bus_url": "memory://"})), "nobody would hear it"
    finally:
        await listener.close()
        await delete_namespace(AMQP_URL, namespace, [])
