"""The audio every rendition carries: decoded once, resampled once, encoded
ONCE as AAC, and the same packets muxed into every rendition's file.

The encoder's stream lives in the first rendition's container; the others get
streams copied from it (same codec parameters and AAC config). Each rendition
is written by its own thread, so each gets its own copy of every packet (AAC
packets carry no side data: payload and timing are the whole packet). Against
one AAC encoder per rendition this saves (renditions - 1) encodes and gives
every rung byte-identical audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import av

from services.process_svc.execute.rendition_writer import RenditionWriter
from services.process_svc.plan import AudioPlan


class SharedAudioTrack:
    def __init__(self, plan: AudioPlan, writers: Sequence[RenditionWriter]) -> None:
        """Call once every writer has its video stream and before they start: this writes the first file's header."""
        host = writers[0]
        encoder = host.container.add_stream(plan.encoder, rate=plan.sample_rate)
        encoder.codec_context.layout = plan.layout
        encoder.codec_context.format = plan.sample_format
        encoder.codec_context.bit_rate = plan.bitrate
        encoder.codec_context.time_base = Fraction(1, plan.sample_rate)
        # The header opens the encoder, which fills in the AAC config the copies need.
        host.container.start_encoding()
        host.audio_stream = encoder
        for writer in writers[1:]:
            writer.audio_stream = writer.container.add_stream_from_template(encoder, opaque=True)
        self._encoder = encoder
        self._writers = list(writers)
        self._plan = plan
        self._resampler = self._new_resampler()
        self._input: tuple[str, str, int] | None = None  # the source audio's format, layout, rate
        self._next_pts = 0  # in samples at the plan's rate

    def _new_resampler(self) -> av.AudioResampler:
        return av.AudioResampler(format=self._plan.sample_format, layout=self._plan.layout,
                                 rate=self._plan.sample_rate, frame_size=self._encoder.codec_context.frame_size or None)

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
        start = round(frame.time * self._plan.sample_rate) if frame.time is not None else self._next_pts
        if start < self._next_pts - frame.samples // 2:
            return
        frame.pts = max(start, self._next_pts)
        frame.time_base = Fraction(1, self._plan.sample_rate)
        self._next_pts = frame.pts + frame.samples
        self._send(self._encoder.encode(frame))

    def _send(self, packets: Sequence[av.Packet]) -> None:
        for packet in packets:
            for writer in self._writers[1:]:
                writer.mux_audio(_copy(packet))
            self._writers[0].mux_audio(packet)


def _copy(packet: av.Packet) -> av.Packet:
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.duration = packet.pts, packet.dts, packet.duration
    clone.time_base = packet.time_base
    clone.is_keyframe = packet.is_keyframe
    return clone
