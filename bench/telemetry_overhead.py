"""What the telemetry interceptor (a server span, a counter and a histogram per
RPC) costs a call: the same trivial RPCs on three grpc.aio servers in this
process, all with the interceptors every service has besides it (request
context and logging, error mapping; not auth, which needs keys): one without
telemetry, one with a pass-through interceptor in its place (what any fourth
interceptor costs), one with TelemetryInterceptor; called in alternating
rounds so machine noise hits all three. Prints microseconds per call for a
unary call and for a client-streaming call of 64 x 64 KiB chunks, where the
interceptor must add nothing per chunk. Last, the interceptor's own work per
call (start a server span from a traceparent, make it current, count, time,
end it) timed alone, without gRPC around it.

    make bench BENCH=telemetry
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.shared import metrics, tracing  # noqa: E402
from services.shared.interceptors import (  # noqa: E402
    ErrorMappingInterceptor,
    RequestContextInterceptor,
    TelemetryInterceptor,
    _wrap,
)
from services.shared.tracing import configure_tracing  # noqa: E402

ROUNDS = 7
CALLS = 400
STREAMS = 40
CHUNK = b"x" * 65536
CHUNKS = 64


async def ping(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def swallow(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    size = 0
    async for chunk in requests:
        size += len(chunk)
    return str(size).encode()


def handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("vtc.bench.Echo", {
        "Ping": grpc.unary_unary_rpc_method_handler(ping),
        "Swallow": grpc.stream_unary_rpc_method_handler(swallow),
    })


class PassThrough(grpc.aio.ServerInterceptor):
    """Wraps each call the way TelemetryInterceptor does, and does nothing else."""

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)

        async def unary(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            return await behavior(request, context)

        async def stream(behavior, request, context, _method):  # type: ignore[no-untyped-def]
            async for item in behavior(request, context):
                yield item

        return _wrap(handler, handler_call_details.method, unary, stream)


async def serve(interceptors: list[grpc.aio.ServerInterceptor]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def unary_us(channel: grpc.aio.Channel) -> float:
    call = channel.unary_unary("/vtc.bench.Echo/Ping")
    started = time.perf_counter()
    for _ in range(CALLS):
        await call(b"ping")
    return (time.perf_counter() - started) / CALLS * 1e6


async def stream_us(channel: grpc.aio.Channel) -> float:
    call = channel.stream_unary("/vtc.bench.Echo/Swallow")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            yield CHUNK

    started = time.perf_counter()
    for _ in range(STREAMS):
        await call(chunks())
    return (time.perf_counter() - started) / STREAMS * 1e6


def telemetry_work_us(calls: int = 5000) -> float:
    """The per-call work of TelemetryInterceptor (begin and end), without the RPC."""
    carrier = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"}
    started = time.perf_counter()
    for _ in range(calls):
        span = tracing.tracer().start_span("vtc.bench.Echo/Ping", context=tracing.remote_context(carrier),
                                           kind=tracing.SpanKind.SERVER, attributes={
                                               "rpc.system": "grpc", "rpc.service": "vtc.bench.Echo",
                                               "rpc.method": "Ping"})
        token = tracing.attach_span(span)
        metrics.GRPC_HANDLED.labels("vtc.bench.Echo", "Ping", "unary", "OK").inc()
        metrics.GRPC_HANDLING_SECONDS.labels("vtc.bench.Echo", "Ping", "unary").observe(0.001)
        span.set_attribute("rpc.grpc.status_code", 0)
        tracing.detach_span(token)
        span.end()
    return (time.perf_counter() - started) / calls * 1e6


async def main() -> None:
    configure_tracing("vtc-bench")  # spans are made, not exported, as in a service without OTLP
    variants = {
        "without": [RequestContextInterceptor(), ErrorMappingInterceptor()],
        "pass-through": [PassThrough(), RequestContextInterceptor(), ErrorMappingInterceptor()],
        "telemetry": [TelemetryInterceptor(), RequestContextInterceptor(), ErrorMappingInterceptor()],
    }
    servers = {name: await serve(chain) for name, chain in variants.items()}
    channels = {name: grpc.aio.insecure_channel(address) for name, (_, address) in servers.items()}
    unary: dict[str, list[float]] = {name: [] for name in variants}
    stream: dict[str, list[float]] = {name: [] for name in variants}
    for channel in channels.values():
        await unary_us(channel)  # warm up
    for round_number in range(ROUNDS):
        order = list(variants)[round_number % 3:] + list(variants)[:round_number % 3]
        for name in order:
            unary[name].append(await unary_us(channels[name]))
            stream[name].append(await stream_us(channels[name]))
    for channel in channels.values():
        await channel.close()
    for server, _ in servers.values():
        await server.stop(0)
    for label, results in (("unary call", unary), (f"client stream of {CHUNKS} x 64 KiB", stream)):
        medians = {name: statistics.median(values) for name, values in results.items()}
        base = medians["without"]
        print(f"{label} (medians of {ROUNDS} alternated rounds): " + ", ".join(
            f"{name} {value:.0f} us ({value - base:+.0f})" for name, value in medians.items())
            + f"; telemetry/without {medians['telemetry'] / base:.2f}")
    telemetry_work_us(500)  # warm up
    work = sorted(telemetry_work_us() for _ in range(5))
    print(f"telemetry's own work per call, without gRPC: median {work[2]:.1f} us, best {work[0]:.1f} us "
          "(5 runs of 5000)")

if __name__ == "__main__":
    asyncio.run(main())
