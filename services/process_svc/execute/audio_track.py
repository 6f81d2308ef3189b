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
        self._resampler = av.AudioResampler(format=plan.sample_format, layout=plan.layout, rate=plan.sample_rate,
                                            frame_size=encoder.codec_context.frame_size or None)

    def encode(self, frame: av.AudioFrame | None) -> None:
        """A decoded source frame, or None at the end of the stream (flushes resampler and encoder)."""
        for resampled in self._resampler.resample(frame):
            self._send(self._encoder.encode(resampled))
        if frame is None:
            self._send(self._encoder.encode(None))

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
