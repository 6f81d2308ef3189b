"""From a rung's frame to image files: the colour conversion and the
encoders (Pillow's JPEG and WebP).

Rung frames are limited-range (16..235) BT.709 YUV (plan/ladder.py makes them
so); JPEG and WebP files hold full-range RGB that viewers read as sRGB. The
scaler is told both ends explicitly rather than trusting the frames' tags:
BT.709 matrix in, limited range in, full range out.

A rung's frame is shared: its encoder's thread (and other stills' threads)
use the same frame at the same time. PyAV's reformat() writes the source
frame's colour fields while it scales (and puts them back after), so two
threads reformatting one frame, or one reformatting while another encodes it,
race on them; two stills threads doing so crashed swscale. So the stills only
read a shared frame's pixels (`small_luma`, `private_copy`) and scale their own
copy.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from PIL import Image

from services.process_svc.plan.stills import ImageSize

# Pixel formats whose first plane is 8-bit luma, one byte per sample.
_EIGHT_BIT_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"})


def private_copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A frame of our own with the same pixels, made by reading the shared frame's planes only."""
    copy = av.VideoFrame(frame.width, frame.height, frame.format.name)
    for source, target in zip(frame.planes, copy.planes, strict=True):
        rows = min(source.buffer_size // source.line_size, target.buffer_size // target.line_size)
        width = min(source.line_size, target.line_size)
        theirs = np.frombuffer(source, dtype=np.uint8).reshape(-1, source.line_size)
        ours = np.frombuffer(target, dtype=np.uint8).reshape(-1, target.line_size)
        ours[:rows, :width] = theirs[:rows, :width]
    return copy


def rgb_picture(frame: av.VideoFrame, size: ImageSize) -> np.ndarray:
    """The frame as full-range RGB (height x width x 3), scaled to size with an area average."""
    rgb = private_copy(frame).reformat(width=size.width, height=size.height, format="rgb24",
                         src_colorspace=Colorspace.ITU709, dst_colorspace=Colorspace.ITU709,
                         src_color_range=ColorRange.MPEG, dst_color_range=ColorRange.JPEG,
                         interpolation=Interpolation.AREA, threads=1)
    return rgb.to_ndarray()


def small_luma(frame: av.VideoFrame, width: int = 160) -> np.ndarray:
    """Every Nth luma sample of every Nth row, about `width` wide: a view of the frame's own plane
    (no scaler), copied once. Skipping samples (rather than averaging) keeps the fine detail that
    tells a sharp picture from a blurred one."""
    if frame.format.name not in _EIGHT_BIT_LUMA_FIRST:  # e.g. a 10-bit rung: 8-bit first (sampled frames only)
        frame = private_copy(frame).reformat(format="yuv420p", threads=1)
    plane = frame.planes[0]
    step = max(1, frame.width // width)
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(frame.height, plane.line_size)
    return np.ascontiguousarray(rows[::step, :frame.width:step])


def write_jpeg(rgb: np.ndarray, path: Path, quality: int) -> None:
    Image.fromarray(rgb, "RGB").save(path, "JPEG", quality=quality, optimize=True, progressive=True)


def write_webp(rgb: np.ndarray, path: Path, quality: int) -> None:
    Image.fromarray(rgb, "RGB").save(path, "WEBP", quality=quality, method=4)
