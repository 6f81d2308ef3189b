"""The Upload method's own request deserializer (wire.UploadMessage.parse)
reads every message as the generated protobuf parser does: the same header,
the same chunk bytes, the same refusals; it only skips the copies."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from services.upload_svc.wire import UploadMessage
from vtc.v1 import upload_pb2


def same_as_protobuf(raw: bytes) -> UploadMessage:
    parsed = UploadMessage.parse(raw)
    expected = upload_pb2.UploadRequest.FromString(raw)
    assert bytes(parsed.data) == expected.chunk.data
    if expected.HasField("header"):
        assert parsed.header == expected.header
    else:
        assert parsed.header is None
    return parsed


def test_the_plain_layouts_clients_and_envoy_send() -> None:
    header = upload_pb2.UploadHeader(filename="clip.mov", size_bytes=3 << 20, sha256="ab" * 32, title="Ünïcode")
    data = random.Random(1).randbytes(1 << 20)
    shapes = [
        upload_pb2.UploadRequest(header=header),  # gRPC clients: the header alone first
        upload_pb2.UploadRequest(chunk={"data": data}),  # then chunks
        upload_pb2.UploadRequest(header=header, chunk={"content_type": "video/quicktime", "data": data}),  # Envoy
        upload_pb2.UploadRequest(chunk={"content_type": "video/mp4"}),
        upload_pb2.UploadRequest(),
    ]
    for message in shapes:
        same_as_protobuf(message.SerializeToString())


def test_the_chunk_is_a_view_of_the_message_not_a_copy() -> None:
    raw = upload_pb2.UploadRequest(chunk={"data": b"x" * 1000}).SerializeToString()
    parsed = UploadMessage.parse(raw)
    assert parsed.data.obj is raw


def test_unusual_but_valid_messages_read_as_protobuf_reads_them() -> None:
    first = upload_pb2.UploadRequest(chunk={"data": b"first"}).SerializeToString()
    second = upload_pb2.UploadRequest(chunk={"data": b"second", "content_type": "a"}).SerializeToString()
    header = upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(filename="a.mp4")).SerializeToString()
    unknown_varint = b"\x18\x07"  # field 3, a varint: unknown to UploadRequest
    unknown_in_chunk = b"\x12\x04\x20\x01\x12\x00"  # chunk { field 4 varint; data "" }
    extensions = upload_pb2.UploadRequest()
    extensions.chunk.data = b"with extensions"
    extensions.chunk.extensions.add().type_url = "type.googleapis.com/x"
    for raw in (first + second,  # chunk twice: merged, the last data wins
                header + header + first,
                first + unknown_varint,
                unknown_in_chunk,
                extensions.SerializeToString()):
        same_as_protobuf(raw)


def test_malformed_messages_are_refused_like_protobuf_refuses_them() -> None:
    good = upload_pb2.UploadRequest(header=upload_pb2.UploadHeader(filename="a.mp4"),
                                    chunk={"data": b"0123456789"}).SerializeToString()
    bad_utf8 = upload_pb2.UploadRequest(chunk={"content_type": "x"}).SerializeToString().replace(b"x", b"\xff")
    for raw in (good[:-3], good[:5], b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x12\x05abc", bad_utf8):
        with pytest.raises(DecodeError):
            upload_pb2.UploadRequest.FromString(raw)
        with pytest.raises(DecodeError):
            UploadMessage.parse(raw)


def test_random_messages_read_the_same() -> None:
    rng = random.Random(7)
    for _ in range(300):
        message = upload_pb2.UploadRequest()
        if rng.random() < 0.5:
            message.header.filename = rng.choice(["a.mp4", "clip.mov", "x" * 300])
            message.header.size_bytes = rng.randrange(1 << 40)
        if rng.random() < 0.8:
            message.chunk.data = rng.randbytes(rng.choice([0, 1, 127, 128, 16383, 16384, 70_000]))
        if rng.random() < 0.3:
            message.chunk.content_type = "video/mp4"
        raw = message.SerializeToString()
        same_as_protobuf(raw)
        cut = raw[:rng.randrange(len(raw) + 1)]
        try:
            upload_pb2.UploadRequest.FromString(cut)
        except DecodeError:
            with pytest.raises(DecodeError):
                UploadMessage.parse(cut)
        else:
            same_as_protobuf(cut)
