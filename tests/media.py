"""Synthetic test media, made with PyAV: no binary fixtures in the repo."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, *, seconds: float = 2.0, width: int = 640, height: int = 360, fps: int = 30,
              audio: bool = True, video: bool = True, codec: str = "libx264", sample_rate: int = 48000) -> Path:
    """Writes a clip of moving colour bars (and a 440 Hz tone) to path; the container follows the suffix."""
    frames = round(seconds * fps)
    with av.open(str(path), "w") as container:
        vstream = None
        if video:
            vstream = container.add_stream(codec, rate=fps)
            vstream.width, vstream.height = width, height
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"preset": "ultrafast"} if codec == "libx264" else {}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=sample_rate)
            astream.layout = "stereo"
        if vstream is not None:
            x = np.arange(width, dtype=np.int32)[None, :]
            y = np.arange(height, dtype=np.int32)[:, None]
            for i in range(frames):
                rgb = np.empty((height, width, 3), dtype=np.uint8)
                rgb[..., 0] = (x * 255 // max(width - 1, 1) + i * 4) % 256
                rgb[..., 1] = (y * 255 // max(height - 1, 1) + i * 2) % 256
                rgb[..., 2] = (i * 8) % 256
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        if astream is not None:
            samples_per_frame = 1024
            total = round(seconds * sample_rate)
            t = 0
            while t < total:
                n = min(samples_per_frame, total - t)
                tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(t, t + n) / sample_rate))).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                frame.sample_rate = sample_rate
                frame.pts = t
                frame.time_base = Fraction(1, sample_rate)
                container.mux(astream.encode(frame))
                t += n
            container.mux(astream.encode(None))
    return path


def decoded_summary(path: Path) -> dict:
    """What a player would see: video size, frame count, duration, whether there is audio."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
    with av.open(str(path)) as container:
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        has_audio = bool(container.streams.audio)
        width, height = container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height
    return {"width": width, "height": height, "frames": frames, "duration": duration, "has_audio": has_audio}


CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)")


def parse_vtt(text: str) -> list[tuple[float, float, str, tuple[int, int, int, int]]]:
    """The cues of a storyboard WebVTT, checked against the format as players read it."""
    assert text.startswith("WEBVTT\n\n")
    blocks = [b for b in text[len("WEBVTT\n\n"):].split("\n\n") if b.strip()]
    cues = []
    for block in blocks:
        match = CUE.fullmatch(block.strip())
        assert match, f"not a storyboard cue: {block!r}"
        g = [int(x) if x.isdigit() else x for x in match.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, str(g[8]), (g[9], g[10], g[11], g[12])))
    return cues


def renditions_made(outputs: list) -> list:
    """The renditions of execute()'s outputs, each checked to have completed."""
    failed = [(o.name, o.error) for o in outputs if o.failed]
    assert not failed, f"outputs failed: {failed}"
    return [o.rendition for o in outputs if o.rendition is not None]
