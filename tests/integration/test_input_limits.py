"""What a client sees when it sends hostile or oversized input, against the
all-in-one service (real gRPC server on port 0, Envoy in front) started under
umask 022: INVALID_ARGUMENT with a reason for bad ids, names and text, and
private data files. (Paging by size: test_metadata_service.py.)"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.shared.ids import new_id
from services.shared.storage.keys import source_key
from tests.calls import bearer, upload_requests
from tests.stack import Stack, run_stack
from vtc.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    metadata_pb2,
    metadata_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
)

HOSTILE_IDS = ["../../x", "vid_../../../etc/passwd", "", "x" * 10_000, "vid_0123456789abcdef0123\x00"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    previous = os.umask(0o022)  # the usual umask: files would be world-readable unless created private
    try:
        yield from run_stack(tmp_path_factory.mktemp("limits") / "var", gateway=True)
    finally:
        os.umask(previous)


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with stack.channel() as channel:
        yield channel


@pytest.fixture(scope="module")
def tenant(stack: Stack, channel: grpc.Channel) -> list[tuple[str, str]]:
    """Call metadata of a fresh tenant's token (videos:read videos:write)."""
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    admin = bearer(stack.operator_token())
    created = auth.CreateTenant(auth_pb2.CreateTenantRequest(name="limits"), metadata=admin, timeout=10)
    key = auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id=created.tenant_id, name="limits"),
                            metadata=admin, timeout=10)
    token = auth.IssueToken(auth_pb2.IssueTokenRequest(api_key=key.secret), timeout=10)
    return bearer(token.access_token)


