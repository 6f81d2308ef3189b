"""Fairness: how long a quiet tenant's lone job waits for a worker while
another tenant has a burst queued, against the same with no burst, and
against plain FIFO dispatch (everything published at once, the way one shared
queue behaves).

    make bench BENCH=fairness     (or: .venv/bin/python bench/fairness.py [--burst 100])

The all-in-one process (in-process bus, SQLite, one transcode worker), real
uploads through the upload API. The busy tenant uploads --burst jobs of a
1 s 640x360 clip; then the quiet tenant uploads one tiny clip (0.5 s,
160x90), and the clock runs from its upload's reply until its client sees
the job RUNNING.
Prints `quiet tenant wait: no burst = N s, burst = N s (FIFO: N s)`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from service_stack import ServiceStack, clip, tiny_clip


async def quiet_wait(burst: int, **settings: object) -> float:
    burst_clip, quiet_clip = clip(1.0, 640, 360), tiny_clip()
    with tempfile.TemporaryDirectory(prefix="vtc-bench-fairness-") as tmp:
        stack = await ServiceStack.start(Path(tmp) / "var", **settings)
        try:
            busy, quiet = await stack.tenant("busy"), await stack.tenant("quiet")
            sent = 0

            async def uploader() -> None:
                nonlocal sent
                while sent < burst:
                    sent += 1
                    await stack.upload(busy, burst_clip, name=f"burst-{sent}.mp4")

            await asyncio.gather(*(uploader() for _ in range(4)))
            reply = await stack.upload(quiet, quiet_clip, name="quiet.mp4")
            return await stack.seconds_until_running(quiet, reply.job_id, time.monotonic())
        finally:
            await stack.stop()


async def main(burst: int) -> None:
    logging.disable(logging.CRITICAL)  # jobs still queued at each stop are cancelled, and say so
    alone = await quiet_wait(0)
    fair = await quiet_wait(burst)
    fifo = await quiet_wait(burst, metadata_dispatch_ahead=burst + 10)
    print(f"one worker; the busy tenant queues {burst} jobs (1 s of 640x360 each), then the quiet tenant "
          "uploads one tiny job")
    print(f"quiet tenant wait: no burst = {alone:.2f} s, burst = {fair:.2f} s (FIFO: {fifo:.2f} s)")
    print(f"burst / no burst = {fair / alone:.1f}; FIFO / fair = {fifo / fair:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100)
    asyncio.run(main(parser.parse_args().burst))
