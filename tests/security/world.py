"""What the attacks run against: two tenants on a running stack, A with a
transcoded video, B the attacker; and how to call it over gRPC and REST."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.shared.tokens import AUDIENCE, ISSUER
from tests.calls import bearer, upload_requests
from tests.media import make_clip
from tests.stack import Stack
from vtc.v1 import auth_pb2, auth_pb2_grpc, common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

READ_WRITE = ("videos:read", "videos:write")


@dataclass
class Tenant:
    tenant_id: str
    key_id: str
    api_key: str
    token: str


@dataclass
class World:
    stack: Stack
    a: Tenant
    b: Tenant
    a_video_id: str
    a_job_id: str
    a_rendition: str
    media_dir: Path
    idle_timeout_seconds: float
    max_concurrent_uploads: int
    operator: str  # the bootstrap operator's token (issued once: IssueToken is rate-limited per key)

    def new_tenant(self, label: str) -> Tenant:
        with self.channel() as channel:
            return _tenant(auth_pb2_grpc.AuthServiceStub(channel), self.operator, label)

    def spool_files(self) -> list[Path]:
        spool = self.stack.data_dir / "tmp" / "uploads"
        return [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []

    # --- gRPC -------------------------------------------------------------------------------------

    def channel(self) -> grpc.Channel:
        return self.stack.channel()

    def grpc_call(self, call: Callable[[grpc.Channel], Any]) -> grpc.StatusCode:
        """Runs call on a fresh channel; the status it ended with (OK when it returned)."""
        with self.channel() as channel:
            try:
                result = call(channel)
                if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
                    list(result)  # drain a server stream: an error may come after the first message
            except grpc.RpcError as error:
                return error.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    # --- REST -------------------------------------------------------------------------------------

    def rest(self) -> httpx.Client:
        return httpx.Client(base_url=self.stack.rest_url, timeout=30)

    # --- tokens -----------------------------------------------------------------------------------

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The stack's real signing key (as an insider with disk access would have it), to forge tokens
        whose signature is valid but whose claims are not."""
        from services.auth_svc.signing_keys import SigningKey

        newest = sorted((self.stack.data_dir / "keys" / "signing").glob("*.pem"))[-1]
        key = serialization.load_pem_private_key(newest.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return SigningKey.of(key, newest).kid, key

    def signed(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        kid, key = self.signing_key()
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, **(headers or {})})

    def claims(self, who: Tenant, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": who.key_id, "tenant": who.tenant_id,
                                  "scope": " ".join(READ_WRITE), "iat": now, "exp": now + 300}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}


def build_world(stack: Stack, *, idle_timeout_seconds: float, max_concurrent_uploads: int) -> World:
    media_dir = stack.data_dir.parent / f"security-media-{uuid.uuid4().hex[:6]}"
    media_dir.mkdir()
    operator = stack.operator_token()
    with stack.channel() as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        a = _tenant(auth, operator, "a")
        b = _tenant(auth, operator, "b")
        clip = make_clip(media_dir / "a-secret.mp4", seconds=1.0, width=320, height=180)
        uploaded = upload_pb2_grpc.UploadServiceStub(channel).Upload(
            upload_requests(clip, title="A's unreleased film"), metadata=bearer(a.token), timeout=60)
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        for reply in metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=uploaded.job_id),
                                       metadata=bearer(a.token), timeout=120):
            if reply.job.status >= common_pb2.JOB_STATUS_COMPLETED:
                break
        video = metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=uploaded.video_id),
                                  metadata=bearer(a.token), timeout=10)
    assert video.job.status == common_pb2.JOB_STATUS_COMPLETED, video.job.error
    return World(stack=stack, a=a, b=b, a_video_id=uploaded.video_id, a_job_id=uploaded.job_id,
                 a_rendition=video.job.renditions[0].name, media_dir=media_dir,
                 idle_timeout_seconds=idle_timeout_seconds, max_concurrent_uploads=max_concurrent_uploads,
                 operator=operator)


def _tenant(auth: auth_pb2_grpc.AuthServiceStub, operator: str, label: str) -> Tenant:
    tenant = auth.CreateTenant(auth_pb2.CreateTenantRequest(name=f"security-{label}-{uuid.uuid4().hex[:8]}"),
                               metadata=bearer(operator), timeout=10)
    created = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=tenant.tenant_id, name=f"{label} user",
                                                             scopes=list(READ_WRITE)),
                                metadata=bearer(operator), timeout=10)
    token = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=created.secret), timeout=10).access_token
    return Tenant(tenant_id=tenant.tenant_id, key_id=created.key.key_id, api_key=created.secret, token=token)
