"""The quality report of one rendition: PSNR, SSIM and XPSNR of what the
encoder made against what it was given.

The reference is the very frame the rung's encoder received: the source
after the ladder's own graph (deinterlace, turn upright, scale, colour
convert), so "the source scaled to the rendition's size by the same scaler".
The encoded picture is the encoder's packets decoded as they come out, the
same packets the MP4 gets, so no second pass over the source or the file.
Both go into FFmpeg's psnr, ssim and xpsnr filters; their per-frame values
(frame metadata `lavfi.psnr.psnr_avg`, `lavfi.ssim.All`, `lavfi.xpsnr.xpsnr.y/u/v`)
are pooled here.

Every `sample_every`-th frame is compared (1: every frame). XPSNR weighs a
picture's distortion by its activity, and the temporal part of that activity
is the change from the picture before it: so the frame before each sampled
one also goes through the xpsnr filter (its own figures are not counted), and
a sampled frame's XPSNR is what it is when every frame is compared. Without
it, the gap between samples counted as motion: on fast motion the report
read 1.5 dB higher at every 5th frame than at every frame. Only sampled
references (and those frames) are held, until the encoder's delay
(lookahead, B-frames) lets their pictures out, so memory stays a few frames
per rung.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import av
import av.error
import av.filter

# Every 5th frame: within 0.2 dB of every frame on the 1080p bench clip, for +28% CPU instead of +74%.
DEFAULT_SAMPLE_EVERY = 5
# What an exact copy reports (its distortion is 0, its PSNR infinite): the ceiling of every dB figure.
MAX_DB = 100.0


@dataclass(frozen=True)
class RenditionQuality:
    psnr_db: float  # over all planes, from the mean squared error of the compared frames
    ssim: float  # mean of the per-frame SSIM over all planes (0..1)
    xpsnr_db: float  # over all planes, from the mean weighted distortion of the compared frames
    frames_compared: int


class QualityMeter:
    """Fed, in order, each frame a rung's encoder gets and the packets it returns (from one thread)."""

    def __init__(self, codec: str, encoder: av.VideoCodecContext, *, sample_every: int, ssim: bool = True) -> None:
        """codec: the decoder that reads what `encoder` makes ("h264" for libx264, "libdav1d" for AV1:
        FFmpeg's native av1 decoder needs a hardware accelerator). ssim=False: PSNR and XPSNR only
        (per-title probes), the result's ssim is 0."""
        if sample_every < 1:
            raise ValueError(f"sample_every must be at least 1, not {sample_every}")
        self._every = sample_every
        self._metrics = ("psnr", "ssim") if ssim else ("psnr",)
        self._decoder = av.CodecContext.create(codec, "r")
        self._encoder = encoder
        self._decoder_ready = False
        self._sent = 0  # frames given to the encoder
        self._decoded = 0  # pictures decoded back from its packets
        self._references: dict[int, av.VideoFrame] = {}
        self._compare: _Comparison | None = None
        self._xpsnr: _Comparison | None = None
        self._pooled = _Pool()

    def reference(self, frame: av.VideoFrame) -> None:
        """A frame about to be encoded."""
        if self._sampled(self._sent) or self._sampled(self._sent + 1):
            self._references[self._sent] = frame
        self._sent += 1

    def _sampled(self, index: int) -> bool:
        return index % self._every == 0

    def encoded(self, packets: list[av.Packet]) -> None:
        """Packets the encoder returned."""
        if not self._decoder_ready:
            # With a global header (MP4) the parameter sets are in the encoder's extradata only.
            if self._encoder.extradata:
                self._decoder.extradata = self._encoder.extradata
            self._decoder_ready = True
        for packet in packets:
            for picture in self._decoder.decode(packet):
                self._picture(picture)

    def flush(self) -> None:
        """After the encoder's last packets: the decoder gives up the pictures it still holds."""
        if self._decoder_ready:
            for picture in self._decoder.decode(None):
                self._picture(picture)

    def result(self) -> RenditionQuality | None:
        """The pooled figures, once flushed; None when no frame was compared."""
        if self._compare is not None and self._xpsnr is not None:
            self._pooled.add(self._compare.finish(), self._xpsnr.finish())
            self._compare = self._xpsnr = None
        return self._pooled.result()

    def _picture(self, picture: av.VideoFrame) -> None:
        index = self._decoded
        self._decoded += 1
        reference = self._references.pop(index, None)
        if reference is None:
            return
        if self._compare is None or self._xpsnr is None:
            self._compare = _Comparison(picture, self._metrics)
            self._xpsnr = _Comparison(picture, ("xpsnr",))
        sampled = self._sampled(index)
        xpsnr = self._xpsnr.push(picture, reference, counted=sampled)
        others = self._compare.push(picture, reference) if sampled else []
        self._pooled.add(others, xpsnr)


