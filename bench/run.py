"""`make bench` runs every benchmark; `make bench BENCH=<name>` runs one.

Each benchmark is a script in bench/ that prints its own figures; a name may
run several scripts (`dispatch` prints the dispatch latency, then the
progress latency once bench/progress_latency.py exists)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, list[str]] = {
    "ladder": ["transcode_ladder.py"],
    "dispatch": ["dispatch_latency.py", "progress_latency.py"],
    "fairness": ["fairness.py"],
    "workers": ["workers.py"],
    "stills": ["stills_cost.py"],
    "compression": ["compression.py"],
    "codecs": ["codec_profiles.py"],
    "upload": ["upload.py"],
    "telemetry": ["telemetry_overhead.py"],
    "outputs": ["outputs.py"],
}


def run(name: str) -> int:
    if name == "upload" and shutil.which("curl") is None:
        print("bench upload needs curl: apt-get install -y curl")
        return 1
    if name in ("ladder", "outputs") and shutil.which("ffmpeg") is None:
        print("bench needs the ffmpeg CLI: apt-get install -y ffmpeg")
        return 1
    status = 0
    for script in BENCHMARKS[name]:
        if not (HERE / script).exists():
            continue  # a part another change adds
        status = subprocess.call([sys.executable, str(HERE / script)], cwd=HERE) or status
    return status


def main(argv: list[str]) -> int:
    names = [n for n in argv if n] or ["all"]
    if names == ["all"]:
        names = list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; there are: {', '.join(BENCHMARKS)}")
        return 2
    status = 0
    for name in names:
        status = run(name) or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
