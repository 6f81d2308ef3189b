"""Makes one still output (a poster, thumbnails or a storyboard) from the
frames of one rung, in the transcode's single decode pass, on a thread of its
own.

The decode loop offers every frame of the chosen rung; `offer` only compares
the frame's time with the next time some still is due (a few comparisons), and
queues the few frames that are due: about four a second for the poster's
candidates, one per storyboard tile, one per thumbnail. This thread does the
rest (luma statistics, colour conversion, scaling, JPEG/WebP), overlapping
with the encoders, never in the decode loop.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from time import thread_time

import av

from services.process_svc.execute.stills.images import rgb_picture, small_luma, write_jpeg, write_webp
from services.process_svc.execute.stills.poster import PosterChoice, PosterPicker
from services.process_svc.execute.stills.scoring import luma_stats
from services.process_svc.execute.stills.storyboard import SpriteSheet, storyboard_vtt
from services.process_svc.plan.stills import PosterPlan, StillPlan, StoryboardPlan, ThumbnailsPlan

log = logging.getLogger("vtc.process.stills")

IMAGES_DIR = "images"  # under the job's output folder, as under the video's storage prefix
_END = object()  # the stream ended: write what is held, then stop
_ABORT = object()  # stop without writing more
_EPSILON = 1e-3  # a frame stamped a millisecond early is on time


@dataclass(frozen=True)
class StillFile:
    name: str  # file name inside images/
    path: Path
    content_type: str
    width: int = 0  # pixels; 0 for a text file
    height: int = 0
    time_seconds: float | None = None  # where in the video the picture was taken


@dataclass
class ProducedStills:
    poster: list[StillFile] = field(default_factory=list)  # poster.jpg, poster.webp
    thumbnails: list[StillFile] = field(default_factory=list)
    storyboard: list[StillFile] = field(default_factory=list)  # storyboard.jpg, storyboard.vtt
    poster_rejections: dict[str, int] = field(default_factory=dict)  # sampled candidates refused, by reason
    cpu_seconds: float = 0.0  # what making them cost, on the stills thread (off the decode loop)

    @property
    def files(self) -> list[StillFile]:
        return [*self.poster, *self.thumbnails, *self.storyboard]


@dataclass
class _Due:
    frame: av.VideoFrame
    time: float
    poster: bool = False
    thumbnails: list[int] = field(default_factory=list)
    tiles: int = 0


class StillsWriter:
    def __init__(self, plan: StillPlan, out_dir: Path, *, queue_depth: int = 8) -> None:
        self.plan = plan
        self.rung = plan.rung  # the rendition whose frames it wants
        self.dir = out_dir / IMAGES_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._poster = plan if isinstance(plan, PosterPlan) else None
        self._thumbnails = plan if isinstance(plan, ThumbnailsPlan) else None
        self._storyboard = plan if isinstance(plan, StoryboardPlan) else None
        # Schedules, kept by the decode loop's thread.
        poster = self._poster
        self._next_poster = math.inf if poster is None else poster.at_seconds or 0.0
        self._thumbnail_times = list(self._thumbnails.times) if self._thumbnails is not None else []
        self._next_thumbnail = 0
        self._tile_starts = [t.start for t in self._storyboard.tiles] if self._storyboard is not None else []
        self._next_tile = 0
        self._last: tuple[av.VideoFrame, float] | None = None
        self._media_end = 0.0  # where the last frame offered ends
        self._ended = False
        # State of the stills thread.
        self._picker: PosterPicker[av.VideoFrame] | None = (
            PosterPicker(poster.region) if poster is not None and poster.at_seconds is None else None)
        self._fixed_poster: tuple[float, av.VideoFrame] | None = None  # at the profile's at_seconds
        self._sheet = SpriteSheet(self._storyboard) if self._storyboard is not None else None
        self._produced = ProducedStills()
        self.result: ProducedStills | None = None  # once finish() returned
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"stills-{plan.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, frame: av.VideoFrame) -> None:
        """A frame of the rung, in time order. Cheap unless some still is due at its time."""
        time = frame.time
        if time is None:
            return
        self._last = (frame, time)
        duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
        self._media_end = max(self._media_end, time + duration)
        due: _Due | None = None
        if time + _EPSILON >= self._next_poster:
            due = _Due(frame, time, poster=True)
            self._next_poster = self._after(time)
        while (self._next_thumbnail < len(self._thumbnail_times)
               and time + _EPSILON >= self._thumbnail_times[self._next_thumbnail]):
            due = due or _Due(frame, time)
            due.thumbnails.append(self._next_thumbnail)
            self._next_thumbnail += 1
        while self._next_tile < len(self._tile_starts) and time + _EPSILON >= self._tile_starts[self._next_tile]:
            due = due or _Due(frame, time)
            due.tiles += 1
            self._next_tile += 1
        if due is not None:
            self._put(due)

    def _after(self, time: float) -> float:
        """When the poster's next candidate is due."""
        assert self._poster is not None
        if self._poster.at_seconds is not None:
            return math.inf  # the one frame asked for
        step = self._poster.sample_seconds
        return (math.floor((time + _EPSILON) / step) + 1) * step

    def end_of_stream(self) -> None:
        """Nothing more comes: the thread writes the poster and the storyboard while the caller goes on
        (the encoders flushing). Cheap; finish() waits for the files."""
        if self._ended:
            return
        self._ended = True
        if self._last is not None:
            # The video ended before its stated length: the missing thumbnails (and a poster asked for
            # past the end) show its last picture.
            frame, at = self._last
            missing = list(range(self._next_thumbnail, len(self._thumbnail_times)))
            poster = self._next_poster < math.inf and self._picker is None
            if missing or poster:
                self._put(_Due(frame, at, poster=poster, thumbnails=missing))
            self._next_thumbnail, self._next_poster = len(self._thumbnail_times), math.inf
        self._last = None
        self._put(_END)

    def finish(self) -> ProducedStills:
        """Waits for every file (calls end_of_stream() if the caller has not); raises what went wrong."""
        self.end_of_stream()
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.result = self._produced
        return self._produced

    def close(self) -> None:
        """Stops the thread (after a failure too, without writing more); the files are the caller's to remove."""
        self._last = None
        if self._thread.is_alive():
            self._queue.put(_ABORT)
            self._thread.join()

    def _put(self, item: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def _run(self) -> None:
        started = thread_time()
        try:
            while (item := self._queue.get()) is not _ABORT:
                if item is _END and self._error is not None:
                    return
                if self._error is not None:
                    continue  # keep draining, so the decode loop never blocks on a dead thread
                try:
                    if item is _END:
                        self._complete()
                        return
                    self._take(item)  # type: ignore[arg-type]
                except BaseException as error:  # handed to the decode loop on its next offer, or to finish()
                    self._error = error
        finally:
            self._produced.cpu_seconds = thread_time() - started

    def _take(self, due: _Due) -> None:
        if due.poster:
            if self._picker is not None:
                self._picker.add(due.time, luma_stats(small_luma(due.frame)), due.frame)
            else:
                self._fixed_poster = (due.time, due.frame)
        thumbnails = self._thumbnails
        if due.thumbnails and thumbnails is not None:
            rgb = rgb_picture(due.frame, thumbnails.size)
            for index in due.thumbnails:
                name = thumbnails.file_name(index)
                write_jpeg(rgb, self.dir / name, thumbnails.jpeg_quality)
                self._produced.thumbnails.append(StillFile(name, self.dir / name, "image/jpeg", thumbnails.size.width,
                                                           thumbnails.size.height, round(due.time, 3)))
        if due.tiles and self._sheet is not None:
            rgb = rgb_picture(due.frame, self._sheet.plan.tile)
            for _ in range(due.tiles):
                self._sheet.add(rgb)

    def _complete(self) -> None:
        """The files made at the end of the stream."""
        if self._picker is not None:
            choice = self._picker.finish()
            self._produced.poster_rejections = dict(self._picker.rejections)
            if choice is not None:
                self._write_poster(choice)
        elif self._fixed_poster is not None:
            time, frame = self._fixed_poster
            self._write_poster(PosterChoice(time, frame, 0.0, None))
        if self._sheet is not None and self._sheet.tiles:
            self._write_storyboard()

    def _write_poster(self, choice: PosterChoice[av.VideoFrame]) -> None:
        plan = self._poster
        assert plan is not None
        rgb = rgb_picture(choice.picture, plan.size)
        at = round(choice.time, 3)
        jpeg, webp = (self.dir / name for name in plan.file_names)
        write_jpeg(rgb, jpeg, plan.jpeg_quality)
        write_webp(rgb, webp, plan.webp_quality)
        self._produced.poster = [
            StillFile(jpeg.name, jpeg, "image/jpeg", plan.size.width, plan.size.height, at),
            StillFile(webp.name, webp, "image/webp", plan.size.width, plan.size.height, at),
        ]
        if self._picker is None:
            return  # taken where the profile said
        extra = {"time": at, "score": round(choice.score, 3), "sampled": self._picker.samples,
                 "refused": self._produced.poster_rejections}
        if choice.rejected_because:
            log.info("no frame made a good poster; took the least bad (%s)", choice.rejected_because,
                     extra={"fields": extra})
        else:
            log.info("poster chosen", extra={"fields": extra})

    def _write_storyboard(self) -> None:
        sheet = self._sheet
        assert sheet is not None
        plan = sheet.plan
        tiles = sheet.close(self._media_end or plan.content_seconds)  # where the pictures really stopped
        image = sheet.image()
        sprite, index = self.dir / plan.sprite_name, self.dir / plan.index_name
        write_jpeg(image, sprite, plan.jpeg_quality)
        index.write_text(storyboard_vtt(tiles, plan.tile.width, plan.tile.height, plan.sprite_name), encoding="utf-8")
        self._produced.storyboard = [
            StillFile(sprite.name, sprite, "image/jpeg", image.shape[1], image.shape[0]),
            StillFile(index.name, index, "text/vtt"),
        ]
