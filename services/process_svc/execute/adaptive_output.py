"""The `adaptive` output: HLS and DASH over one set of CMAF segments, cut
from the very packets the video renditions are muxed from (and from the
renditions' audio track, as an audio group of its own): no encode of its own.

Written under `presentation/` (master.m3u8, manifest.mpd, a folder per
track); every reference in them is relative and stays inside that folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import ClassVar

import av

from services.process_svc.adaptive import (
    AUDIO_TRACK,
    CmafSegmenter,
    Presentation,
    Track,
    measure_audio,
    measure_video,
    write_manifests,
)
from services.process_svc.adaptive.segmenter import copy_packet
from services.process_svc.execute.outputs import (
    EncodedStreams,
    OutputExecutor,
    OutputFailed,
    OutputFile,
    PassContext,
    ProducedOutput,
)
from services.process_svc.plan import AdaptivePlan
from services.shared.storage.keys import PRESENTATION

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
}


class AdaptiveExecutor(OutputExecutor):
    kind: ClassVar[str] = "adaptive"
    plan: AdaptivePlan

    def __init__(self, plan: AdaptivePlan, context: PassContext) -> None:
        super().__init__(plan, context)
        self.folder = context.out_dir / PRESENTATION.rstrip("/")
        self._video: dict[str, CmafSegmenter] = {}  # rung name -> its segmenter (fed from that rung's thread)
        self._audio: CmafSegmenter | None = None

    def streams_ready(self, streams: EncodedStreams) -> None:
        for rung in self.plan.rungs:
            template = streams.video.get(rung.name)
            if template is None:
                raise OutputFailed(f"rendition {rung.name} failed, so the presentation that packages it cannot "
                                   "be made")
            self._video[rung.name] = CmafSegmenter(self.folder / rung.name, template, self.plan.segment_seconds)
        if self.plan.audio is not None and streams.audio is not None:
            self._audio = CmafSegmenter(self.folder / AUDIO_TRACK, streams.audio, self.plan.segment_seconds)

    def video_packet(self, rung: str, packet: av.Packet) -> None:
        segmenter = self._video.get(rung)
        if segmenter is not None:
            segmenter.mux(packet)  # the rung hands every listener a copy of its own

    def audio_packet(self, packet: av.Packet) -> None:
        if self._audio is not None:
            self._audio.mux(copy_packet(packet))

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        failed = [rung.name for rung in self.plan.rungs if rung.name in done and done[rung.name].failed]
        if failed:
            raise OutputFailed(f"rendition {', '.join(failed)} failed, so the presentation that packages it "
                               "cannot be made")
        for segmenter in self._segmenters():
            segmenter.close()
        video = tuple(measure_video(self.folder / rung.name, width=rung.width, height=rung.height,
                                    frame_rate=rung.fps) for rung in self.plan.rungs)
        audio = (measure_audio(self.folder / AUDIO_TRACK, channels=self.plan.audio.channels,
                               sample_rate=self.plan.audio.sample_rate)
                 if self._audio is not None and self.plan.audio is not None else None)
        presentation = Presentation(video=video, audio=audio)
        _check_aligned(presentation)
        files = write_manifests(self.folder, presentation)
        return ProducedOutput(name=self.plan.name, kind=self.kind, files=tuple(
            OutputFile.of(self.folder / name, self.context.out_dir, _content_type(name)) for name in files))

    def close(self) -> None:
        for segmenter in self._segmenters():
            with contextlib.suppress(Exception):
                segmenter.close()

    def _segmenters(self) -> list[CmafSegmenter]:
        return [*self._video.values(), *([self._audio] if self._audio is not None else [])]


def _check_aligned(presentation: Presentation) -> None:
    """Players switch rungs at segment boundaries: every rung's segments must start on the same keyframes."""
    first: Track | None = None
    for track in presentation.video:
        if not track.segments:
            raise RuntimeError(f"the {track.name} track of the presentation has no segment")
        unkeyed = [s.file for s in track.segments if not s.starts_with_keyframe]
        if unkeyed:
            raise RuntimeError(f"segments {', '.join(unkeyed)} of {track.name} do not start on a keyframe")
        if first is None:
            first = track
            continue
        starts = [s.start * first.timescale for s in track.segments]
        if starts != [s.start * track.timescale for s in first.segments]:
            raise RuntimeError(f"the segments of {track.name} and {first.name} do not start at the same times")


def _content_type(name: str) -> str:
    suffix = name[name.rfind("."):]
    if suffix == ".mp4":
        return "audio/mp4" if name.startswith(f"{AUDIO_TRACK}/") else "video/mp4"
    return CONTENT_TYPES[suffix]
