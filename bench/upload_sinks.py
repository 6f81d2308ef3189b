"""The peers of the upload benchmark: servers that take an upload and only
count its bytes, so what the upload service does beyond that shows as the
difference. Each runs as its own process, as upload_svc does.

    python bench/upload_sinks.py grpc   # UploadService.Upload on grpc.aio, same message limits as ours
    python bench/upload_sinks.py http   # HTTP/1.1 POST/PUT body, raw asyncio (what curl sends to Envoy)

Each prints `listening <port>` once it serves, then serves until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.shared.server import MAX_MESSAGE_BYTES  # noqa: E402
from vtc.v1 import upload_pb2, upload_pb2_grpc  # noqa: E402


class CountingUploads(upload_pb2_grpc.UploadServiceServicer):
    async def Upload(self, request_iterator: AsyncIterator[upload_pb2.UploadRequest],  # noqa: N802
                     context: grpc.aio.ServicerContext) -> upload_pb2.UploadResponse:
        received = 0
        async for request in request_iterator:
            received += len(request.chunk.data)
        return upload_pb2.UploadResponse(size_bytes=received)


async def serve_grpc() -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.so_reuseport", 0)])
    upload_pb2_grpc.add_UploadServiceServicer_to_server(CountingUploads(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening {port}", flush=True)
    await _until_terminated()
    await server.stop(0)


async def _count_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            received = 0
            if headers.get("transfer-encoding", "").lower() == "chunked":
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    received += len(await reader.readexactly(size))
                    await reader.readexactly(2)
                await reader.readuntil(b"\r\n")
            else:
                left = int(headers.get("content-length", "0"))
                while left:
                    piece = await reader.read(min(left, 1 << 20))
                    if not piece:
                        return
                    received += len(piece)
                    left -= len(piece)
            body = json.dumps({"sizeBytes": str(received)}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_http() -> None:
    server = await asyncio.start_server(_count_body, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    async with server:
        await _until_terminated()


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind not in ("grpc", "http"):
        sys.exit("usage: upload_sinks.py grpc|http")
    asyncio.run(serve_grpc() if kind == "grpc" else serve_http())
