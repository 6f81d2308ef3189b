"""Progress latency: a worker emits a progress event -> a WatchJob client sees it,
with two metadata replicas on RabbitMQ and PostgreSQL and the client on the
second one. Events go to whichever replica takes them from the competing
queue; those the first replica applies reach the client through the
replicas' broadcast fan-out, so both paths are in the figures.

    .venv/bin/python bench/progress_latency.py [--events 200] [--interval-ms 20]

Prints `progress p50 = N ms` and `progress p99 = N ms` (target p99 <= 100 ms),
and how many events each replica applied. `measure_progress_latency()` is
what other benchmarks call. Needs the RabbitMQ and PostgreSQL of the tests
(VTC_TEST_AMQP_URL, VTC_TEST_POSTGRES_URL); it uses a database and a bus
namespace of its own and removes them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.process_svc.execute import TranscodeProgress  # noqa: E402
from tests.databases import private_postgres_database  # noqa: E402
from tests.metadata_replicas import (  # noqa: E402
    BrokerNamespace,
    as_reader,
    metadata_replicas,
    register_job,
    require_rabbitmq,
    worker_events,
)
from tests.tokens import TestKeys  # noqa: E402
from vtc.v1 import metadata_pb2  # noqa: E402


@dataclass(frozen=True)
class ProgressLatency:
    samples_ms: list[float]
    lost: int

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def measure_progress_latency(events: int = 200, interval_ms: float = 20.0) -> ProgressLatency:
    require_rabbitmq()
    keys = TestKeys()
    namespace = BrokerNamespace()
    sent: dict[float, float] = {}  # percent (unique per event) -> when the worker published it
    received: dict[float, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="vtc-bench-") as scratch:
            async with private_postgres_database("vtc_bench_progress") as database_url, \
                    metadata_replicas(2, database_url, namespace, keys, Path(scratch)) as replicas:
                request = await register_job(replicas[0], keys)
                call = replicas[1].stub.WatchJob(metadata_pb2.WatchJobRequest(job_id=request.job_id),
                                                 metadata=as_reader(keys))
                await call.read()  # the snapshot: subscribed

                async def watch() -> None:
                    while (message := await call.read()) is not grpc.aio.EOF:
                        if message.event.WhichOneof("kind") == "progress":
                            received[message.job.progress.percent] = time.perf_counter()

                watcher = asyncio.create_task(watch())
                worker = namespace.bus()
                await worker.start()
                try:
                    publisher = worker_events(worker, request)
                    await publisher.started("bench")
                    for i in range(1, events + 1):
                        percent = round(100 * i / (events + 1), 6)
                        sent[percent] = time.perf_counter()
                        await publisher.progress(TranscodeProgress(percent=percent, frames=i, total_frames=events,
                                                                   fps=30.0, speed=1.0, eta_seconds=1.0))
                        await asyncio.sleep(interval_ms / 1000)
                    await asyncio.sleep(1.0)  # the last ones arrive
                finally:
                    watcher.cancel()
                    await worker.close()
    finally:
        await namespace.cleanup()
    samples = [(received[p] - at) * 1000 for p, at in sent.items() if p in received]
    return ProgressLatency(samples_ms=samples, lost=len(sent) - len(samples))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    result = asyncio.run(measure_progress_latency(args.events, args.interval_ms))
    print(f"progress events: {len(result.samples_ms)} seen by a WatchJob client on the second metadata replica, "
          f"{result.lost} not seen")
    print(f"progress p50 = {result.p50:.1f} ms")
    print(f"progress p99 = {result.p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
