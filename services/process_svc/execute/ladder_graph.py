"""One filter graph for the whole ladder: each source frame goes in once,
is turned upright if need be, split, and comes out scaled once per rung.

The graph's `scale` matches ffmpeg's output exactly, where frame.reformat()
differs in the chroma planes (FACTS.md), and one graph is cheaper than a
reformat per rung.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.error
import av.filter

from services.process_svc.plan import EncodePlan, VideoFilter


class LadderGraph:
    def __init__(self, plan: EncodePlan, first: av.VideoFrame, time_base: Fraction, *, threads: int = 1) -> None:
        """Shaped after the first decoded frame (size, pixel format), the stream's time base and the
        source's pixel aspect."""
        self._input = (first.width, first.height, first.format.name)
        self._graph = av.filter.Graph()
        self._graph.threads = threads  # slice threads for filters that have them (the scaler); 0: one per core
        sar = plan.source.sample_aspect_ratio or Fraction(1)
        source = self._graph.add(
            "buffer",
            video_size=f"{first.width}x{first.height}",
            pix_fmt=first.format.name,
            time_base=str(time_base),
            pixel_aspect=f"{sar.numerator}/{sar.denominator}",
        )
        upright = self._chain(source, 0, plan.upright)
        split = self._graph.add("split", str(len(plan.renditions)))
        upright.link_to(split)
        self._sinks = []
        for index, rendition in enumerate(plan.renditions):
            tail = self._chain(split, index, rendition.filters)
            sink = self._graph.add("buffersink")
            tail.link_to(sink)
            self._sinks.append(sink)
        self._graph.configure()

    def _chain(self, head: av.filter.context.FilterContext, output: int,
               filters: tuple[VideoFilter, ...]) -> av.filter.context.FilterContext:
        for step in filters:
            node = self._graph.add(step.name, step.args or None)
            head.link_to(node, output_idx=output)
            head, output = node, 0
        if output:  # a bare split output needs a node of its own to link from
            node = self._graph.add("null")
            head.link_to(node, output_idx=output)
            head = node
        return head

    def takes(self, frame: av.VideoFrame) -> bool:
        """Whether the frame has the size and pixel format this graph was shaped for."""
        return (frame.width, frame.height, frame.format.name) == self._input

    @property
    def outputs(self) -> int:
        return len(self._sinks)

    def push(self, frame: av.VideoFrame | None) -> None:
        """A source frame, or None at the end of the stream."""
        self._graph.push(frame)

    def pull(self, rung: int) -> list[av.VideoFrame]:
        """The frames rung `rung` has ready (all that remain, after push(None))."""
        frames = []
        sink = self._sinks[rung]
        while True:
            try:
                frames.append(sink.pull())
            except (av.error.BlockingIOError, av.error.EOFError):
                return frames
