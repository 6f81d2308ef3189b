"""The `video` output: one rung of the ladder as a progressive MP4, encoded on
its own thread (rendition_writer.py), with the shared audio track muxed in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import av

from services.process_svc.execute.outputs import OutputExecutor, OutputFile, PassContext, ProducedOutput
from services.process_svc.execute.rendition_writer import RenditionWriter
from services.process_svc.execute.thread_budget import encoder_threads
from services.process_svc.execute.verify import inspect_rendition
from services.process_svc.plan import RenditionPlan
from services.shared.storage.keys import RENDITIONS


class VideoRenditionExecutor(OutputExecutor):
    """The pass feeds it its rung's scaled frames (`encode`); its encoded packets go to whoever listens."""

    kind: ClassVar[str] = "video"
    plan: RenditionPlan

    def __init__(self, plan: RenditionPlan, context: PassContext) -> None:
        super().__init__(plan, context)
        path = context.out_dir / RENDITIONS / plan.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        threads = encoder_threads(context.plan.renditions).get(plan.name, 0) if plan.encoder == "libx264" else 0
        self.writer = RenditionWriter(plan, path, context.video_time_base,
                                      quality_sample_every=context.quality_sample_every, threads=threads)

    def encode(self, frame: av.VideoFrame | None) -> None:
        """A scaled frame of this rung, or None at the end of the stream."""
        self.writer.encode(frame)

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        self.writer.finish()
        self.writer.close()  # writes the index (moved to the front: faststart)
        rendition = inspect_rendition(self.plan, self.writer.path, expect_audio=self.context.renditions_carry_audio,
                                      quality=self.writer.quality())
        return ProducedOutput(name=self.plan.name, kind=self.kind, rendition=rendition,
                              files=(OutputFile.of(rendition.path, self.context.out_dir, rendition.content_type),))

    def close(self) -> None:
        self.writer.close()
