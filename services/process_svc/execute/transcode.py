"""Runs an encode plan with PyAV: one decode of the source, one filter graph
that splits and scales, one H.264 encoder per rung, one AAC encode shared by
all rungs, and every other output of the plan fed from the same pass (its
executor's hooks: execute/outputs.py), everything flushed at the end. Blocking and CPU-bound: call it
from a worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import av
import av.error

from services.process_svc.execute.ladder_graph import LadderGraph
from services.process_svc.execute.outputs import OutputExecutor, PassContext, ProducedOutput
from services.process_svc.execute.pass_outputs import PassOutputs
from services.process_svc.execute.probe import ffmpeg_reason, open_source
from services.process_svc.execute.progress import ProgressMeter, TranscodeProgress
from services.process_svc.execute.quality import DEFAULT_SAMPLE_EVERY
from services.process_svc.execute.registry import EXECUTORS
from services.process_svc.failures import SourceUnreadable, TranscodeCancelled, clock
from services.process_svc.plan import EncodePlan
from services.shared.media_source import main_video_stream

log = logging.getLogger("vtc.process.execute")

ProgressCallback = Callable[[TranscodeProgress], None]


def execute(plan: EncodePlan, source_path: Path, out_dir: Path, on_progress: ProgressCallback | None = None, *,
            cancel: threading.Event | None = None, progress_interval_seconds: float = 0.5,
            graph_threads: int = 1, quality_sample_every: int = DEFAULT_SAMPLE_EVERY,
            executors: Mapping[str, type[OutputExecutor]] = EXECUTORS) -> list[ProducedOutput]:
    """Makes every output of the plan in one pass over the source, writing their files under out_dir at
    their storage paths, and returns what each turned out to be, in the plan's order: an output whose
    executor failed comes back with its reason (`error`) while the others complete.

    quality_sample_every: each rendition's quality report compares every Nth frame
    with its reference (quality.py); 0: no report.

    graph_threads: slice threads for the scaler. One: the rung encoders already keep
    every core busy, and scaler slices cost about 5% more CPU in decode+scale
    (measured on 2 cores: 6.8 vs 7.2 CPU-seconds for 10 s of 1080p into 4 rungs).

    Raises SourceUnreadable (the source's fault, with a reason for a person),
    TranscodeCancelled (when `cancel` is set), anything else is a bug.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_source(source_path) as source:
        # An audio-only plan (no rungs) decodes no picture at all.
        video = main_video_stream(source) if plan.renditions else None
        if video is not None:
            video.thread_type = "AUTO"  # frame threads for the decoder too
        audio = source.streams.audio[0] if plan.decodes_audio and source.streams.audio else None
        if audio is not None:
            audio.thread_type = "AUTO"
        if video is None and audio is None:
            raise SourceUnreadable("the source has no audio track, and this profile makes only audio")
        context = PassContext(plan=plan, out_dir=out_dir,
                              video_time_base=(video or audio).time_base,  # type: ignore[union-attr]
                              renditions_carry_audio=audio is not None and plan.audio is not None,
                              quality_sample_every=quality_sample_every)
        outputs = PassOutputs(context, executors)
        try:
            outputs.connect(with_audio_track=context.renditions_carry_audio)
            run = _Run(plan, source, video, audio, outputs, graph_threads,
                       ProgressMeter(plan.total_frames, plan.source.duration_seconds,
                                     interval_seconds=progress_interval_seconds),
                       on_progress, cancel)
            run.transcode()
            produced = outputs.finish()
        finally:  # after a failure: stop the threads, leave the files to the caller
            outputs.close()
    _report(on_progress, run.meter.finished())
    return produced


class _Run:
    """The state of one pass over the source."""

    def __init__(self, plan: EncodePlan, source: av.container.InputContainer, video: av.VideoStream | None,
                 audio: av.AudioStream | None, outputs: PassOutputs, graph_threads: int,
                 meter: ProgressMeter, on_progress: ProgressCallback | None, cancel: threading.Event | None) -> None:
        self.plan, self.source, self.video, self.audio = plan, source, video, audio
        self.outputs, self.track, self.meter = outputs, outputs.track, meter
        self.rung_listeners = outputs.listening("rung_frame")
        self.rungs = outputs.rungs
        self.upright_listeners = outputs.listening("upright_frame")
        self.audio_listeners = outputs.listening("audio_frame")
        self.graph: LadderGraph | None = None
        self.graph_threads = graph_threads
        self.on_progress, self.cancel = on_progress, cancel
        self.media_seconds = 0.0  # how far decoding got, for reasons a person reads
        self.audio_seconds = 0.0  # where the decoded sound ends
        self.video_frames = 0
        self.last_video_pts: int | None = None
        self.repeated_timestamps = 0  # pictures dropped: they carried the timestamp of the one before
        self.fps = plan.renditions[0].fps if plan.renditions else 0
        # Outputs start at 0 whatever the source's first timestamp, as ffmpeg's CLI does.
        self.start_seconds = source.start_time / av.time_base if source.start_time else 0.0

    def transcode(self) -> None:
        frames = 0
        for frame in self._decoded():
            if isinstance(frame, av.VideoFrame):
                self._video_frame(frame)
                frames += 1
            else:
                self._audio_frame(frame)
        if frames == 0 and self.video is not None:
            raise SourceUnreadable("no picture in the source could be decoded; is the file complete?")
        if self.repeated_timestamps:
            log.info("dropped pictures that repeated the timestamp before them",
                     extra={"fields": {"dropped": self.repeated_timestamps, "pictures": frames}})
        self._check_complete()
        if self.graph is not None:
            self.graph.push(None)
            self._drain_graph()
        for rung in self.rungs:
            rung.call("encode", None)
        if self.track is not None:
            self.track.encode(None)
        for running in self.outputs.running:
            running.call("end_of_stream")

    def _audio_frame(self, frame: av.AudioFrame) -> None:
        self._shift(frame)
        if frame.time is not None:
            self.audio_seconds = max(self.audio_seconds, frame.time + frame.samples / frame.sample_rate)
            if self.video is None:  # audio only: the audio's clock is the progress
                self.media_seconds = self.audio_seconds
                _report(self.on_progress, self.meter.frame_decoded(self.media_seconds))
        if self.track is not None:
            self.track.encode(frame)
        for running in self.audio_listeners:
            running.call("audio_frame", frame)

    def _decoded(self) -> Iterator[av.VideoFrame | av.AudioFrame]:
        """Every decoded frame of the source, decoders flushed at the end."""
        streams = [s for s in (self.video, self.audio) if s is not None]
        packets = self.source.demux(streams)
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise TranscodeCancelled()
            try:
                packet = next(packets, None)
                if packet is None:
                    return
                frames = packet.decode()  # the empty packet demux yields last flushes the decoder
            except av.error.FFmpegError as error:
                raise SourceUnreadable(f"the source could not be decoded at {clock(self.media_seconds)}: "
                                       f"{ffmpeg_reason(error)}; the file may be damaged or cut short, "
                                       "upload it again") from None
            yield from frames

    def _video_frame(self, frame: av.VideoFrame) -> None:
        if frame.pts is None:  # a raw elementary stream: no timestamps, frames follow at the stream's rate
            frame.pts = round(self.video_frames / self.fps / self.video.time_base)
            frame.time_base = self.video.time_base
        self.video_frames += 1
        self._shift(frame)
        if self.last_video_pts is not None and frame.pts is not None and frame.pts <= self.last_video_pts:
            # Two pictures on one timestamp (a recorder whose clock is coarser than its frame rate): an
            # encoder's output cannot show both, so the later one goes, as ffmpeg's CLI drops it.
            self.repeated_timestamps += 1
            return
        self.last_video_pts = frame.pts
        if frame.time is not None:
            self.media_seconds = max(self.media_seconds, frame.time)
        if self.graph is not None and not self.graph.takes(frame):
            # The picture changed size or format mid-stream (a programme change in a recording):
            # drain the graph shaped for the old pictures, then build one for the new.
            self.graph.push(None)
            self._drain_graph()
            self.graph = None
        if self.graph is None:
            self.graph = LadderGraph(self.plan, frame, self.video.time_base, threads=self.graph_threads,
                                     upright_output=bool(self.upright_listeners))
        self.graph.push(frame)
        self._drain_graph()
        _report(self.on_progress, self.meter.frame_decoded(self.media_seconds))

    def _drain_graph(self) -> None:
        assert self.graph is not None
        for index, rung in enumerate(self.rungs):
            for scaled in self.graph.pull(index):
                for running in self.rung_listeners:  # before the encoder's thread takes the frame
                    running.call("rung_frame", rung.plan.name, scaled)
                rung.call("encode", scaled)
        for upright in self.graph.pull_upright():
            for running in self.upright_listeners:
                running.call("upright_frame", upright)

    def _shift(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        """Moves the frame onto the output's clock: starting at 0, with the source's timeline gaps closed."""
        if frame.pts is None or not frame.time_base:
            return
        time = float(frame.pts * frame.time_base)
        closed = sum(end - start for start, end in self.plan.source.timeline_gaps if end <= time + 1e-6)
        if self.start_seconds or closed:
            frame.pts -= round((self.start_seconds + closed) / frame.time_base)

    def _check_complete(self) -> None:
        """A source whose data stops well before its stated end is truncated: say so, not a short video."""
        stream = self.video or self.audio
        stated = float(stream.duration * stream.time_base) if stream is not None and stream.duration else 0.0
        reached = self.media_seconds
        if not stated and self.source.duration:  # Matroska/WebM state the length in the header only
            stated = self.source.duration / av.time_base
            # ... and it is the longest stream's: pictures may stop early under sound that runs on.
            reached = max(reached, self.audio_seconds)
        stated -= sum(end - start for start, end in self.plan.source.timeline_gaps)
        if stated and reached < stated * 0.9 - 0.5:
            raise SourceUnreadable(f"the source's {'video' if self.video else 'audio'} stops at "
                                   f"{clock(self.media_seconds)} but it should last "
                                   f"{clock(stated)}; the file looks truncated, upload it again")


def _report(on_progress: ProgressCallback | None, progress: TranscodeProgress | None) -> None:
    if on_progress is None or progress is None:
        return
    try:
        on_progress(progress)
    except Exception:  # reporting is best effort; the transcode goes on
        log.warning("progress callback failed", exc_info=True)
