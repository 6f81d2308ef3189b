"""The auth service alone on a real gRPC server (port 0), as `python -m
services.auth_svc` runs it: bootstrap keys, tenants and API keys, tokens that
other services accept, and every way a call without a good token is turned
away. Each test runs on SQLite and, where it is reachable, on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.auth_svc.models import Base
from services.auth_svc.server import AuthComponent, create_server
from services.auth_svc.settings import Settings
from services.auth_svc.signing_keys import rotate_signing_key
from services.shared.db import create_engine
from services.shared.server import RunningServer
from services.shared.tokens import TokenVerifier, grpc_jwks_source
from tests.databases import private_postgres_database
from vtc.v1 import auth_pb2, auth_pb2_grpc

TTL_SECONDS = 600


# --- the database under the service -------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield ""  # the default: a SQLite file in data_dir
        return
    async with private_postgres_database("vtc_auth_test") as url:
        yield url


# --- the service ---------------------------------------------------------------------------------

def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@dataclass
class Auth:
    running: RunningServer
    settings: Settings
    channel: grpc.aio.Channel

    @property
    def component(self) -> AuthComponent:
        [component] = [c for c in self.running.components if isinstance(c, AuthComponent)]
        return component

    @property
    def stub(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.channel)

    @property
    def keys_dir(self) -> Path:
        return self.settings.data_dir / "keys"

    def admin_key(self) -> str:
        return (self.keys_dir / "admin.key").read_text().strip()

    def operator_key(self) -> str:
        return (self.keys_dir / "operator.key").read_text().strip()

    async def token(self, api_key: str) -> auth_pb2.IssueTokenResponse:
        return await self.stub.IssueToken(auth_pb2.IssueTokenRequest(api_key=api_key), timeout=10)

    async def as_admin(self) -> list[tuple[str, str]]:
        """The default tenant's admin (admin.key)."""
        return bearer((await self.token(self.admin_key())).access_token)

    async def as_operator(self) -> list[tuple[str, str]]:
        return bearer((await self.token(self.operator_key())).access_token)

    async def tenant_with_key(self, name: str,
                              scopes: tuple[str, ...] = ()) -> tuple[str, auth_pb2.CreateApiKeyResponse]:
        """A new tenant and one key of it (default scopes unless given), made by the operator."""
        operator = await self.as_operator()
        tenant = await self.stub.CreateTenant(auth_pb2.CreateTenantRequest(name=name), metadata=operator, timeout=10)
        created = await self.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(
            tenant_id=tenant.tenant_id, name=f"{name} uploads", scopes=list(scopes)), metadata=operator, timeout=10)
        return tenant.tenant_id, created

    async def as_key(self, api_key: str) -> list[tuple[str, str]]:
        return bearer((await self.token(api_key)).access_token)

    async def stop(self) -> None:
        await self.channel.close()
        await self.running.stop(0)


