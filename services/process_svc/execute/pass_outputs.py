"""The executors of one pass, each behind a guard: a failing output is
recorded with its reason and fed nothing more, while the others go on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from services.process_svc.execute.audio_track import SharedAudioTrack
from services.process_svc.execute.outputs import (
    EncodedStreams,
    OutputExecutor,
    OutputFailed,
    PassContext,
    ProducedOutput,
)
from services.process_svc.execute.verify import RenditionMismatch
from services.process_svc.execute.video_output import VideoRenditionExecutor
from services.process_svc.plan import OutputPlan

log = logging.getLogger("vtc.process.execute")


class RunningOutput:
    """One executor and whether it failed; every hook goes through `call`."""

    def __init__(self, plan: OutputPlan, executor: OutputExecutor | None, error: str = "") -> None:
        self.plan = plan
        self.executor = executor
        self.error = error

    def wants(self, hook: str) -> bool:
        return self.executor is not None and self.executor.wants(hook)

    def call(self, hook: str, *args: Any) -> None:
        if self.error or self.executor is None:
            return
        try:
            getattr(self.executor, hook)(*args)
        except Exception as error:
            self.fail(error)

    def fail(self, error: Exception) -> None:
        if self.error:
            return
        self.error = failure_reason(self.plan, error)

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        if not self.error and self.executor is not None:
            try:
                return self.executor.finish(done)
            except Exception as error:
                self.fail(error)
        return ProducedOutput(name=self.plan.name, kind=self.plan.kind, error=self.error)

    def close(self) -> None:
        if self.executor is not None:
            with contextlib.suppress(Exception):
                self.executor.close()


def failure_reason(plan: OutputPlan, error: Exception) -> str:
    if isinstance(error, OutputFailed):
        return error.reason
    log.error("output %s (%s) failed", plan.name, plan.kind, exc_info=error)
    if isinstance(error, RenditionMismatch):
        return f"internal error: {error}; the service logged the details"
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return f"internal error in the {plan.kind} output ({detail}); the service logged the details"


class PassOutputs:
    """Every output of the plan, created, wired to the pass's encoders, finished and closed."""

    def __init__(self, context: PassContext, executors: Mapping[str, type[OutputExecutor]]) -> None:
        self.context = context
        self.running: list[RunningOutput] = []
        for plan in context.plan.outputs:
            executor_type = executors.get(plan.kind)
            if executor_type is None:  # the catalogue refuses such profiles; a plan made elsewhere may not
                self.running.append(RunningOutput(plan, None, f"no executor makes {plan.kind} outputs"))
                continue
            try:
                self.running.append(RunningOutput(plan, executor_type(plan, context)))
            except Exception as error:
                self.running.append(RunningOutput(plan, None, failure_reason(plan, error)))
        by_name = {running.plan.name: running for running in self.running}
        # The rungs of the ladder, in the graph's order: the video outputs (None: failed at creation).
        self.rungs = [by_name[rendition.name] for rendition in context.plan.renditions]
        self.track: SharedAudioTrack | None = None

    def _rung_executors(self) -> list[VideoRenditionExecutor]:
        return [rung.executor for rung in self.rungs if isinstance(rung.executor, VideoRenditionExecutor)]

    def listening(self, hook: str) -> list[RunningOutput]:
        return [running for running in self.running if running.wants(hook)]

    def connect(self, with_audio_track: bool) -> None:
        """Adds the shared audio track, opens every encoder, hands the streams to whoever wants them and
        starts the rung threads. Call once, before the first frame."""
        rungs = self._rung_executors()
        writers = [rung.writer for rung in rungs]
        plan = self.context.plan
        if with_audio_track and plan.audio is not None and writers:
            self.track = SharedAudioTrack(plan.audio, writers)
        for running in self.listening("video_packet"):
            for writer in writers:
                writer.packet_listeners.append(
                    lambda rung, packet, running=running: running.call("video_packet", rung, packet))
        if self.track is not None:
            for running in self.listening("audio_packet"):
                self.track.listeners.append(lambda packet, running=running: running.call("audio_packet", packet))
        for writer in writers:
            writer.open()
        streams = EncodedStreams(video={rung.plan.name: rung.writer.video_stream for rung in rungs},
                                 audio=self.track.stream if self.track is not None else None)
        for running in self.listening("streams_ready"):
            running.call("streams_ready", streams)
        for writer in writers:
            writer.start()

    def finish(self) -> list[ProducedOutput]:
        """Each output's result, in the plan's order; video renditions finish first, as they feed the others."""
        done: dict[str, ProducedOutput] = {}
        for running in sorted(self.running, key=lambda r: r.plan.kind != "video"):
            done[running.plan.name] = running.finish(done)
        return [done[running.plan.name] for running in self.running]

    def close(self) -> None:
        for running in self.running:
            running.close()
