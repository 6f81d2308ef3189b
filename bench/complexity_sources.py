"""Sources of clearly different complexity for the compression benchmark, made
with PyAV's FFmpeg sources and filters (no binary fixtures, no network).

    slides     a static screen capture: four slides of text-like lines and a chart,
               one every quarter of the clip, and a pointer that moves now and then
    animation  a zoom into the Mandelbrot set: smooth gradients, fine moving detail
    natural    moderate natural motion: a drifting cloud/water texture (perlin noise)
               panned slowly, under light camera grain
    noisy      high motion under heavy grain: testsrc2 scrolling fast, strong temporal noise

Each is encoded as a mezzanine would be (H.264 CRF 14, a keyframe every 2 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
import numpy as np

KINDS = ("slides", "animation", "natural", "noisy")


def make_source(kind: str, path: Path, *, seconds: float = 20.0, width: int = 1920, height: int = 1080,
                fps: int = 30) -> Path:
    """Writes the source `kind` to path (an MP4), unless it is already there; returns path."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    frames = round(seconds * fps)
    pictures = _slides(width, height, frames, fps) if kind == "slides" else _filtered(kind, width, height, fps, frames)
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_type = "AUTO"
        stream.options = {"preset": "veryfast", "crf": "14", "g": str(2 * fps), "keyint_min": str(2 * fps),
                          "sc_threshold": "0"}
        for index, frame in enumerate(pictures):
            frame.pts, frame.time_base = index, Fraction(1, fps)
            frame.pict_type = 0
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    partial.rename(path)
    return path


def _filtered(kind: str, width: int, height: int, fps: int, frames: int) -> Iterator[av.VideoFrame]:
    size = f"{width}x{height}"
    chains = {
        # Rendered at two thirds of the size (the fractal is costly), scaled up as an animation's master is.
        "animation": [("mandelbrot", f"size={width * 2 // 3}x{height * 2 // 3}:rate={fps}:start_scale=3:end_scale=0.05"
                                     ":end_pts=2000:bailout=10:maxiter=256"),
                      ("scale", f"{width}:{height}:flags=bicubic")],
        "natural": [("perlin", f"size={width // 4}x{height // 4}:rate={fps}:octaves=5:persistence=0.6:tscale=0.08"
                               ":xscale=0.7:yscale=0.7:random_mode=seed:random_seed=7"),
                    ("scale", f"{width}:{height}:flags=bicubic"),
                    ("format", "yuv420p"),
                    ("geq", "lum='lum(X,Y)':cb='128+(lum(X,Y)-128)*0.25':cr='128-(lum(X,Y)-128)*0.15'"),
                    ("scroll", "horizontal=0.0008:vertical=0.0003"),
                    ("noise", "alls=4:allf=t")],
        "noisy": [("testsrc2", f"size={size}:rate={fps}"),
                  ("scroll", "horizontal=0.01:vertical=0.004"),
                  ("noise", "alls=12:allf=t+u")],
    }
    graph = av.filter.Graph()
    head = None
    for name, args in [*chains[kind], ("format", "yuv420p")]:
        node = graph.add(name, args)
        if head is not None:
            head.link_to(node)
        head = node
    sink = graph.add("buffersink")
    assert head is not None
    head.link_to(sink)
    graph.configure()
    for _ in range(frames):
        yield sink.pull()


def _slides(width: int, height: int, frames: int, fps: int) -> Iterator[av.VideoFrame]:
    rng = np.random.default_rng(3)
    slides = [_slide(rng, width, height, n) for n in range(4)]
    per_slide = max(1, frames // len(slides))
    pointer = np.zeros((24, 16, 3), dtype=np.uint8)
    for row in range(24):
        pointer[row, :max(1, min(16, row * 2 // 3))] = 20
    x, y = width // 2, height // 2
    for index in range(frames):
        picture = slides[min(index // per_slide, len(slides) - 1)].copy()
        if (index // fps) % 3 == 1:  # the pointer moves one second in three
            x = (x + 9) % (width - 16)
            y = (y + 4) % (height - 24)
        picture[y:y + 24, x:x + 16] = np.minimum(picture[y:y + 24, x:x + 16], pointer + 235 * (pointer == 0))
        yield av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")


def _slide(rng: np.random.Generator, width: int, height: int, number: int) -> np.ndarray:
    picture = np.full((height, width, 3), 248, dtype=np.uint8)
    unit = max(1, height // 54)  # 20 px at 1080p
    accent = np.array([(30, 80, 160), (160, 40, 40), (30, 120, 60), (120, 60, 140)][number], dtype=np.uint8)
    picture[:unit * 5] = accent  # title bar
    _text(picture, rng, unit * 1.5, unit * 2, width // 2, unit * 2, (255, 255, 255))
    top = unit * 8
    for line in range(14):  # body text, left column
        _text(picture, rng, top + line * unit * 2.2, unit * 3, width // 2, unit, (30, 30, 30))
    left, bottom = width * 6 // 10, top + unit * 30
    for bar in range(6):  # a bar chart, right column
        bar_height = int(rng.integers(unit * 4, unit * 26))
        x0 = left + bar * unit * 6
        picture[bottom - bar_height:bottom, x0:x0 + unit * 4] = accent
    picture[bottom:bottom + 2, left:left + unit * 36] = 0
    return picture


def _text(picture: np.ndarray, rng: np.random.Generator, top: float, left: int, width: int, size: int,
          colour: tuple[int, int, int]) -> None:
    """A line of glyph-like strokes: words of narrow dark marks, as text is to an encoder."""
    y = int(top)
    x = left
    while x < left + width:
        for _ in range(int(rng.integers(2, 9))):  # a word
            glyph = int(rng.integers(max(2, size // 3), size))
            mask = rng.random((size, glyph)) < 0.45
            region = picture[y:y + size, x:x + glyph]
            region[mask[:region.shape[0], :region.shape[1]]] = colour
            x += glyph + max(1, size // 6)
        x += size