async def start_auth(data_dir: Path, database_url: str, **settings_overrides: object) -> Auth:
    settings = Settings(data_dir=data_dir, auth_database_url=database_url, grpc_port=0,
                        auth_token_ttl_seconds=TTL_SECONDS, **settings_overrides)
    running = await create_server(settings)
    return Auth(running, settings, grpc.aio.insecure_channel(f"127.0.0.1:{running.port}"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def auth(data_dir: Path, database_url: str) -> AsyncIterator[Auth]:
    service = await start_auth(data_dir, database_url)
    try:
        yield service
    finally:
        await service.stop()


async def rpc_error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# --- bootstrap -----------------------------------------------------------------------------------

async def test_first_start_writes_operator_admin_and_service_keys_only_their_owner_can_read(
        data_dir: Path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vtc")
    auth = await start_auth(data_dir, database_url)
    try:
        admin_file, service_file = auth.keys_dir / "admin.key", auth.keys_dir / "service.key"
        operator_file = auth.keys_dir / "operator.key"
        # The URL signing secret too: services mounting keys/ read-only sign playback URLs with it.
        url_signing_file = auth.keys_dir / "url-signing.key"
        for key_file in (admin_file, service_file, operator_file, url_signing_file):
            assert key_file.stat().st_mode & 0o777 == 0o600
        assert len(bytes.fromhex(url_signing_file.read_text())) == 32
        assert auth.keys_dir.stat().st_mode & 0o777 == 0o700

        admin = await auth.token(auth.admin_key())
        assert admin.token_type == "Bearer"
        assert admin.tenant_id == "default"
        assert list(admin.scopes) == ["admin", "videos:read", "videos:write"]
        assert admin.expires_in == TTL_SECONDS
        service = await auth.token(service_file.read_text().strip())
        assert service.tenant_id == "system" and list(service.scopes) == ["service"]
        operator = await auth.token(auth.operator_key())
        assert operator.tenant_id == "platform" and list(operator.scopes) == ["operator"]

        # The log says where the keys are, and never what they are.
        log_text = "\n".join(record.getMessage() for record in caplog.records)
        assert str(admin_file.resolve()) in log_text and str(operator_file.resolve()) in log_text
        for key_file in (admin_file, service_file, operator_file):
            assert key_file.read_text().strip() not in log_text
    finally:
        await auth.stop()


async def test_tokens_verify_in_other_services_against_the_published_jwks(auth: Auth) -> None:
    reply = await auth.token(auth.admin_key())
    # What metadata or upload do: fetch the JWKS over gRPC (no token needed) and verify locally.
    verifier = TokenVerifier(grpc_jwks_source(auth.channel))

    principal = await verifier.verify(reply.access_token)

    assert principal.tenant_id == "default" and "admin" in principal.scopes
    claims = jwt.decode(reply.access_token, options={"verify_signature": False})
    assert claims["sub"].startswith("key_") and auth.admin_key().startswith(f"vtc_{claims['sub']}_")
    assert claims["exp"] == reply.expires_at.seconds
    jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=10)
    assert [(k.kty, k.crv, k.alg, k.use) for k in jwks.keys] == [("OKP", "Ed25519", "EdDSA", "sig")]
    assert jwks.keys[0].kid == jwt.get_unverified_header(reply.access_token)["kid"]


# --- tenants and keys ----------------------------------------------------------------------------

async def test_a_new_tenant_gets_a_key_that_is_exchanged_for_a_token(auth: Auth) -> None:
    operator = await auth.as_operator()
    tenant = await auth.stub.CreateTenant(auth_pb2.CreateTenantRequest(name="  Acme Video  "), metadata=operator)
    assert tenant.tenant_id.startswith("ten_") and tenant.name == "Acme Video"

    created = await auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(
        tenant_id=tenant.tenant_id, name="ingest"), metadata=operator)
    assert created.secret.startswith(f"vtc_{created.key.key_id}_") and created.secret.startswith(created.key.prefix)
    assert list(created.key.scopes) == ["videos:read", "videos:write"]
    assert created.key.tenant_id == tenant.tenant_id and not created.key.HasField("revoked_at")

    reply = await auth.token(created.secret)
    assert reply.tenant_id == tenant.tenant_id
    assert list(reply.scopes) == ["videos:read", "videos:write"]

    # The listing shows the key, never its secret.
    listed = await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=tenant.tenant_id),
                                         metadata=operator)
    assert [key.key_id for key in listed.keys] == [created.key.key_id]
    assert created.secret not in str(listed)

    again = await rpc_error(auth.stub.CreateTenant(auth_pb2.CreateTenantRequest(name="Acme Video"),
                                                   metadata=operator))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS and "Acme Video" in again.details()


async def test_a_tenant_admin_manages_its_own_keys_and_hands_out_tenant_scopes_only(auth: Auth) -> None:
    tenant_id, admin = await auth.tenant_with_key("Admins Inc", scopes=("admin",))
    as_admin = await auth.as_key(admin.secret)

    reader = await auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="dashboards", scopes=["videos:read"]),
                                          metadata=as_admin)
    assert reader.key.tenant_id == tenant_id and list(reader.key.scopes) == ["videos:read"]
    deputy = await auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="deputy", scopes=["admin"]),
                                          metadata=as_admin)
    assert list(deputy.key.scopes) == ["admin"]
    for scope in ("service", "operator"):
        refused = await rpc_error(auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(scopes=[scope]),
                                                         metadata=as_admin))
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "only by the bootstrap" in refused.details()
    unknown = await rpc_error(auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(scopes=["root"]),
                                                     metadata=as_admin))
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown scope 'root'" in unknown.details()

    # Keys without `admin` manage no keys, not even to lock out their admin.
    as_reader = await auth.as_key(reader.secret)
    lockout = await rpc_error(auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=admin.key.key_id),
                                                     metadata=as_reader))
    assert lockout.code() == grpc.StatusCode.PERMISSION_DENIED
    more = await rpc_error(auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(), metadata=as_reader))
    assert more.code() == grpc.StatusCode.PERMISSION_DENIED

    keys = await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=as_admin)
    assert {key.key_id for key in keys.keys} == {admin.key.key_id, reader.key.key_id, deputy.key.key_id}


async def test_only_the_operator_creates_tenants(auth: Auth) -> None:
    _, key = await auth.tenant_with_key("Tenant Admin Wannabe", scopes=("admin",))

    for caller in (await auth.as_key(key.secret), await auth.as_admin()):
        denied = await rpc_error(auth.stub.CreateTenant(auth_pb2.CreateTenantRequest(name="Mine"), metadata=caller))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert denied.details().startswith("CreateTenant needs the 'operator' scope; this token has 'admin'")


