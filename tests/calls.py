"""Small helpers for calling the services the way a gRPC customer would."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from vtc.v1 import upload_pb2

CHUNK = 1024 * 1024


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def upload_requests(path: Path, title: str = "", profile: str = "") -> Iterator[upload_pb2.UploadRequest]:
    """The Upload stream for a file: its header (with sha256), then 1 MiB chunks."""
    data = path.read_bytes()
    yield upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(
        filename=path.name, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), title=title,
        profile=profile))
    for offset in range(0, len(data), CHUNK):
        yield upload_pb2.UploadRequest(chunk={"data": data[offset:offset + CHUNK]})
