"""Awkward sources, made with PyAV: interlaced (flagged and not), full-range,
mid-stream changes, timestamp gaps. Each is what a camera, a capture card or
a careless edit really produces, in a few hundred kilobytes."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _moving_bars(width: int, height: int, t: float) -> np.ndarray:
    """Vertical bars sweeping right, 3 px per unit of t: sharp edges, so combing shows."""
    x = np.arange(width)[None, :]
    bars = (((x + int(t * 3)) // 16) % 2 * 200 + 28).astype(np.uint8)
    return np.repeat(np.repeat(bars, height, axis=0)[..., None], 3, axis=2)


def woven_frames(width: int, height: int, frames: int) -> Iterator[np.ndarray]:
    """Each frame holds two fields half a frame apart in time (top field first), as 576i/1080i video does."""
    for i in range(frames):
        top, bottom = _moving_bars(width, height, 2 * i), _moving_bars(width, height, 2 * i + 1)
        woven = top.copy()
        woven[1::2] = bottom[1::2]
        yield woven


def make_interlaced_clip(path: Path, *, flagged: bool, width: int = 720, height: int = 576, frames: int = 50,
                         fps: int = 25) -> Path:
    """Interlaced 576i-style H.264: coded as fields and flagged top-field-first when `flagged`, else
    combed pictures in a stream that claims to be progressive."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18", **({"x264-params": "tff=1"} if flagged else {})}
        for i, rgb in enumerate(woven_frames(width, height, frames)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_full_range_clip(path: Path, *, luma: int, width: int = 320, height: int = 240, frames: int = 30,
                         fps: int = 30) -> Path:
    """A flat grey picture at `luma` on the full 0-255 scale, in yuvj420p tagged color_range=pc, as
    phones and webcams write MJPEG/H.264."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        stream.codec_context.color_range = 2  # JPEG / full
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuvj420p")
            frame.planes[0].update(np.full((height, frame.planes[0].line_size), luma, np.uint8).tobytes())
            for plane in frame.planes[1:]:
                plane.update(np.full((height // 2, plane.line_size), 128, np.uint8).tobytes())
            frame.color_range = 2
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def idet_counts(path: Path) -> dict[str, int]:
    """What FFmpeg's idet finds over a whole file: tff, bff, progressive frame counts."""
    from services.process_svc.execute.probe import field_votes

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {kind: int(count) for kind, count in field_votes(video, container.decode(video)).items()}


def _rgb(width: int, height: int, i: int) -> np.ndarray:
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (x * 255 // max(width - 1, 1) + i * 4) % 256
    rgb[..., 1] = (y * 255 // max(height - 1, 1) + i * 2) % 256
    rgb[..., 2] = (i * 8) % 256
    return rgb


def make_changing_clip(path: Path, parts: list[tuple[int, int, int]], *, seconds_each: float = 1.0,
                       fps: int = 25) -> Path:
    """An MPEG-TS whose picture size and audio sample rate change between parts (width, height,
    sample_rate), timestamps running on, as in a broadcast recording across a programme change: each
    part is muxed on its own with timestamps continuing the previous part, and the parts are joined
    byte by byte (MPEG-TS is made to be cut and joined so)."""
    data = b""
    frames = round(seconds_each * fps)
    for part, (width, height, rate) in enumerate(parts):
        piece = path.with_name(f"{path.stem}.part{part}.ts")
        with av.open(str(piece), "w", format="mpegts") as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"preset": "ultrafast"}
            audio = container.add_stream("aac", rate=rate)
            audio.layout = "stereo"
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(_rgb(width, height, i), format="rgb24")
                frame.pts, frame.time_base = part * frames + i, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
            start, total, t = round(part * seconds_each * rate), round(seconds_each * rate), 0
            while t < total:
                n = min(1024, total - t)
                tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(t, t + n) / rate))).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = rate, start + t, Fraction(1, rate)
                container.mux(audio.encode(frame))
                t += n
            container.mux(audio.encode(None))
        data += piece.read_bytes()
        piece.unlink()
    path.write_bytes(data)
    return path


def make_gapped_clip(path: Path, *, gap_seconds: float, seconds_each: float = 1.0, fps: int = 25,
                     rate: int = 48000, audio: bool = True) -> Path:
    """Two seconds of picture and sound whose clock jumps by gap_seconds in the middle, in every
    stream (a recorder's clock reset): about 2 s of content, stamped as 2 s + the gap."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast"}
        video.time_base = Fraction(1, 1000)
        sound = container.add_stream("aac", rate=rate) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        frames = round(seconds_each * fps)
        for part in range(2):
            offset = part * (seconds_each + gap_seconds)
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(_rgb(320, 240, part * frames + i), format="rgb24")
                frame.pts, frame.time_base = round((offset + i / fps) * 1000), Fraction(1, 1000)
                container.mux(video.encode(frame))
            if sound is None:
                continue
            total, t = round(seconds_each * rate), 0
            while t < total:
                n = min(1024, total - t)
                tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(t, t + n) / rate))).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = rate, round(offset * rate) + t, Fraction(1, rate)
                container.mux(sound.encode(frame))
                t += n
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))
    return path


def _scene_a(width: int, height: int, i: int) -> np.ndarray:
    """A sharp, busy picture: a diagonal checkerboard over a brightness ramp, drifting right."""
    x = np.arange(width, dtype=np.int32)[None, :] + 2 * i
    y = np.arange(height, dtype=np.int32)[:, None]
    checks = ((x // 12 + y // 12) % 2) * 90
    ramp = x * 120 // max(width, 1) % 120
    grey = (40 + checks + ramp).clip(0, 255).astype(np.uint8)
    rgb = np.stack([grey, (grey * 0.8).astype(np.uint8), (255 - grey)], axis=2)
    return rgb


def _scene_b(width: int, height: int, i: int) -> np.ndarray:
    """Another shot, brighter and built of rings, unlike scene A's histogram."""
    x = np.arange(width, dtype=np.float32)[None, :] - width / 2 + i
    y = np.arange(height, dtype=np.float32)[:, None] - height / 2
    rings = (np.sin(np.hypot(x, y) / 4.0) * 60 + 185).clip(0, 255).astype(np.uint8)
    return np.stack([rings, rings, (rings * 0.6).astype(np.uint8)], axis=2)