@pytest.fixture(scope="module")
def service(stack: Stack, channel: grpc.Channel) -> list[tuple[str, str]]:
    """Call metadata of the service identity, as upload_svc calls RegisterVideo."""
    service_key = (stack.data_dir / "keys" / "service.key").read_text().strip()
    token = auth_pb2_grpc.AuthServiceStub(channel).IssueToken(auth_pb2.IssueTokenRequest(api_key=service_key),
                                                              timeout=10)
    return bearer(token.access_token)


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, str]:
    """(code, message, ErrorInfo reason) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    error = raised.value
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason = ""
    if status is not None:
        info = error_details_pb2.ErrorInfo()
        if status.details and status.details[0].Unpack(info):
            reason = info.reason
    return error.code(), error.details(), reason  # type: ignore[attr-defined]


def upload_header(**fields: Any) -> Iterator[upload_pb2.UploadRequest]:
    header = {"filename": "clip.mp4", "size_bytes": 1000, **fields}
    yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(**header), chunk={"data": b"\0" * 1000})


# --- part 8: control characters and ids -----------------------------------------------------------

@pytest.mark.parametrize("filename, position", [("clip\x00.mp4", 4), ("clip\x1b[2J.mp4", 4), ("a\nb.mp4", 1)])
def test_a_control_character_in_a_filename_is_an_invalid_argument(channel: grpc.Channel, tenant: Any,
                                                                   filename: str, position: int) -> None:
    uploads = upload_pb2_grpc.UploadServiceStub(channel)
    code, message, reason = refused(lambda: uploads.Upload(upload_header(filename=filename), metadata=tenant,
                                                           timeout=30))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert message.startswith(f"header.filename contains a control character (U+{ord(filename[position]):04X} "
                              f"at position {position})")


@pytest.mark.parametrize("video_id", HOSTILE_IDS)
def test_every_video_and_job_id_a_client_sends_is_checked_first(channel: grpc.Channel, tenant: Any,
                                                                video_id: str) -> None:
    metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
    job_id = video_id.replace("vid_", "job_")
    calls = {
        "video_id": [
            lambda: metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=video_id), metadata=tenant, timeout=10),
            lambda: metadata.DeleteVideo(metadata_pb2.DeleteVideoRequest(video_id=video_id), metadata=tenant,
                                         timeout=10),
            lambda: metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
                video_id=video_id, rendition="720p"), metadata=tenant, timeout=10),
        ],
        "job_id": [
            lambda: metadata.GetJob(metadata_pb2.GetJobRequest(job_id=job_id), metadata=tenant, timeout=10),
            lambda: metadata.WatchJob(metadata_pb2.WatchJobRequest(job_id=job_id), metadata=tenant, timeout=10),
        ],
    }
    for field, field_calls in calls.items():
        for call in field_calls:
            code, message, reason = refused(call)
            assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"), message
            assert message.startswith(field) and len(message) < 200


@pytest.mark.parametrize("rendition", ["../../../keys/admin.key", "720p/../../x", "A" * 100])
def test_a_rendition_name_is_a_name_not_a_path(channel: grpc.Channel, tenant: Any, rendition: str) -> None:
    metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
    code, message, _ = refused(lambda: list(metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
        video_id=new_id("vid"), rendition=rendition), metadata=tenant, timeout=10)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("rendition ")


def _register_request(tenant: str, **fields: Any) -> metadata_pb2.RegisterVideoRequest:
    video_id = fields.pop("video_id", new_id("vid"))
    tenant_id = fields.pop("tenant_id", tenant)
    values: dict[str, Any] = {
        "video_id": video_id, "job_id": new_id("job"), "tenant_id": tenant_id, "title": "clip",
        "filename": "clip.mp4", "size_bytes": 10, "sha256": "ab" * 32,
        "source_key": source_key(tenant_id, video_id, "clip.mp4"), "profile": "default", **fields}
    return metadata_pb2.RegisterVideoRequest(**values)


@pytest.mark.parametrize("fields, field", [
    ({"job_id": "../../x"}, "job_id"),
    ({"video_id": "../../x"}, "video_id"),
    ({"tenant_id": "../other"}, "tenant_id"),
    ({"profile": "../../etc"}, "profile"),
    ({"title": "t" * 3_000_000}, "title"),
    ({"title": "evil\x1b]0;pwned\x07"}, "title"),
    ({"filename": "clip\x00.mp4"}, "filename"),
    ({"source_key": "ten_x/../../keys/admin.key"}, "bad storage key"),
])
def test_internal_register_video_checks_every_field_too(channel: grpc.Channel, service: Any,
                                                        fields: dict[str, Any], field: str) -> None:
    metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
    code, message, reason = refused(lambda: metadata.RegisterVideo(_register_request("ten_x", **fields),
                                                                   metadata=service, timeout=30))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert message.startswith(field), message


# --- part 7: unbounded fields ---------------------------------------------------------------------

def test_a_title_over_the_limit_is_refused_before_any_byte_is_stored(stack: Stack, channel: grpc.Channel,
                                                                      tenant: Any) -> None:
    uploads = upload_pb2_grpc.UploadServiceStub(channel)
    code, message, _ = refused(lambda: uploads.Upload(upload_header(title="t" * 3_000_000), metadata=tenant,
                                                      timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == "header.title is 3000000 characters long; at most 256 are allowed"
    code, message, _ = refused(lambda: uploads.Upload(upload_header(title="a\u202eb"), metadata=tenant, timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "U+202E" in message


@pytest.mark.parametrize("call, message", [
    (lambda auth, admin: auth.CreateTenant(auth_pb2.CreateTenantRequest(name="acme\x1b[2J"), metadata=admin,
                                           timeout=10), "the tenant name contains a control character"),
    (lambda auth, admin: auth.CreateTenant(auth_pb2.CreateTenantRequest(name="n" * 1_000_000), metadata=admin,
                                           timeout=10), "the tenant name is 1000000 characters long"),
    (lambda auth, admin: auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(tenant_id="default", name="k\x00"),
                                           metadata=admin, timeout=10), "the key name contains a control character"),
    (lambda auth, admin: auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(scopes=["s" * 100_000]), metadata=admin,
                                           timeout=10), "scopes is 100000 characters long"),
    (lambda auth, admin: auth.ListApiKeys(auth_pb2.ListApiKeysRequest(tenant_id="../../x"), metadata=admin,
                                          timeout=10), "tenant_id '../../x' is not a valid tenant id"),
    (lambda auth, admin: auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id="../x"), metadata=admin,
                                           timeout=10), "key_id '../x' is not a valid id"),
])
def test_auth_names_and_ids_are_bounded_and_printable(stack: Stack, channel: grpc.Channel,
                                                      call: Callable[..., Any], message: str) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    code, details, reason = refused(lambda: call(auth, bearer(stack.operator_token())))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert details.startswith(message), details


# --- part 8: private data files -------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_data_files_and_folders_are_private_whatever_the_umask(stack: Stack, channel: grpc.Channel, tenant: Any,
                                                               clip_640x360: Path) -> None:
    reply = upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(clip_640x360), metadata=tenant,
                                                              timeout=60)
    data = stack.data_dir
    stored = list((data / "objects").rglob("*"))
    assert any(reply.video_id in str(path) for path in stored)
    keys = list((data / "keys").rglob("*"))
    files = [data / "auth.db", data / "metadata.db", *data.glob("*.db-*"),  # SQLite's -wal and -shm
             data / "envoy" / "envoy.log", *(p for p in keys + stored if p.is_file())]
    folders = [data, data / "objects", data / "keys", data / "envoy", data / "tmp", data / "tmp" / "uploads",
               data / "work", *(p for p in keys + stored if p.is_dir())]
    assert {str(p): oct(_mode(p)) for p in files} == {str(p): oct(0o600) for p in files}
    assert {str(p): oct(_mode(p)) for p in folders} == {str(p): oct(0o700) for p in folders}
    assert hashlib.sha256(clip_640x360.read_bytes()).hexdigest() == reply.sha256
