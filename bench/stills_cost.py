"""What the stills cost the transcode: the default profile (the 1080p..360p
ladder with its poster, 10 thumbnails and storyboard) against the same ladder
without them, on the ladder bench's 10 s 1080p30 source, runs alternated so
the shared machine's noise hits both. Prints each run's wall time and CPU
seconds (all threads), the decode loop thread's CPU seconds, the stills
threads' own CPU seconds and the CPU the decode loop spent handing them frames.

    .venv/bin/python bench/stills_cost.py [runs per side, default 3]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transcode_ladder import OUT, make_source  # noqa: E402

from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.execute.outputs import ProducedOutput  # noqa: E402
from services.process_svc.execute.registry import EXECUTORS  # noqa: E402
from services.process_svc.execute.stills.executor import StillsExecutor  # noqa: E402
from services.process_svc.plan import plan_encode  # noqa: E402
from services.process_svc.profiles import ProfileCatalog  # noqa: E402

STILL_KINDS = ("poster", "thumbnails", "storyboard")


class Timed:
    """Per run: the stills threads' CPU and the decode loop's CPU handing them frames (thread CPU time, not
    wall: waits for the GIL or for the scheduler of a shared machine are not theirs)."""

    stills_cpu = 0.0
    offer_cpu = 0.0


def timed(executor: type[StillsExecutor]) -> type[StillsExecutor]:
    class TimedExecutor(executor):  # type: ignore[valid-type, misc]
        def rung_frame(self, rung, frame):  # type: ignore[no-untyped-def]
            started = time.thread_time()
            super().rung_frame(rung, frame)
            Timed.offer_cpu += time.thread_time() - started

        def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
            produced = super().finish(done)
            Timed.stills_cpu += self.writer.result.cpu_seconds if self.writer.result else 0.0
            return produced

    return TimedExecutor


def main(runs: int) -> None:
    source = OUT / "source-1080p30.mp4"
    if not source.exists():
        make_source(source)
    info = probe_source(source)
    profile = ProfileCatalog.load().get("default")
    with_stills = plan_encode(profile, info)
    without = plan_encode(profile.model_copy(update={
        "outputs": tuple(o for o in profile.outputs if o.type not in STILL_KINDS)}), info)
    executors = {**EXECUTORS, **{kind: timed(EXECUTORS[kind]) for kind in STILL_KINDS}}  # type: ignore[arg-type]
    print(f"source {source.name}: {len(with_stills.renditions)} rungs; "
          + ", ".join(f"{o.kind} from the {o.rung} rung" for o in with_stills.outputs if o.kind in STILL_KINDS))
    walls: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    loops: dict[bool, list[float]] = {False: [], True: []}
    stills_cpu, offers = [], []
    for run in range(2 * runs):
        stills = run % 2 == 1
        out = OUT / f"stills_{int(stills)}"
        shutil.rmtree(out, ignore_errors=True)
        Timed.stills_cpu = Timed.offer_cpu = 0.0
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        produced = execute(with_stills if stills else without, source, out, executors=executors)
        wall, cpu, loop = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - loop
        assert not [o.error for o in produced if o.failed]
        walls[stills].append(wall)
        cpus[stills].append(cpu)
        loops[stills].append(loop)
        extra = ""
        if stills:
            stills_cpu.append(Timed.stills_cpu)
            offers.append(Timed.offer_cpu)
            extra = (f"; stills threads {Timed.stills_cpu:.2f} CPU-s, "
                     f"handing frames over {Timed.offer_cpu * 1000:.1f} ms")
        print(f"  {'with' if stills else 'without'} stills: wall {wall:5.2f} s, {cpu:5.1f} CPU-s, "
              f"decode loop {loop:4.2f} CPU-s{extra}")
    med = statistics.median
    print(f"median without: wall {med(walls[False]):.2f} s, {med(cpus[False]):.1f} CPU-s, "
          f"decode loop {med(loops[False]):.2f} CPU-s")
    print(f"median with:    wall {med(walls[True]):.2f} s ({med(walls[True]) - med(walls[False]):+.2f} s), "
          f"{med(cpus[True]):.1f} CPU-s ({med(cpus[True]) - med(cpus[False]):+.2f}), decode loop "
          f"{med(loops[True]):.2f} CPU-s ({med(loops[True]) - med(loops[False]):+.2f}); stills threads "
          f"{med(stills_cpu):.2f} CPU-s, handing frames over {med(offers) * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
