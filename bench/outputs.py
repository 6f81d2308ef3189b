"""Every output of the default profile at once: our one pass against the
ffmpeg CLI doing the same, and what packaging HLS + DASH adds to the ladder.

    make bench BENCH=outputs   (or: .venv/bin/python bench/outputs.py [--runs 3])

On the ladder bench's 10 s 1080p30 clip (bench/out/), alternated in one run:

  ours      probe + plan + execute of the default profile, as the worker runs it:
            the MP4 ladder, the HLS + DASH presentation cut from the ladder's own
            packets, whatever stills the profile has (poster, thumbnails, storyboard), and the
            quality report of every rung (every 5th frame, as the worker does)
  ffmpeg    Debian's ffmpeg CLI, in ONE command: one decode, the same filter graph
            (every rung scaled from the source), the same x264/AAC settings, the
            tee muxer sending each encode to its MP4 and to the `dash` muxer with
            `hls_playlist` (HLS + DASH over one set of CMAF segments), the
            `thumbnail` filter for the poster, `fps` for the thumbnails and `fps` +
            `tile` for the storyboard;
            then the quality report, which ffmpeg 5.1 cannot make in the same
            command (no decoder of its own outputs): a second command decoding
            source and renditions once, with `psnr` on every 5th frame
  ladder    ours with the video outputs only (the MP4 ladder), quality report off
  +adaptive ours with the video outputs and the adaptive one, quality report off

and prints the medians and the lines

  outputs vs ffmpeg CLI: ratio ours/ffmpeg = N.NN      (wall time, target <= 1.00)
  packaging overhead = N.N%                            (+adaptive against ladder, CPU time, target <= 5%)

CPU time is the packaging overhead's measure: both sides are ours, with the
same threads, and CPU seconds barely move with what else runs on the machine.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transcode_ladder import HEIGHT, OUT, SECONDS, cpu_seconds, make_source, resource  # noqa: E402

from services.process_svc.execute import execute, probe_source  # noqa: E402
from services.process_svc.execute.quality import DEFAULT_SAMPLE_EVERY  # noqa: E402
from services.process_svc.plan import EncodePlan, plan_encode  # noqa: E402
from services.process_svc.profiles import ProfileCatalog  # noqa: E402

TARGET_RATIO = 1.00
TARGET_OVERHEAD = 0.05


def _outputs(profile: Any, kind: str) -> list[Any]:
    return [output for output in profile.outputs if output.kind == kind]


def _with_outputs(profile: Any, *kinds: str) -> Any:
    """The profile with only the outputs of these types."""
    return profile.model_copy(update={"outputs": tuple(o for o in profile.outputs if o.kind in kinds)})


def ffmpeg_outputs_command(plan: EncodePlan, profile: Any, source: Path, out: Path) -> list[str]:
    """One ffmpeg command making what the profile asks for, from one encode per rung."""
    graph = [plan.filter_complex("ladder")]
    posters, storyboards = _outputs(profile, "poster"), _outputs(profile, "storyboard")
    thumbnails = _outputs(profile, "thumbnails")
    branches = (["ladder"] + ["poster"] * bool(posters) + ["thumbnails"] * bool(thumbnails)
                + ["storyboard"] * bool(storyboards))
    graph.insert(0, f"[0:v:0]split={len(branches)}" + "".join(f"[{b}]" for b in branches))
    extra: list[str] = []
    if posters:
        width = posters[0].width or plan.renditions[0].width
        # thumbnail: the most representative frame of each 100; the first pick is the poster.
        graph.append(f"[poster]thumbnail=100,scale={width}:-2,split=2[poster_jpg][poster_webp]")
        extra += ["-map", "[poster_jpg]", "-frames:v", "1", str(out / "images/poster.jpg"),
                  "-map", "[poster_webp]", "-frames:v", "1", "-c:v", "libwebp", str(out / "images/poster.webp")]
    if thumbnails:
        spread = thumbnails[0]
        # `count` pictures at even intervals over the video.
        graph.append(f"[thumbnails]fps={spread.count}/{plan.source.duration_seconds:g},"
                     f"scale={spread.width}:-2[thumbnail_jpg]")
        extra += ["-map", "[thumbnail_jpg]", "-frames:v", str(spread.count), str(out / "images/thumb-%04d.jpg")]
    if storyboards:
        board = storyboards[0]
        tiles = max(1, math.ceil(plan.source.duration_seconds / board.interval_seconds))
        rows = math.ceil(tiles / board.columns)
        graph.append(f"[storyboard]fps=1/{board.interval_seconds:g},scale={board.tile_width}:-2,"
                     f"tile={board.columns}x{rows}[storyboard_jpg]")
        extra += ["-map", "[storyboard_jpg]", "-frames:v", "1", str(out / "images/storyboard.jpg")]
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-noautorotate",
               "-i", str(source), "-filter_complex", ";".join(graph)]
    for index in range(len(plan.renditions)):
        command += ["-map", f"[v{index}]"]
    if plan.audio is not None:
        command += ["-map", "0:a:0"]
    command += ["-c:v", plan.renditions[0].encoder, "-pix_fmt", plan.renditions[0].pix_fmt, "-fps_mode", "passthrough"]
    widest = plan.renditions[0]
    for index, rendition in enumerate(plan.renditions):
        for option, value in rendition.encoder_options().items():
            command += [f"-{option}:v:{index}", value]
        command += [f"-force_key_frames:v:{index}", rendition.force_key_frames]  # keyframes by time, as ours
        # The dash muxer refuses rungs whose display aspects differ by a hair (854x480 against 16:9), which
        # an adaptation set of ours allows; the same aspect on every rung makes it take them.
        command += [f"-aspect:v:{index}", f"{widest.width}:{widest.height}"]
    if plan.audio is not None:
        command += ["-c:a", plan.audio.encoder, "-b:a", str(plan.audio.bitrate), "-ar", str(plan.audio.sample_rate),
                    "-ac", str(plan.audio.channels)]
    audio = ",a" if plan.audio is not None else ""
    slaves = [f"[select=\\'v:{index}{audio}\\':f=mp4:movflags=+faststart]{out}/renditions/{rendition.file_name}"
              for index, rendition in enumerate(plan.renditions)]
    adaptive = _outputs(profile, "adaptive")
    if adaptive:
        sets = "id=0,streams=v" + (" id=1,streams=a" if plan.audio is not None else "")
        slaves.append(f"[f=dash:seg_duration={adaptive[0].segment_seconds:g}:hls_playlist=1:use_template=1:"
                      f"use_timeline=1:adaptation_sets=\\'{sets}\\']{out}/presentation/manifest.mpd")
    command += ["-f", "tee", "|".join(slaves)]
    return command + extra


def ffmpeg_quality_command(plan: EncodePlan, source: Path, out: Path, sample_every: int) -> list[str]:
    """PSNR of every rung against the source through the same graph, on every Nth frame."""
    command = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-noautorotate", "-i", str(source)]
    graph = [plan.filter_complex("0:v:0")]
    for index, rendition in enumerate(plan.renditions):
        command += ["-i", str(out / "renditions" / rendition.file_name)]
        pick = f"select='not(mod(n\\,{sample_every}))'"
        graph.append(f"[v{index}]{pick}[ref{index}];[{index + 1}:v:0]{pick}[enc{index}];"
                     f"[enc{index}][ref{index}]psnr[q{index}]")
    command += ["-filter_complex", ";".join(graph)]
    for index in range(len(plan.renditions)):
        command += ["-map", f"[q{index}]", "-f", "null", "-"]
    return command


def run_ffmpeg(commands: list[list[str]], out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    for folder in ("renditions", "presentation", "images"):
        (out / folder).mkdir(parents=True)
    cpu, started = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True)
    return time.perf_counter() - started, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu


def run_ours(profile: Any, source: Path, out: Path, quality_sample_every: int) -> tuple[float, float, list[Any]]:
    shutil.rmtree(out, ignore_errors=True)
    cpu, started = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    plan = plan_encode(profile, probe_source(source))
    produced = execute(plan, source, out, quality_sample_every=quality_sample_every)
    seconds, used = time.perf_counter() - started, cpu_seconds(resource.RUSAGE_SELF) - cpu
    failed = [f"{p.name}: {p.error}" for p in produced if getattr(p, "error", "")]
    if failed:
        raise SystemExit(f"an output failed: {'; '.join(failed)}")
    return seconds, used, produced


def _files(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return f"{len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each pipeline (alternated)")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("the bench needs the ffmpeg CLI: apt-get install -y ffmpeg", file=sys.stderr)
        return 1
    source = OUT / f"source-{HEIGHT}p30.mp4"
    if not source.exists():
        print(f"making {source.relative_to(ROOT)} ({SECONDS} s 1080p30 with audio)...", flush=True)
        make_source(source)
    profile = ProfileCatalog.load().get("default")
    info = probe_source(source)
    kinds = sorted({o.kind for o in profile.outputs})
    if "adaptive" not in kinds:
        print("the default profile has no adaptive output: nothing to compare", file=sys.stderr)
        return 1
    variants = {
        "ours": (profile, DEFAULT_SAMPLE_EVERY),
        "ladder": (_with_outputs(profile, "video"), 0),
        "+adaptive": (_with_outputs(profile, "video", "adaptive"), 0),
    }
    direct = plan_encode(profile, info, cascade=False)
    ffmpeg_out = OUT / "outputs-ffmpeg"
    commands = [ffmpeg_outputs_command(direct, profile, source, ffmpeg_out),
                ffmpeg_quality_command(direct, source, ffmpeg_out, DEFAULT_SAMPLE_EVERY)]
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"source   {source.relative_to(ROOT)}: {info.width}x{info.height} {float(info.fps):g} fps "
          f"{info.duration_seconds:.1f} s")
    print(f"profile  default: {', '.join(f'{o.kind} {o.name}' for o in profile.outputs)}")
    print(f"ffmpeg   {version}")
    for number, command in enumerate(commands, start=1):
        print(f"command {number} {' '.join(command)}")
    print(flush=True)

    wall: dict[str, list[float]] = {name: [] for name in [*variants, "ffmpeg"]}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    for run in range(1, args.runs + 1):
        for name, (variant, quality) in variants.items():
            seconds, used, _ = run_ours(variant, source, OUT / f"outputs-{name.strip('+')}", quality)
            wall[name].append(seconds)
            cpu[name].append(used)
            print(f"run {run}  {name:<10} {seconds:6.2f} s  cpu {used:6.2f} s", flush=True)
            if name == "ours":
                seconds, used = run_ffmpeg(commands, ffmpeg_out)
                wall["ffmpeg"].append(seconds)
                cpu["ffmpeg"].append(used)
                print(f"run {run}  {'ffmpeg':<10} {seconds:6.2f} s  cpu {used:6.2f} s", flush=True)

    print()
    for name in wall:
        print(f"median   {name:<10} wall {statistics.median(wall[name]):6.2f} s   "
              f"cpu {statistics.median(cpu[name]):6.2f} s")
    print(f"made     ours: {_files(OUT / 'outputs-ours')}; ffmpeg: {_files(ffmpeg_out)}")
    ratio = statistics.median(wall["ours"]) / statistics.median(wall["ffmpeg"])
    cpu_ratio = statistics.median(cpu["ours"]) / statistics.median(cpu["ffmpeg"])
    overhead = statistics.median(cpu["+adaptive"]) / statistics.median(cpu["ladder"]) - 1
    wall_overhead = statistics.median(wall["+adaptive"]) / statistics.median(wall["ladder"]) - 1
    print(f"\noutputs vs ffmpeg CLI: ratio ours/ffmpeg = {ratio:.2f}  "
          f"({'meets' if ratio <= TARGET_RATIO else 'misses'} the target <= {TARGET_RATIO:.2f}; "
          f"cpu ratio {cpu_ratio:.2f})")
    print(f"packaging overhead = {overhead * 100:.1f}%  (cpu; wall {wall_overhead * 100:+.1f}%; "
          f"{'meets' if overhead <= TARGET_OVERHEAD else 'misses'} the target <= {TARGET_OVERHEAD * 100:.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
