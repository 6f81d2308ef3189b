"""`vtc upload FILE`: hash the file, stream it in 1 MiB chunks, print the new
video and job ids; with --watch, follow the transcode to its end.

The file is read from disk twice (once to hash, once to send) and never held
whole in memory: the upload header must carry the sha256 before any chunk."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from pathlib import Path

from vtc.cli.client import Session
from vtc.cli.commands.jobs import check_outcome, follow_job, show_outcome
from vtc.cli.commands.rerun import read_profile_file
from vtc.cli.errors import CliError
from vtc.cli.output import Output, to_dict
from vtc.cli.progress import ByteCounter, byte_progress
from vtc.v1 import upload_pb2

CHUNK_BYTES = 1024 * 1024  # the upload service's limit per message


def file_size(path: Path) -> int:
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a video file")
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None


def read_chunks(path: Path, counter: ByteCounter) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk
            counter(len(chunk))


HASH_READ_BYTES = 8 * 1024 * 1024


def sha256_of(path: Path, counter: ByteCounter) -> str:
    """Reads into one reused buffer: no allocation per read. `make bench
    BENCH=upload` times this pass and the upload together (docs/uploads.md)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_READ_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as file:
        while read := file.readinto(buffer):
            digest.update(view[:read])
            counter(read)
    return digest.hexdigest()


class UploadStream:
    """The request iterator gRPC consumes on its own thread. An error reading the
    file would reach the caller only as a bare CANCELLED; it is kept to re-raise."""

    def __init__(self, header: upload_pb2.UploadHeader, path: Path, counter: ByteCounter) -> None:
        self._header = header
        self._path = path
        self._counter = counter
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[upload_pb2.UploadRequest]:
        try:
            yield upload_pb2.UploadRequest(header=self._header)
            for chunk in read_chunks(self._path, self._counter):
                request = upload_pb2.UploadRequest()
                request.chunk.data = chunk
                yield request
        except Exception as error:
            self.error = error
            raise


def upload_file(session: Session, path: Path, *, title: str, profile: str, show_progress: bool,
                profile_document: str = "") -> upload_pb2.UploadResponse:
    size = file_size(path)
    with byte_progress("hashing", size, enabled=show_progress) as counter:
        sha256 = sha256_of(path, counter)
    header = upload_pb2.UploadHeader(filename=path.name, size_bytes=size, sha256=sha256, profile=profile, title=title,
                                     profile_document=profile_document)
    metadata = session.metadata()  # before the bar: a token renewal is not upload time
    with byte_progress("uploading", size, enabled=show_progress) as counter:
        stream = UploadStream(header, path, counter)
        try:
            return session.uploads.Upload(iter(stream), metadata=metadata)
        except Exception:
            if stream.error is not None:
                raise stream.error from None
            raise


def run_upload(args: argparse.Namespace, out: Output) -> int:
    path = Path(args.file)
    document = read_profile_file(args.profile_file)
    with Session.open(args.addr) as session:
        reply = upload_file(session, path, title=args.title or "", profile=args.profile or "",
                            show_progress=out.progress, profile_document=document)
        if not out.json_mode:
            out.say(f"uploaded {path.name}: video {reply.video_id}, job {reply.job_id}")
        if not args.watch:
            if out.json_mode:
                out.json(to_dict(reply))
            return 0
        job = follow_job(session, reply.job_id, show_progress=out.progress)
    if out.json_mode:
        out.json({**to_dict(reply), "job": to_dict(job)})
    show_outcome(job, out)
    check_outcome(job)
    return 0
