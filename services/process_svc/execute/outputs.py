"""What every output executor is: one output of the plan, made inside the one
pass over the source (transcode.py), and what it produced.

An executor gets the hooks below, each called only if it overrides it:

    streams_ready(streams)    every encoder is open (codec parameters known), before any frame
    upright_frame(frame)      each decoded source frame, turned upright (source size), decode thread
    rung_frame(rung, frame)   each frame of a rung, scaled, as its encoder gets it, decode thread
    audio_frame(frame)        each decoded source audio frame (on the output clock), decode thread
    video_packet(rung, pkt)   each encoded packet of a video rendition, from THAT RUNG's thread
    audio_packet(pkt)         each encoded packet of the renditions' audio track, decode thread
    end_of_stream()           nothing more comes: flush what you hold (decode thread)
    finish(done)              make and check your files; `done`: the outputs finished before
                              (video renditions finish first: they feed the others)
    close()                   always, last, failure or not

Packets and frames are the pass's own: copy a packet (packets.copy_packet)
and reformat a frame before keeping them. An exception in any hook fails this
output alone (OutputFailed: with its reason as given; anything else: an
internal error, logged); the other outputs go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import ClassVar

import av

from services.process_svc.execute.verify import ProducedRendition
from services.process_svc.plan import EncodePlan, OutputPlan


class OutputFailed(Exception):
    """This output cannot be made, for a reason a person can act on; the job's other outputs go on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OutputFile:
    path: Path  # where the executor wrote it
    key: str  # where it is stored, relative to the video's prefix: "renditions/720p.mp4"
    content_type: str
    size_bytes: int

    @classmethod
    def of(cls, path: Path, out_dir: Path, content_type: str) -> OutputFile:
        return cls(path=path, key=PurePosixPath(path.relative_to(out_dir)).as_posix(), content_type=content_type,
                   size_bytes=path.stat().st_size)


@dataclass(frozen=True)
class ProducedOutput:
    name: str
    kind: str  # the output's type: "video", "audio"...
    files: tuple[OutputFile, ...] = ()
    rendition: ProducedRendition | None = None  # the facts of a video or audio rendition
    error: str = ""  # why it failed; empty when it completed

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True)
class PassContext:
    """What every executor of one pass may know."""

    plan: EncodePlan
    out_dir: Path  # write files under it, at their storage path (out_dir / "renditions/720p.mp4")
    video_time_base: Fraction  # of the source's video stream: the frames' and rung packets' clock
    renditions_carry_audio: bool  # the source has audio and the profile an audio track for the renditions
    quality_sample_every: int = 0


@dataclass(frozen=True)
class EncodedStreams:
    """The encoders of the pass, opened: templates for another container of the same packets."""

    video: Mapping[str, av.VideoStream] = field(default_factory=dict)  # rung name -> its encoder's stream
    audio: av.AudioStream | None = None  # the renditions' audio track


class OutputExecutor:
    """Base of every executor: hooks that do nothing, so one overrides only what it needs."""

    kind: ClassVar[str] = ""

    def __init__(self, plan: OutputPlan, context: PassContext) -> None:
        self.plan = plan
        self.context = context

    def streams_ready(self, streams: EncodedStreams) -> None:
        pass

    def upright_frame(self, frame: av.VideoFrame) -> None:
        pass

    def rung_frame(self, rung: str, frame: av.VideoFrame) -> None:
        pass

    def audio_frame(self, frame: av.AudioFrame) -> None:
        pass

    def video_packet(self, rung: str, packet: av.Packet) -> None:
        pass

    def audio_packet(self, packet: av.Packet) -> None:
        pass

    def end_of_stream(self) -> None:
        pass

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def wants(self, hook: str) -> bool:
        """Whether this executor overrides `hook` (the pass skips work nobody wants, e.g. copying packets)."""
        return getattr(type(self), hook) is not getattr(OutputExecutor, hook)
