"""The executors of the still output types (poster, thumbnails, storyboard):
each a StillsWriter fed the frames of its rung through the pass's
`rung_frame` hook (outputs.py), registered in registry.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import av

from services.process_svc.execute.outputs import OutputExecutor, OutputFailed, OutputFile, PassContext, ProducedOutput
from services.process_svc.execute.stills.writer import StillsWriter
from services.process_svc.plan.stills import StillPlan


class StillsExecutor(OutputExecutor):
    kind: ClassVar[str] = ""

    def __init__(self, plan: StillPlan, context: PassContext) -> None:  # type: ignore[override]
        super().__init__(plan, context)
        self.writer = StillsWriter(plan, context.out_dir)
        self.writer.start()

    def rung_frame(self, rung: str, frame: av.VideoFrame) -> None:
        if rung == self.writer.rung:
            self.writer.offer(frame)

    def end_of_stream(self) -> None:
        self.writer.end_of_stream()  # the writer's thread writes the last files while the encoders flush

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        result = self.writer.finish()
        if not result.files:
            raise OutputFailed(f"{self.kind} {self.plan.name!r}: no picture of the video reached it")
        out = self.context.out_dir
        return ProducedOutput(name=self.plan.name, kind=self.kind,
                              files=tuple(OutputFile.of(f.path, out, f.content_type) for f in result.files))

    def close(self) -> None:
        self.writer.close()


class PosterExecutor(StillsExecutor):
    kind = "poster"


class ThumbnailsExecutor(StillsExecutor):
    kind = "thumbnails"


class StoryboardExecutor(StillsExecutor):
    kind = "storyboard"
