"""Source audio in, encoded packets out: the resampling and timestamps every
audio encode of the pass shares (the renditions' track, audio-only outputs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import av


def add_audio_encoder(container: av.container.OutputContainer, encoder: str, *, sample_rate: int, layout: str,
                      sample_format: str, bitrate: int) -> av.AudioStream:
    stream = container.add_stream(encoder, rate=sample_rate)
    stream.codec_context.layout = layout
    stream.codec_context.format = sample_format
    stream.codec_context.bit_rate = bitrate
    stream.codec_context.time_base = Fraction(1, sample_rate)
    return stream


class AudioEncoder:
    def __init__(self, stream: av.AudioStream, send: Callable[[Sequence[av.Packet]], None]) -> None:
        """`stream`'s encoder must be open (its container's header written): its frame size sizes the resampler."""
        self._encoder = stream
        self._send = send
        context = stream.codec_context
        self._shape = (context.format.name, context.layout.name, context.sample_rate)
        self._rate = context.sample_rate
        self._resampler = self._new_resampler()
        self._input: tuple[str, str, int] | None = None  # the source audio's format, layout, rate
        self._next_pts = 0  # in samples at the output rate

    def _new_resampler(self) -> av.AudioResampler:
        sample_format, layout, rate = self._shape
        return av.AudioResampler(format=sample_format, layout=layout, rate=rate,
                                 frame_size=self._encoder.codec_context.frame_size or None)

    def encode(self, frame: av.AudioFrame | None) -> None:
        """A decoded source frame, or None at the end of the stream (flushes resampler and encoder)."""
        if frame is not None:
            shape = (frame.format.name, frame.layout.name, frame.sample_rate)
            if self._input is not None and shape != self._input:
                # The source's sample rate, layout or format changed mid-stream: a resampler is set up
                # for one input, so drain this one and start another.
                for resampled in self._resampler.resample(None):
                    self._encode(resampled)
                self._resampler = self._new_resampler()
            self._input = shape
        for resampled in self._resampler.resample(frame):
            self._encode(resampled)
        if frame is None:
            self._send(self._encoder.encode(None))

    def _encode(self, frame: av.AudioFrame) -> None:
        # Timestamps in samples at the output rate, whatever time base the resampler kept (in a
        # coarse one, such as Matroska's milliseconds, they come rounded: a frame that starts a little
        # early just follows on). Where the source's audio overlaps itself by more (a part's padding
        # running into the next part's start, a drained resampler's padded tail), the frame is
        # dropped: a gap of a few ms keeps lips in sync, where shifting would add up at every change.
        start = round(frame.time * self._rate) if frame.time is not None else self._next_pts
        if start < self._next_pts - frame.samples // 2:
            return
        frame.pts = max(start, self._next_pts)
        frame.time_base = Fraction(1, self._rate)
        self._next_pts = frame.pts + frame.samples
        self._send(self._encoder.encode(frame))
