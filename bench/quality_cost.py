"""What the quality report costs: the default ladder on the ladder bench's
10 s 1080p30 source, run with no report, every 10th, every 5th (the
default) and every frame compared. Prints CPU seconds (all threads; wall
time on a shared machine says little) and the pooled figures per rung.

    .venv/bin/python bench/quality_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transcode_ladder import OUT, make_source  # noqa: E402

from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.plan import plan_encode  # noqa: E402
from services.process_svc.profiles import ProfileCatalog  # noqa: E402

SAMPLINGS = (0, 10, 5, 1)


def main() -> None:
    source = OUT / "source-1080p30.mp4"
    if not source.exists():
        make_source(source)
    plan = plan_encode(ProfileCatalog.load().get("default"), probe_source(source))
    baseline = 0.0
    for every in SAMPLINGS:
        wall, cpu = time.perf_counter(), time.process_time()
        produced = [o.rendition for o in execute(plan, source, OUT / f"quality_{every}", quality_sample_every=every)
                    if o.rendition is not None]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        baseline = baseline or cpu
        label = "no report" if not every else f"every {every}"
        print(f"quality {label:>9}: {cpu:5.1f} CPU-s ({cpu / baseline - 1:+.0%}), wall {wall:5.1f} s")
        for rendition in produced:
            if rendition.quality is not None:
                q = rendition.quality
                print(f"    {rendition.name:>6}: PSNR {q.psnr_db:.2f} dB  SSIM {q.ssim:.4f}  "
                      f"XPSNR {q.xpsnr_db:.2f} dB  ({q.frames_compared} frames)")


if __name__ == "__main__":
    main()