async def test_tenant_b_cannot_see_or_touch_tenant_a_keys(auth: Auth) -> None:
    tenant_a, key_a = await auth.tenant_with_key("Tenant A")
    _, key_b = await auth.tenant_with_key("Tenant B", scopes=("admin",))
    as_b = await auth.as_key(key_b.secret)

    listed = await rpc_error(auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=tenant_a), metadata=as_b))
    revoked = await rpc_error(auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(
        tenant_id=tenant_a, key_id=key_a.key.key_id), metadata=as_b))
    created = await rpc_error(auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant_a),
                                                     metadata=as_b))
    # A's key named under B's own tenant: as unknown as any other id.
    own_tenant = await rpc_error(auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key_a.key.key_id),
                                                        metadata=as_b))
    missing = await rpc_error(auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id="ten_nobody"),
                                                    metadata=await auth.as_operator()))

    for error in (listed, revoked, created):
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == f"tenant {tenant_a!r} not found"  # the words used for a tenant that does not exist
    assert missing.code() == grpc.StatusCode.NOT_FOUND and missing.details() == "tenant 'ten_nobody' not found"
    assert own_tenant.code() == grpc.StatusCode.NOT_FOUND
    assert own_tenant.details() == f"API key {key_a.key.key_id!r} not found"
    assert (await auth.token(key_a.secret)).tenant_id == tenant_a, "A's key must still work"


# --- turned away ---------------------------------------------------------------------------------

async def test_revoked_key_gets_no_token_but_says_why(auth: Auth) -> None:
    tenant_id, key = await auth.tenant_with_key("Revokers")
    admin = await auth.as_operator()

    first = await auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=key.key.key_id),
                                         metadata=admin)
    error = await rpc_error(auth.token(key.secret))

    assert first.HasField("revoked_at")
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and error.details() == "this API key was revoked"
    again = await auth.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id=tenant_id, key_id=key.key.key_id),
                                         metadata=admin)
    assert again.revoked_at == first.revoked_at, "revoking twice keeps the first time"
    listed = await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id=tenant_id), metadata=admin)
    assert [k.revoked_at for k in listed.keys] == [first.revoked_at]


@pytest.mark.parametrize("api_key", ["", "garbage", "vtc_key_0123456789abcdef0123_" + "0" * 64])
async def test_unknown_or_malformed_keys_get_no_token(auth: Auth, api_key: str) -> None:
    error = await rpc_error(auth.token(api_key))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() in {"invalid API key", "an API key is required"}


async def test_a_real_key_id_with_a_wrong_secret_gets_no_token(auth: Auth) -> None:
    _, key = await auth.tenant_with_key("Guessers")
    guessed = f"vtc_{key.key.key_id}_{secrets.token_hex(32)}"

    error = await rpc_error(auth.token(guessed))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and error.details() == "invalid API key"


async def test_calls_without_a_good_token_are_unauthenticated(auth: Auth) -> None:
    admin_key = await auth.component.directory.authenticate(auth.admin_key())
    expired = auth.component.issuer.issue(admin_key, now=datetime.now(UTC) - timedelta(seconds=TTL_SECONDS + 60))
    genuine = (await auth.token(auth.admin_key())).access_token
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                        headers={"kid": jwt.get_unverified_header(genuine)["kid"]})
    request = auth_pb2.ListApiKeysRequest(tenant_id="default")

    cases = {
        "no token": (None, "missing bearer token"),
        "not a bearer token": ([("authorization", f"Basic {auth.admin_key()}")], "missing bearer token"),
        "malformed": (bearer("not.a.jwt"), "malformed token"),
        "expired": (bearer(expired.token), "token expired"),
        "bad signature": (bearer(forged), "Signature verification failed"),
    }
    for case, (metadata, message) in cases.items():
        error = await rpc_error(auth.stub.ListApiKeys(request, metadata=metadata, timeout=10))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, case
        assert message in error.details(), (case, error.details())
    assert (await auth.stub.ListApiKeys(request, metadata=bearer(genuine))).keys, "the genuine token still works"


# --- what is kept, and where ---------------------------------------------------------------------

async def test_the_secret_is_never_stored_in_plain_text(auth: Auth, data_dir: Path) -> None:
    _, key = await auth.tenant_with_key("Secretive")
    random_part = key.secret.rsplit("_", 1)[1]

    engine = create_engine(auth.settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM api_keys WHERE key_id = :id"),
                                             {"id": key.key.key_id})).mappings().all()
    finally:
        await engine.dispose()
    [row] = rows
    assert not any(random_part in str(value) for value in row.values())
    assert row["secret_hash"] != key.secret and len(row["secret_hash"]) == 64
    # Nor anywhere on disk: the DB file, its WAL, the key files.
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert random_part.encode() not in path.read_bytes(), path


