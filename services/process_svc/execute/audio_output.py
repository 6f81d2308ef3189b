"""The `audio` output: the source's first audio track alone (AAC in M4A, or
Opus in WebM/Ogg), encoded from the decoded frames of the same pass; or, when
the plan says it is the renditions' very track (`shares_track`), that track's
packets muxed as they come, with no encode of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import av

from services.process_svc.execute.audio_encoder import AudioEncoder, add_audio_encoder
from services.process_svc.execute.outputs import (
    EncodedStreams,
    OutputExecutor,
    OutputFile,
    PassContext,
    ProducedOutput,
)
from services.process_svc.execute.verify import inspect_audio_rendition
from services.process_svc.plan import AudioRenditionPlan
from services.shared.storage.keys import RENDITIONS

# Container name in profiles -> FFmpeg muxer.
_MUXERS = {"m4a": "mp4", "mp4": "mp4", "webm": "webm", "ogg": "ogg"}


class AudioRenditionExecutor(OutputExecutor):
    kind: ClassVar[str] = "audio"
    plan: AudioRenditionPlan

    def __init__(self, plan: AudioRenditionPlan, context: PassContext) -> None:
        super().__init__(plan, context)
        self.path = context.out_dir / RENDITIONS / plan.file_name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        muxer = _MUXERS[plan.container]
        options = {"movflags": "+faststart"} if muxer == "mp4" else {}
        self._container = av.open(str(self.path), "w", format=muxer, container_options=options)
        self._encoder: AudioEncoder | None = None
        self._copied: av.AudioStream | None = None  # the track's stream, when the output shares it
        if not (plan.shares_track and context.renditions_carry_audio):
            self._encode_own()

    def _encode_own(self) -> None:
        plan = self.plan
        stream = add_audio_encoder(self._container, plan.encoder, sample_rate=plan.sample_rate, layout=plan.layout,
                                   sample_format=plan.sample_format, bitrate=plan.bitrate)
        self._container.start_encoding()  # opens the encoder: the resampler needs its frame size
        self._encoder = AudioEncoder(stream, self._mux)

    def streams_ready(self, streams: EncodedStreams) -> None:
        if self._encoder is not None:
            return
        if streams.audio is None:  # no track after all (its renditions could not start): encode our own
            self._encode_own()
            return
        self._copied = self._container.add_stream_from_template(streams.audio, opaque=True)

    def audio_packet(self, packet: av.Packet) -> None:
        if self._copied is not None:
            packet.stream = self._copied
            self._container.mux(packet)

    def audio_frame(self, frame: av.AudioFrame) -> None:
        if self._encoder is not None:
            self._encoder.encode(frame)

    def end_of_stream(self) -> None:
        if self._encoder is not None:
            self._encoder.encode(None)

    def _mux(self, packets: Sequence[av.Packet]) -> None:
        self._container.mux(packets)

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        self._container.close()
        rendition = inspect_audio_rendition(self.plan, self.path)
        return ProducedOutput(name=self.plan.name, kind=self.kind, rendition=rendition,
                              files=(OutputFile.of(self.path, self.context.out_dir, rendition.content_type),))

    def close(self) -> None:
        self._container.close()
