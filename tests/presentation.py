"""A small HLS + DASH presentation over one set of CMAF segments, made with PyAV's
`dash` muxer (hls_playlist=1): two video rungs and one audio track, every
reference relative, the layout a transcoded video's `presentation/` folder has.
For tests of the playback URLs that must not wait for a transcode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.source_media import write_tone

RUNGS = ((640, 360, 900_000), (320, 180, 300_000))  # width, height, bits/s
FPS = 30
SAMPLE_RATE = 48000


def make_presentation(folder: Path, *, seconds: float = 8.0, segment_seconds: float = 2.0) -> Path:
    """Writes master.m3u8, manifest.mpd, the media playlists and the segments into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    keyint = round(segment_seconds * FPS)
    with av.open(str(folder / "manifest.mpd"), "w", format="dash", options={
            "hls_playlist": "1", "seg_duration": str(segment_seconds), "use_template": "1",
            "use_timeline": "0", "adaptation_sets": "id=0,streams=v id=1,streams=a"}) as container:
        videos = []
        for width, height, bitrate in RUNGS:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt, stream.bit_rate = width, height, "yuv420p", bitrate
            stream.options = {"preset": "ultrafast", "g": str(keyint), "keyint_min": str(keyint),
                              "sc_threshold": "0", "profile": "high"}
            videos.append(stream)
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout, audio.bit_rate = "stereo", 96_000
        frames = round(seconds * FPS)
        for i in range(frames):
            for stream in videos:
                container.mux(stream.encode(_picture(i, stream.width, stream.height)))
        for stream in videos:
            container.mux(stream.encode(None))
        write_tone(container, audio, seconds, rate=SAMPLE_RATE, samples=1024)
    return folder


def _picture(i: int, width: int, height: int) -> av.VideoFrame:
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = (x * 255 // (width - 1) + i * 4) % 256
    rgb[..., 1] = (y * 255 // (height - 1) + i * 2) % 256
    rgb[..., 2] = (i * 8) % 256
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts, frame.time_base = i, Fraction(1, FPS)
    return frame
