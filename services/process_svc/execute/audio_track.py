"""The audio every rendition carries: decoded once, resampled once, encoded
ONCE as AAC, and the same packets muxed into every rendition's file.

The encoder's stream lives in the first rendition's container; the others get
streams copied from it (same codec parameters and AAC config). Each rendition
is written by its own thread, so each gets its own copy of every packet (AAC
packets carry no side data: payload and timing are the whole packet). Against
one AAC encoder per rendition this saves (renditions - 1) encodes and gives
every rung byte-identical audio. Other outputs (an adaptive presentation) may
take the packets too (`listeners`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import av

from services.process_svc.execute.audio_encoder import AudioEncoder, add_audio_encoder
from services.process_svc.execute.packets import copy_packet
from services.process_svc.execute.rendition_writer import RenditionWriter
from services.process_svc.plan import AudioPlan


class SharedAudioTrack:
    def __init__(self, plan: AudioPlan, writers: Sequence[RenditionWriter]) -> None:
        """Call once every writer has its video stream and before they start: this writes the first file's header."""
        host = writers[0]
        stream = add_audio_encoder(host.container, plan.encoder, sample_rate=plan.sample_rate, layout=plan.layout,
                                   sample_format=plan.sample_format, bitrate=plan.bitrate)
        # The header opens the encoder, which fills in the AAC config the copies need.
        host.container.start_encoding()
        host.audio_stream = stream
        for writer in writers[1:]:
            writer.audio_stream = writer.container.add_stream_from_template(stream, opaque=True)
        self.stream = stream
        self._writers = list(writers)
        self.listeners: list[Callable[[av.Packet], None]] = []  # each gets its own copy of every packet
        self._failed: set[RenditionWriter] = set()
        self._encoder = AudioEncoder(stream, self._send)

    def encode(self, frame: av.AudioFrame | None) -> None:
        """A decoded source frame, or None at the end of the stream (flushes resampler and encoder)."""
        self._encoder.encode(frame)

    def _send(self, packets: Sequence[av.Packet]) -> None:
        for packet in packets:
            for listener in self.listeners:
                listener(copy_packet(packet))
            for writer in self._writers[1:]:
                self._mux(writer, copy_packet(packet))
            self._mux(self._writers[0], packet)

    def _mux(self, writer: RenditionWriter, packet: av.Packet) -> None:
        if writer in self._failed:
            return
        try:
            writer.mux_audio(packet)
        except Exception:  # the writer keeps its error: its output fails when finished, the others go on
            self._failed.add(writer)
