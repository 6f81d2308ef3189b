"""What the stills cost the transcode: the default ladder on the ladder bench's
10 s 1080p30 source, with and without a poster, 5 thumbnails and a storyboard,
runs alternated so the shared machine's noise hits both. Prints each run's
wall time and CPU seconds (all threads), the medians, and the stills thread's
threads' own CPU time and
the time the decode loop spends handing them frames.

    .venv/bin/python bench/stills_cost.py [runs per side, default 3]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transcode_ladder import OUT, make_source  # noqa: E402

from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.execute.stills import StillsWriter  # noqa: E402
from services.process_svc.plan import plan_encode  # noqa: E402
from services.process_svc.plan.stills import (  # noqa: E402
    PosterSpec,
    StoryboardSpec,
    ThumbnailsSpec,
    plan_poster,
    plan_storyboard,
    plan_thumbnails,
)
from services.process_svc.profiles import ProfileCatalog  # noqa: E402


class TimedWriter(StillsWriter):
    """Counts the CPU time the decode loop's thread spends handing frames over (CPU, not wall: waits for
    the GIL or the scheduler of a shared machine are not the handing over's)."""

    offer_seconds = 0.0

    def offer(self, frame):  # type: ignore[no-untyped-def]
        started = time.thread_time()
        super().offer(frame)
        self.offer_seconds += time.thread_time() - started


def main(runs: int) -> None:
    source = OUT / "source-1080p30.mp4"
    if not source.exists():
        make_source(source)
    info = probe_source(source)
    plan = plan_encode(ProfileCatalog.load().get("default"), info)
    ladder = plan.renditions
    stills = (plan_poster(PosterSpec(), ladder, info), plan_thumbnails(ThumbnailsSpec(), ladder, info),
              plan_storyboard(StoryboardSpec(), ladder, info))
    print(f"source {source.name}: {len(plan.renditions)} rungs; "
          + ", ".join(f"{s.kind} from the {s.rung} rung" for s in stills))
    figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    loops: dict[bool, list[float]] = {False: [], True: []}  # CPU time of the decode loop's thread
    stills_cpu: list[float] = []
    offers: list[float] = []
    for run in range(2 * runs):
        with_stills = run % 2 == 1
        out = OUT / f"stills_{int(with_stills)}"
        shutil.rmtree(out, ignore_errors=True)
        writers = [TimedWriter(s, out) for s in stills] if with_stills else []
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        execute(plan, source, out, stills=writers)
        wall, cpu, loop = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - loop
        figures[with_stills].append((wall, cpu))
        loops[with_stills].append(loop)
        extra = ""
        if writers:
            results = [w.result for w in writers if w.result is not None]
            stills_cpu.append(sum(r.cpu_seconds for r in results))
            poster = results[0].poster[0]
            offers.append(sum(w.offer_seconds for w in writers))
            extra = (f"  stills threads {stills_cpu[-1]:.2f} CPU-s, handing frames over "
                     f"{offers[-1] * 1000:.1f} ms, poster at {poster.time_seconds} s")
        print(f"  {'with' if with_stills else 'without'} stills: wall {wall:5.2f} s, {cpu:5.1f} CPU-s "
              f"(decode loop {loop:4.2f}){extra}")
    base_wall = statistics.median(w for w, _ in figures[False])
    base_cpu = statistics.median(c for _, c in figures[False])
    wall = statistics.median(w for w, _ in figures[True])
    cpu = statistics.median(c for _, c in figures[True])
    print(f"median without: wall {base_wall:.2f} s, {base_cpu:.1f} CPU-s")
    print(f"median with:    wall {wall:.2f} s ({wall - base_wall:+.2f} s, {wall / base_wall - 1:+.1%}), "
          f"{cpu:.1f} CPU-s ({cpu - base_cpu:+.2f}); stills threads {statistics.median(stills_cpu):.2f} CPU-s, "
          f"handing frames over {statistics.median(offers) * 1000:.1f} ms")
    print(f"decode loop's thread: {statistics.median(loops[False]):.2f} CPU-s without, "
          f"{statistics.median(loops[True]):.2f} with")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