async def test_the_migrated_schema_matches_the_models(auth: Auth) -> None:
    def differences(connection: Connection) -> list:  # type: ignore[type-arg]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    engine = create_engine(auth.settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    # Only Alembic's own version table may differ from the models.
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))] == []


async def test_restart_keeps_tenants_keys_and_signing_keys(data_dir: Path, database_url: str) -> None:
    first = await start_auth(data_dir, database_url)
    try:
        admin_key, operator_key = first.admin_key(), first.operator_key()
        tenant_id, key = await first.tenant_with_key("Persistent Co", scopes=("admin",))
        old_token = (await first.token(key.secret)).access_token
        old_jwks = await first.stub.GetJwks(auth_pb2.GetJwksRequest())
    finally:
        await first.stop()

    second = await start_auth(data_dir, database_url)
    try:
        assert second.admin_key() == admin_key, "a restart must not replace the bootstrap keys"
        assert second.operator_key() == operator_key
        assert (await second.token(key.secret)).tenant_id == tenant_id
        # A token from before the restart still opens doors: same signing keys.
        listed = await second.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(old_token))
        assert [k.key_id for k in listed.keys] == [key.key.key_id]
        assert await second.stub.GetJwks(auth_pb2.GetJwksRequest()) == old_jwks
        admin_keys = await second.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=await second.as_admin())
        assert len(admin_keys.keys) == 1, "bootstrap is idempotent: one admin key"
    finally:
        await second.stop()


async def test_restart_rewrites_missing_or_stale_key_files_but_respects_a_revocation(
        data_dir: Path, database_url: str) -> None:
    first = await start_auth(data_dir, database_url)
    try:
        admin_file, service_file = first.keys_dir / "admin.key", first.keys_dir / "service.key"
        old_admin_key = first.admin_key()
        old_service_key = service_file.read_text().strip()
        # The operator revokes the service key; the admin key file is lost.
        admin = await first.as_operator()
        [service_key] = (await first.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id="system"),
                                                      metadata=admin)).keys
        await first.stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(tenant_id="system", key_id=service_key.key_id),
                                      metadata=admin)
    finally:
        await first.stop()
    admin_file.unlink()

    second = await start_auth(data_dir, database_url)
    try:
        new_admin_key = second.admin_key()
        assert new_admin_key != old_admin_key and admin_file.stat().st_mode & 0o777 == 0o600
        assert (await second.token(new_admin_key)).tenant_id == "default"
        assert service_file.read_text().strip() == old_service_key, "a revoked key is not replaced behind our back"
        assert (await rpc_error(second.token(old_service_key))).details() == "this API key was revoked"
    finally:
        await second.stop()

    # A key file from another installation (its key unknown to this DB) is replaced.
    admin_file.write_text(f"vtc_key_{'0' * 20}_{'0' * 64}\n")
    third = await start_auth(data_dir, database_url)
    try:
        assert (await third.token(third.admin_key())).tenant_id == "default"
        assert admin_file.stat().st_mode & 0o777 == 0o600
    finally:
        await third.stop()


async def test_a_key_rotated_in_while_running_signs_and_old_tokens_stay_valid(data_dir: Path,
                                                                             database_url: str) -> None:
    auth = await start_auth(data_dir, database_url, auth_signing_key_activation_seconds=0.5)
    try:
        await _rotate_while_running(auth)
    finally:
        await auth.stop()


async def _rotate_while_running(auth: Auth) -> None:
    before = (await auth.token(auth.admin_key())).access_token
    verifier = TokenVerifier(grpc_jwks_source(auth.channel), min_refresh_seconds=0)
    await verifier.verify(before)

    new_key = rotate_signing_key(auth.settings.resolved_signing_key_dir)
    published = (await auth.token(auth.admin_key())).access_token
    await asyncio.sleep(0.6)  # published for auth_signing_key_activation_seconds: it signs now
    after = (await auth.token(auth.admin_key())).access_token

    assert jwt.get_unverified_header(published)["kid"] != new_key.kid, "published first, signing later"
    assert jwt.get_unverified_header(after)["kid"] == new_key.kid
    assert jwt.get_unverified_header(before)["kid"] != new_key.kid
    jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())
    assert [k.kid for k in jwks.keys] == [new_key.kid, jwt.get_unverified_header(before)["kid"]]
    for token in (before, after):
        assert (await verifier.verify(token)).tenant_id == "default"
        # And the service itself, whose verifier caches the key set, accepts both.
        assert (await auth.stub.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=bearer(token))).keys
