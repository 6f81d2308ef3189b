"""One filter graph for the whole ladder: each source frame goes in once,
is turned upright if need be, split, and comes out scaled once per rung:
from the source, or from the rung above where the plan cascades.

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
    def __init__(self, plan: EncodePlan, first: av.VideoFrame, time_base: Fraction, *, threads: int = 1,
                 upright_output: bool = False) -> None:
        """Shaped after the first decoded frame (size, pixel format), the stream's time base and the
        source's pixel aspect. upright_output: one more output with each frame upright at the source's
        size, before any scaling (for stills)."""
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
        roots = plan.source_fed
        split = self._graph.add("split", str(len(roots) + upright_output))
        upright.link_to(split)
        self._upright_sink: av.filter.context.FilterContext | None = None
        if upright_output:
            self._upright_sink = self._graph.add("buffersink")
            split.link_to(self._upright_sink, output_idx=len(roots))
        # Where each rung takes its picture from: an output of the source's split, or of the split
        # after the rung above it (a cascade). Rungs come largest first, so a rung's feed is made
        # before the rungs it feeds.
        feeds: dict[int, tuple[av.filter.context.FilterContext, int]] = {
            rung: (split, output) for output, rung in enumerate(roots)}
        self._sinks = []
        for index, rendition in enumerate(plan.renditions):
            head, output = feeds[index]
            tail = self._chain(head, output, rendition.filters)
            children = plan.fed_by(index)
            if children:
                fork = self._graph.add("split", str(1 + len(children)))
                tail.link_to(fork)
                feeds.update({child: (fork, 1 + n) for n, child in enumerate(children)})
                tail = self._graph.add("null")
                fork.link_to(tail, output_idx=0)
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
        return _drain(self._sinks[rung])

    def pull_upright(self) -> list[av.VideoFrame]:
        """The upright, unscaled frames ready (none unless built with upright_output)."""
        return _drain(self._upright_sink) if self._upright_sink is not None else []


def _drain(sink: av.filter.context.FilterContext) -> list[av.VideoFrame]:
    frames = []
    while True:
        try:
            frames.append(sink.pull())
        except (av.error.BlockingIOError, av.error.EOFError):
            return frames
