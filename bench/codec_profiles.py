"""Each shipped codec profile's whole ladder on the 10 s 1080p30 bench source,
against the `default` H.264 ladder run alternately in the same process, so the
shared machine's load hits both: wall seconds, CPU seconds, x realtime, the
ratio to `default`, and each rung's size, bitrate and PSNR (the quality
report, every 5th frame).

    make bench BENCH=codecs                 # every profile, 1 run each
    .venv/bin/python bench/codec_profiles.py --runs 3 --profiles hevc webm
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.transcode_ladder import OUT, make_source  # noqa: E402
from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.execute.verify import ProducedRendition  # noqa: E402
from services.process_svc.plan import plan_encode  # noqa: E402
from services.process_svc.profiles import ProfileCatalog  # noqa: E402

PROFILES = ("hevc", "modern", "webm")
PEER = "default"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(profile: str, source: Path) -> tuple[float, float, list[ProducedRendition]]:
    out_dir = OUT / f"codecs-{profile}"
    shutil.rmtree(out_dir, ignore_errors=True)
    plan = plan_encode(ProfileCatalog.load().get(profile), probe_source(source))
    cpu, started = cpu_seconds(), time.perf_counter()
    produced = [o.rendition for o in execute(plan, source, out_dir, quality_sample_every=5) if o.rendition is not None]
    return time.perf_counter() - started, cpu_seconds() - cpu, produced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each profile, each next to a run of default")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=PROFILES)
    args = parser.parse_args()
    source = OUT / "source-1080p30.mp4"
    if not source.exists():
        make_source(source)
    duration = probe_source(source).duration_seconds
    print(f"source {source.relative_to(ROOT)}: 1920x1080 30 fps {duration:.1f} s; peer: the {PEER} profile\n",
          flush=True)
    for profile in args.profiles:
        walls: dict[str, list[float]] = {profile: [], PEER: []}
        cpus: dict[str, list[float]] = {profile: [], PEER: []}
        produced: dict[str, list[ProducedRendition]] = {}
        for number in range(1, args.runs + 1):
            for name in (profile, PEER):
                wall, cpu, made = run(name, source)
                walls[name].append(wall)
                cpus[name].append(cpu)
                produced[name] = made
                print(f"run {number} {name:8} {wall:7.1f} s wall ({duration / wall:.2f}x realtime), "
                      f"cpu {cpu:7.1f} s", flush=True)
        ours, peer = statistics.median(walls[profile]), statistics.median(walls[PEER])
        print(f"{profile}: median {ours:.1f} s wall = {duration / ours:.2f}x realtime, "
              f"cpu {statistics.median(cpus[profile]):.1f} s; {ours / peer:.2f}x the wall time of {PEER} "
              f"({peer:.1f} s)")
        for name in (profile, PEER):
            for rendition in produced[name]:
                psnr = f"{rendition.quality.psnr_db:.2f} dB" if rendition.quality else "-"
                print(f"  {name:8} {rendition.name:6} {rendition.video_codec:5} {rendition.container:5} "
                      f"{rendition.width}x{rendition.height} {rendition.size_bytes / 1e6:6.2f} MB "
                      f"{rendition.bitrate / 1e6:5.2f} Mb/s PSNR {psnr}")
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
