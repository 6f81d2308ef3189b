"""What `vtc upload` sends: the header first (with the file's size and sha256),
then the file in chunks of at most 1 MiB, read from disk as it goes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from vtc.cli.commands.upload import CHUNK_BYTES, UploadStream, file_size, sha256_of
from vtc.cli.errors import CliError
from vtc.v1 import upload_pb2


def test_header_then_chunks_of_at_most_1_mib(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    payload = os.urandom(2 * CHUNK_BYTES + 12345)
    path.write_bytes(payload)
    counted: list[int] = []
    sha256 = sha256_of(path, counted.append)
    assert sha256 == hashlib.sha256(payload).hexdigest() and sum(counted) == len(payload)

    header = upload_pb2.UploadHeader(filename=path.name, size_bytes=file_size(path), sha256=sha256)
    sent: list[int] = []
    requests = list(UploadStream(header, path, sent.append))
    assert requests[0].header.size_bytes == len(payload) and requests[0].header.sha256 == sha256
    assert not requests[0].HasField("chunk")
    chunks = [r.chunk.data for r in requests[1:]]
    assert [len(c) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 12345]
    assert b"".join(chunks) == payload and sum(sent) == len(payload)


def test_missing_file_and_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no such file"):
        file_size(tmp_path / "nope.mp4")
    with pytest.raises(CliError, match="is a directory"):
        file_size(tmp_path)
