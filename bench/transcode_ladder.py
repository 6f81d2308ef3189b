"""Transcoding speed: the process service's executor against the ffmpeg CLI.

    make bench            (or: .venv/bin/python bench/transcode_ladder.py [--runs 3])

Makes a 10 s 1080p30 clip with audio (PyAV, cached in bench/out/), then runs
the default profile's ladder alternately through

  ours    probe_source + plan_encode + execute: the worker's own code path,
          with its cascade (each rung scaled from the rung above)
  ffmpeg  the ffmpeg CLI (Debian's) as its users write a ladder: one decode,
          filter_complex split, every rung scaled from the source

and prints each run, the medians and the ratio ours/ffmpeg (target <= 0.90),
the graph each side ran, what each produced, and each rendition's PSNR
against the source scaled straight to its size, so the quality the cascade
costs is measured per rung. The ffmpeg command is built from the same
EncodePlan without the cascade (filters, x264 options, AAC settings), so the
settings cannot drift apart. One more difference is by design and stated:
ffmpeg encodes AAC once per output file, ours once for all of them.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.execute.thread_budget import encoder_threads  # noqa: E402
from services.process_svc.execute.verify import ProducedRendition  # noqa: E402
from services.process_svc.plan import EncodePlan, Profile, plan_encode  # noqa: E402
from services.process_svc.profiles import ProfileCatalog  # noqa: E402

OUT = ROOT / "bench" / "out"
SECONDS, WIDTH, HEIGHT, FPS, SAMPLE_RATE = 10, 1920, 1080, 30, 48000
TARGET = 0.90  # ours/ffmpeg wall time


def make_source(path: Path) -> Path:
    """A 10 s 1080p30 H.264/AAC clip with detail to encode: FFmpeg's testsrc2
    pattern under light temporal grain (flat synthetic colour would flatter
    both encoders), and a two-tone stereo signal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    graph = av.filter.Graph()
    pattern = graph.add("testsrc2", f"size={WIDTH}x{HEIGHT}:rate={FPS}:duration={SECONDS}")
    grain = graph.add("noise", "alls=3:allf=t")
    pixels = graph.add("format", "yuv420p")
    sink = graph.add("buffersink")
    pattern.link_to(grain)
    grain.link_to(pixels)
    pixels.link_to(sink)
    graph.configure()
    with av.open(str(partial), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.thread_type = "AUTO"
        video.options = {"preset": "veryfast", "crf": "18", "g": str(FPS)}  # a mezzanine-like source
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.bit_rate = 192_000
        while True:
            try:
                frame = sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            frame.pict_type = 0
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, SECONDS * SAMPLE_RATE, 1024):
            t = np.arange(start, min(start + 1024, SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
            left = 0.2 * np.sin(2 * np.pi * 440 * t)
            right = 0.2 * np.sin(2 * np.pi * 660 * t)
            frame = av.AudioFrame.from_ndarray(np.stack([left, right]).astype(np.float32), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    partial.replace(path)
    return path


def ffmpeg_ladder_command(plan: EncodePlan, source: Path, out_dir: Path) -> list[str]:
    """The ffmpeg CLI equivalent of `plan`: one decode, the plan's own filter
    graph, the plan's own x264 options per rung, AAC as the plan says."""
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
               "-noautorotate",  # the plan's own upright filters do the turning, as in ours
               "-i", str(source), "-filter_complex", plan.filter_complex("0:v:0")]
    for index, rendition in enumerate(plan.renditions):
        command += ["-map", f"[v{index}]"]
        if plan.audio is not None:
            command += ["-map", "0:a:0"]
        command += ["-c:v", rendition.encoder, "-pix_fmt", rendition.pix_fmt, "-fps_mode", "passthrough"]
        for option, value in rendition.encoder_options().items():
            command += [f"-{option}:v", value]
        command += ["-force_key_frames:v", rendition.force_key_frames]  # keyframes by time, as ours
        if plan.audio is not None:
            command += ["-c:a", plan.audio.encoder, "-b:a", str(plan.audio.bitrate),
                        "-ar", str(plan.audio.sample_rate), "-ac", str(plan.audio.channels)]
        command += ["-movflags", "+faststart", str(out_dir / rendition.file_name)]
    return command


def psnr_db(rendition: Path, source: Path, width: int, height: int) -> float:
    """Average PSNR (all planes) of a rendition against the source scaled straight to its size."""
    graph = (f"[1:v]scale=w={width}:h={height}:flags=bicubic,format=yuv420p[ref];"
             "[0:v]format=yuv420p[out];[out][ref]psnr")
    result = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", str(rendition), "-i", str(source),
                             "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, check=True)
    line = next(line for line in result.stderr.splitlines() if "PSNR" in line and "average:" in line)
    return float(line.split("average:")[1].split()[0])


def ladder_profile() -> Profile:
    """The default profile's MP4 ladder alone: its other outputs (HLS/DASH, stills) have benches of their own
    (bench/outputs.py), and the ffmpeg peer here makes the ladder only."""
    profile = ProfileCatalog.load().get("default")
    return profile.model_copy(update={"outputs": tuple(o for o in profile.outputs if o.kind == "video")})


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_ours(source: Path, out_dir: Path) -> tuple[float, float, list[ProducedRendition]]:
    """Wall and CPU seconds of the worker's code path, and what it produced."""
    shutil.rmtree(out_dir, ignore_errors=True)
    cpu, started = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    plan = plan_encode(ladder_profile(), probe_source(source))
    # The ffmpeg peer measures no quality: ours does not either here (bench/quality_cost.py prices the report).
    produced = [o.rendition for o in execute(plan, source, out_dir, quality_sample_every=0) if o.rendition is not None]
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_SELF) - cpu, produced


def run_ffmpeg(command: list[str], out_dir: Path) -> tuple[float, float]:
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    cpu, started = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def describe(path: Path) -> str:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        duration = container.duration / av.time_base
    size = path.stat().st_size
    width, height = video.codec_context.width, video.codec_context.height
    return f"{width}x{height} {size / 1e6:7.2f} MB {size * 8 / duration / 1e6:6.2f} Mb/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each pipeline (alternated)")
    parser.add_argument("--regenerate", action="store_true", help="make the source clip again")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("the bench needs the ffmpeg CLI: apt-get install -y ffmpeg", file=sys.stderr)
        return 1

    source = OUT / f"source-{HEIGHT}p{FPS}.mp4"
    if args.regenerate or not source.exists():
        print(f"making {source.relative_to(ROOT)} ({SECONDS} s {WIDTH}x{HEIGHT}@{FPS} with audio)...", flush=True)
        make_source(source)
    plan = plan_encode(ladder_profile(), probe_source(source))
    direct = plan_encode(ladder_profile(), probe_source(source), cascade=False)
    ours_dir, ffmpeg_dir = OUT / "ours", OUT / "ffmpeg"
    command = ffmpeg_ladder_command(direct, source, ffmpeg_dir)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"source   {source.relative_to(ROOT)}: {plan.source.width}x{plan.source.height} "
          f"{float(plan.source.fps):g} fps {plan.source.duration_seconds:.1f} s")
    print(f"ladder   {', '.join(f'{r.name} {r.width}x{r.height}' for r in plan.renditions)}; "
          f"x264 {plan.renditions[0].encoder_options()}; AAC {plan.audio.bitrate // 1000 if plan.audio else 0}k")
    print(f"ours     PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions['libavcodec']))} libavcodec)")
    print(f"ffmpeg   {version}")
    print("quality  report off on both sides (its cost: bench/quality_cost.py)")
    print(f"threads  ours: x264 threads per rung {encoder_threads(plan.renditions)} (thread_budget.py); "
          "ffmpeg: x264's own choice")
    print(f"graph    ours   (cascade) {plan.filter_complex('0:v:0')}")
    print(f"graph    ffmpeg (direct)  {direct.filter_complex('0:v:0')}")
    print(f"command  {' '.join(command)}\n", flush=True)

    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    realtime = plan.source.duration_seconds
    produced: list[ProducedRendition] = []
    for run in range(1, args.runs + 1):
        seconds, cpu, produced = run_ours(source, ours_dir)
        ours.append(seconds)
        ours_cpu.append(cpu)
        print(f"run {run}  ours   {seconds:6.2f} s  ({realtime / seconds:.2f}x realtime, cpu {cpu:6.2f} s)", flush=True)
        seconds, cpu = run_ffmpeg(command, ffmpeg_dir)
        theirs.append(seconds)
        theirs_cpu.append(cpu)
        print(f"run {run}  ffmpeg {seconds:6.2f} s  ({realtime / seconds:.2f}x realtime, cpu {cpu:6.2f} s)", flush=True)

    ours_median, ffmpeg_median = statistics.median(ours), statistics.median(theirs)
    ratio = ours_median / ffmpeg_median
    print(f"\nmedian   ours {ours_median:.2f} s   ffmpeg {ffmpeg_median:.2f} s")
    # The best run is what each pipeline does when nothing else competes for the cores.
    print(f"best     ours {min(ours):.2f} s   ffmpeg {min(theirs):.2f} s   ratio {min(ours) / min(theirs):.2f}")
    # CPU time barely depends on what else runs on the machine: the steadier figure on a shared host.
    cpu_ratio = statistics.median(ours_cpu) / statistics.median(theirs_cpu)
    print(f"cpu      ours {statistics.median(ours_cpu):.2f} s   ffmpeg {statistics.median(theirs_cpu):.2f} s   "
          f"ratio {cpu_ratio:.2f} (medians)")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"ratio    ours/ffmpeg = {ratio:.2f}  ({verdict} the target <= {TARGET:.2f})\n")
    print(f"{'rendition':<10} {'ours (cascade)':<36} {'ffmpeg (direct)':<36} PSNR ours / ffmpeg / cascade difference")
    for rendition in produced:
        theirs_path = ffmpeg_dir / rendition.path.name
        ours_psnr = psnr_db(rendition.path, source, rendition.width, rendition.height)
        theirs_psnr = psnr_db(theirs_path, source, rendition.width, rendition.height)
        print(f"{rendition.name:<10} {describe(rendition.path):<36} {describe(theirs_path):<36} "
              f"{ours_psnr:.2f} / {theirs_psnr:.2f} / {ours_psnr - theirs_psnr:+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