class _Comparison:
    """[encoded][reference] -> metric -> ... -> sink; the encoded picture comes out with the metadata.
    A pair pushed with counted=False goes through the filters (xpsnr remembers its reference) but its
    figures are not returned."""

    def __init__(self, first: av.VideoFrame, metrics: tuple[str, ...]) -> None:
        self._graph = av.filter.Graph()
        size = dict(video_size=f"{first.width}x{first.height}", pix_fmt=first.format.name,
                    time_base="1/25", pixel_aspect="1/1")  # the clock only pairs frames: one tick each (setpts=N)
        self._encoded = self._graph.add("buffer", **size)
        self._reference = self._graph.add("buffer", **size)
        # The pairs are numbered inside the graph (setpts=N on both inputs): the reference is the very
        # frame the encoder got, possibly shared with other encoders on other threads (per-title
        # probes run one encoder per CRF over the same pictures), so it is read here, never changed.
        encoded, reference = self._numbered(self._encoded), self._numbered(self._reference)
        split = self._graph.add("split", str(len(metrics)))
        reference.link_to(split)
        head = encoded
        for n, name in enumerate(metrics):
            metric = self._graph.add(name)
            head.link_to(metric, 0, 0)
            split.link_to(metric, n, 1)
            head = metric
        self._sink = self._graph.add("buffersink")
        head.link_to(self._sink)
        self._graph.configure()
        self._counted: deque[bool] = deque()  # of the pairs pushed and not yet out, in order

    def _numbered(self, source: av.filter.context.FilterContext) -> av.filter.context.FilterContext:
        node = self._graph.add("setpts", "N")
        source.link_to(node)
        return node

    def push(self, encoded: av.VideoFrame, reference: av.VideoFrame, *, counted: bool = True) -> list[av.VideoFrame]:
        self._counted.append(counted)
        self._encoded.push(encoded)
        self._reference.push(reference)
        return self._ready()

    def finish(self) -> list[av.VideoFrame]:
        self._encoded.push(None)
        self._reference.push(None)
        return self._ready()

    def _ready(self) -> list[av.VideoFrame]:
        frames = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return frames
            if self._counted.popleft():
                frames.append(frame)


class _Pool:
    """Per-frame figures pooled the way FFmpeg's own summaries pool them: dB from the mean distortion."""

    def __init__(self) -> None:
        self.frames = 0
        self.psnr_distortion = 0.0  # sums of mean squared error / peak^2
        self.xpsnr_distortion = 0.0
        self.ssim = 0.0

    def add(self, others: list[av.VideoFrame], xpsnr: list[av.VideoFrame]) -> None:
        """The compared frames that came out of the psnr/ssim graph and of the xpsnr graph; both
        give one per sampled frame, in order, so the counts agree once both are finished."""
        for frame in others:
            values = frame.metadata
            self.frames += 1
            self.psnr_distortion += _distortion(float(values["lavfi.psnr.psnr_avg"]))
            self.ssim += float(values.get("lavfi.ssim.All", 0.0))
        for frame in xpsnr:
            values = frame.metadata
            weights = [plane.width * plane.height for plane in frame.planes][:3]
            # xpsnr reports each plane; pooled over the planes by their pixel counts, as psnr_avg is.
            planes = [_distortion(float(values[f"lavfi.xpsnr.xpsnr.{c}"])) for c in "yuv"[:len(weights)]]
            self.xpsnr_distortion += sum(w * d for w, d in zip(weights, planes, strict=True)) / sum(weights)

    def result(self) -> RenditionQuality | None:
        if not self.frames:
            return None
        return RenditionQuality(psnr_db=_db(self.psnr_distortion / self.frames), ssim=self.ssim / self.frames,
                                xpsnr_db=_db(self.xpsnr_distortion / self.frames), frames_compared=self.frames)


def _distortion(db: float) -> float:
    return 0.0 if math.isinf(db) and db > 0 else 10 ** (-db / 10)


def _db(distortion: float) -> float:
    return MAX_DB if distortion <= 0 else min(MAX_DB, -10 * math.log10(distortion))
