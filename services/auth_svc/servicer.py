"""The gRPC face of the auth service: parse, keep the caller to the tenants it
may manage, call the domain, build the reply (who may call each RPC at all is
services/shared/access_policy.py). Errors are domain exceptions, mapped once by
ErrorMappingInterceptor."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services.auth_svc.access import grantable_scopes, managed_tenant
from services.auth_svc.api_keys import key_name
from services.auth_svc.directory import TenantDirectory
from services.auth_svc.key_set import PublishedKeySet
from services.auth_svc.rate_limits import IssueTokenLimits
from services.auth_svc.revocations import RevocationBroadcast
from services.auth_svc.signing_keys import SigningKeyring
from services.auth_svc.tenants import tenant_name
from services.auth_svc.timestamps import to_timestamp
from services.auth_svc.token_issuer import TokenIssuer
from services.shared.errors import Unauthenticated
from services.shared.ids import require_id, require_tenant_id
from services.shared.logs import bind
from services.shared.principal import current_principal
from services.shared.validation import bounded_list
from vtc.v1 import auth_pb2, auth_pb2_grpc

MAX_SCOPES = 8
MAX_SCOPE_CHARS = 32


def _named_tenant(tenant_id: str) -> str:
    """The tenant_id a request names: empty (the caller's own) or a well-formed id."""
    return require_tenant_id(tenant_id) if tenant_id else tenant_id


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, directory: TenantDirectory, keyring: SigningKeyring, issuer: TokenIssuer,
                 revocations: RevocationBroadcast, *, key_set: PublishedKeySet,
                 issue_limits: IssueTokenLimits) -> None:
        self._directory = directory
        self._keyring = keyring
        self._issuer = issuer
        self._revocations = revocations
        self._key_set = key_set
        self._issue_limits = issue_limits

    async def IssueToken(self, request: auth_pb2.IssueTokenRequest,
                         context: grpc.aio.ServicerContext) -> auth_pb2.IssueTokenResponse:
        self._issue_limits.admit_peer(context.peer())
        if not request.api_key.strip():
            raise Unauthenticated("an API key is required")
        key = await self._directory.authenticate(request.api_key)
        bind(tenant=key.tenant_id)
        self._issue_limits.admit_key(key.key_id)
        await self._keyring.refresh()  # a key rotated in by another process signs from now on
        token = self._issuer.issue(key)
        return auth_pb2.IssueTokenResponse(
            access_token=token.token, token_type="Bearer", expires_in=token.lifetime_seconds,
            expires_at=to_timestamp(token.expires_at), tenant_id=key.tenant_id, scopes=list(key.scopes))

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: grpc.aio.ServicerContext) -> auth_pb2.Jwks:
        return await self._key_set.to_proto()

    async def CreateTenant(self, request: auth_pb2.CreateTenantRequest,
                           context: grpc.aio.ServicerContext) -> auth_pb2.Tenant:
        tenant = await self._directory.create_tenant(tenant_name(request.name), datetime.now(UTC))
        bind(tenant=tenant.tenant_id)
        return tenant.to_proto()

    async def CreateApiKey(self, request: auth_pb2.CreateApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> auth_pb2.CreateApiKeyResponse:
        tenant_id = managed_tenant(current_principal(), _named_tenant(request.tenant_id))
        scopes = grantable_scopes(tenant_id, bounded_list(request.scopes, "scopes", max_items=MAX_SCOPES,
                                                           max_chars=MAX_SCOPE_CHARS))
        key, minted = await self._directory.create_api_key(tenant_id, key_name(request.name), scopes,
                                                           datetime.now(UTC))
        return auth_pb2.CreateApiKeyResponse(key=key.to_proto(), secret=minted.text)

    async def ListApiKeys(self, request: auth_pb2.ListApiKeysRequest,
                          context: grpc.aio.ServicerContext) -> auth_pb2.ListApiKeysResponse:
        tenant_id = managed_tenant(current_principal(), _named_tenant(request.tenant_id))
        keys = await self._directory.list_api_keys(tenant_id)
        return auth_pb2.ListApiKeysResponse(keys=[key.to_proto() for key in keys])

    async def RevokeApiKey(self, request: auth_pb2.RevokeApiKeyRequest,
                           context: grpc.aio.ServicerContext) -> auth_pb2.ApiKey:
        tenant_id = managed_tenant(current_principal(), _named_tenant(request.tenant_id))
        require_id(request.key_id, "key", "key_id")
        key = await self._directory.revoke_api_key(tenant_id, request.key_id, datetime.now(UTC))
        await self._revocations.announce(key)
        return key.to_proto()
