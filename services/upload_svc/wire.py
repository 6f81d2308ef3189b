"""UploadRequest read straight from its wire bytes, without copying the chunk.

The generated deserializer would copy each chunk twice more after gRPC has
handed us the message's bytes: into the protobuf message, then out of it
again as a new `bytes` on every read of `chunk.data` (two 1 MiB allocations
and copies per message, the largest cost of receiving after the network).
`UploadMessage.parse` is the Upload method's request deserializer instead: it
finds the chunk's data in the message and keeps a memoryview of it, which
hashlib and os.writev take as it is.

Only the plain layout every client sends is read this way: `header` at most
once, `chunk` at most once holding `content_type` and `data` at most once
each, nothing else. Anything else (unknown or repeated fields, HttpBody
extensions, a malformed message) goes through the generated protobuf parser,
so what is accepted, and the values read, are the same as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from vtc.v1 import upload_pb2

_LENGTH_DELIMITED = 2
_HEADER_FIELD, _CHUNK_FIELD = 1, 2  # UploadRequest
_CONTENT_TYPE_FIELD, _DATA_FIELD = 1, 2  # google.api.HttpBody


class _NotPlain(Exception):
    """The message is not in the plain layout: the protobuf parser reads it."""


@dataclass(frozen=True, slots=True)
class UploadMessage:
    header: upload_pb2.UploadHeader | None  # None when the message carries none
    data: memoryview  # the chunk's bytes (a view into the message's bytes; may be empty)

    @classmethod
    def parse(cls, raw: bytes) -> UploadMessage:
        try:
            return _parse_plain(raw)
        except _NotPlain:
            return cls.from_proto(upload_pb2.UploadRequest.FromString(raw))

    @classmethod
    def from_proto(cls, request: upload_pb2.UploadRequest) -> UploadMessage:
        return cls(header=request.header if request.HasField("header") else None,
                   data=memoryview(request.chunk.data))


def _parse_plain(raw: bytes) -> UploadMessage:
    view = memoryview(raw)
    header_span = chunk_span = None
    for field, start, end in _fields(view, 0, len(view)):
        if field == _HEADER_FIELD and header_span is None:
            header_span = (start, end)
        elif field == _CHUNK_FIELD and chunk_span is None:
            chunk_span = (start, end)
        else:
            raise _NotPlain
    data = view[0:0]
    if chunk_span is not None:
        content_type_seen = data_seen = False
        for field, start, end in _fields(view, *chunk_span):
            if field == _CONTENT_TYPE_FIELD and not content_type_seen:
                content_type_seen = True
                try:
                    str(view[start:end], "utf-8")  # a proto3 string: protobuf refuses invalid UTF-8 too
                except UnicodeDecodeError:
                    raise _NotPlain from None
            elif field == _DATA_FIELD and not data_seen:
                data_seen = True
                data = view[start:end]
            else:
                raise _NotPlain
    # The header is small; parsed by protobuf, with its checks, in every message that has one.
    header = upload_pb2.UploadHeader.FromString(bytes(view[slice(*header_span)])) if header_span is not None else None
    return UploadMessage(header=header, data=data)


def _fields(view: memoryview, position: int, end: int):  # type: ignore[no-untyped-def]
    """(field number, value start, value end) of each length-delimited field in view[position:end]."""
    while position < end:
        tag, position = _varint(view, position, end)
        if tag & 7 != _LENGTH_DELIMITED or tag >> 3 == 0:
            raise _NotPlain
        length, position = _varint(view, position, end)
        if length > end - position:
            raise _NotPlain
        yield tag >> 3, position, position + length
        position += length


def _varint(view: memoryview, position: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while position < end and shift < 64:
        byte = view[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise _NotPlain