def _box_blur(rgb: np.ndarray, radius: int) -> np.ndarray:
    """A cheap heavy blur (a box filter applied by cumulative sums along both axes)."""
    out = rgb.astype(np.float32)
    for axis in (0, 1):
        padded = np.concatenate([np.repeat(out.take([0], axis=axis), radius + 1, axis=axis), out,
                                 np.repeat(out.take([-1], axis=axis), radius, axis=axis)], axis=axis)
        summed = np.cumsum(padded, axis=axis)
        size = out.shape[axis]
        out = (summed.take(range(2 * radius + 1, 2 * radius + 1 + size), axis=axis)
               - summed.take(range(0, size), axis=axis)) / (2 * radius + 1)
    return out.clip(0, 255).astype(np.uint8)


# The storyline clip's timeline (seconds): what each stretch is, so tests know where a poster may come from.
STORYLINE = (
    (0.0, 1.5, "black"),
    (1.5, 3.0, "fade in to scene A"),
    (3.0, 5.0, "scene A"),
    (5.0, 5.2, "scene B, blurred after the cut"),
    (5.2, 7.5, "scene B"),
    (7.5, 9.0, "fade out from scene B"),
    (9.0, 10.0, "black"),
)


def storyline_frame(t: float, i: int, width: int, height: int) -> np.ndarray:
    """The storyline clip's picture at time t (frame number i)."""
    if t < 1.5 or t >= 9.0:
        return np.zeros((height, width, 3), np.uint8)
    if t < 3.0:
        return (_scene_a(width, height, i) * ((t - 1.5) / 1.5)).astype(np.uint8)
    if t < 5.0:
        return _scene_a(width, height, i)
    if t < 5.2:
        return _box_blur(_scene_b(width, height, i), 6)
    if t < 7.5:
        return _scene_b(width, height, i)
    return (_scene_b(width, height, i) * ((9.0 - t) / 1.5)).astype(np.uint8)


def make_storyline_clip(path: Path, *, width: int = 640, height: int = 360, fps: int = 25,
                        seconds: float = 10.0) -> Path:
    """A clip as films start and end: black, a fade in to a shot, a hard cut to a second shot whose
    first frames are blurred (a camera finding focus), a fade out, black (STORYLINE)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(storyline_frame(i / fps, i, width, height), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float, *,
               rate: int = 48000, samples: int = 960) -> None:
    """Muxes seconds of a stereo 440 Hz tone through `stream`'s encoder (frames of `samples`), then flushes it."""
    total, t = round(seconds * rate), 0
    while t < total:
        n = min(samples, total - t)
        tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(t, t + n) / rate))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, t, Fraction(1, rate)
        container.mux(stream.encode(frame))
        t += n
    container.mux(stream.encode(None))


def make_browser_recording(path: Path, *, seconds: float = 3.0, width: int = 320, height: int = 240,
                           coarse_clock: bool = False) -> Path:
    """A WebM as a browser's MediaRecorder writes it: VP9 + Opus on a millisecond clock, frames about
    33 ms apart with jitter, and written as a live stream, so it states no duration and has no index.
    coarse_clock: the encoder counts 30ths of a second, so some jittered pictures share a timestamp."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", format="webm", container_options={"live": "1"}) as container:
        video = container.add_stream("libvpx-vp9", rate=30)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8"}
        video.time_base = Fraction(1, 1000)
        if not coarse_clock:
            video.codec_context.time_base = Fraction(1, 1000)
        sound = container.add_stream("libopus", rate=48000)
        sound.layout = "stereo"
        t, i = 0.0, 0
        while t < seconds * 1000:
            frame = av.VideoFrame.from_ndarray(_rgb(width, height, i), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = round(t), Fraction(1, 1000)
            container.mux(video.encode(frame))
            t, i = t + 33.3 + rng.uniform(-6, 6), i + 1
        container.mux(video.encode(None))
        write_tone(container, sound, seconds)
    return path


def make_clip_with_longer_sound(path: Path, *, picture_seconds: float, sound_seconds: float, fps: int = 25) -> Path:
    """Pictures that stop before the sound does (a title card over narration): complete, not cut short."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for i in range(round(picture_seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_rgb(320, 240, i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        write_tone(container, sound, sound_seconds)
    return path
