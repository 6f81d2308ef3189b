"""Stills: a poster, thumbnails and a storyboard, planned from what a profile
asks for, the source and the ladder. Pure: times, sizes and sprite geometry,
no media library.

Each still output takes its pictures from one rung of the ladder (upright,
square pixels, limited-range BT.709), the smallest rung at least as wide as
the still, so no still is upscaled from a smaller picture than the source
offers, and small stills are scaled from small pictures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from services.process_svc.plan.model import RenditionPlan, SourceInfo
from services.process_svc.plan.specs import PosterOutput, StoryboardOutput, ThumbnailsOutput

if TYPE_CHECKING:  # plan/outputs.py registers these planners: no import cycle at run time
    from services.process_svc.plan.outputs import PlanContext

# What a profile asks for: PosterOutput, ThumbnailsOutput, StoryboardOutput in specs.py.

# Poster candidates are sampled every this many seconds; longer videos less often, so that at most
# POSTER_MAX_CANDIDATES frames are judged.
POSTER_SAMPLE_SECONDS = 0.25
POSTER_MAX_CANDIDATES = 240
# Pillow's JPEG quality (1..95) and WebP quality (1..100).
POSTER_JPEG_QUALITY, POSTER_WEBP_QUALITY = 85, 80
THUMBNAIL_JPEG_QUALITY = 80
STORYBOARD_JPEG_QUALITY = 75


# --- What the executor will do -----------------------------------------------


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int


@dataclass(frozen=True)
class PosterPlan:
    kind: ClassVar[str] = "poster"
    name: str
    rung: str  # the rendition whose frames it is taken from
    content_seconds: float
    size: ImageSize
    jpeg_quality: int
    webp_quality: int
    sample_seconds: float  # a candidate every this many seconds of content
    region: tuple[float, float]  # the part of the video the poster is preferably taken from (seconds)
    at_seconds: float | None = None  # a fixed time instead of a choice

    @property
    def file_names(self) -> tuple[str, str]:
        """JPEG and WebP: poster.jpg, poster.webp for the output named poster."""
        return f"{self.name}.jpg", f"{self.name}.webp"


@dataclass(frozen=True)
class ThumbnailsPlan:
    kind: ClassVar[str] = "thumbnails"
    name: str
    rung: str
    content_seconds: float
    size: ImageSize
    times: tuple[float, ...]  # content seconds, one per thumbnail
    jpeg_quality: int

    def file_name(self, index: int) -> str:
        """thumb-0001.jpg... for the output named thumbnails, <name>-0001.jpg for others."""
        stem = "thumb" if self.name == "thumbnails" else self.name
        return f"{stem}-{index + 1:04d}.jpg"


@dataclass(frozen=True)
class Tile:
    """One picture of the storyboard: shown for [start, end), at (x, y) in the sprite sheet."""

    start: float
    end: float
    x: int
    y: int


@dataclass(frozen=True)
class StoryboardPlan:
    kind: ClassVar[str] = "storyboard"
    name: str
    rung: str
    content_seconds: float
    tile: ImageSize
    columns: int
    interval_seconds: float
    tiles: tuple[Tile, ...]
    jpeg_quality: int

    @property
    def sprite_name(self) -> str:
        return f"{self.name}.jpg"

    @property
    def index_name(self) -> str:
        return f"{self.name}.vtt"

    @property
    def sheet(self) -> ImageSize:
        """The sprite sheet holding every planned tile."""
        rows = math.ceil(len(self.tiles) / self.columns)
        return ImageSize(self.tile.width * min(self.columns, len(self.tiles)), self.tile.height * rows)


StillPlan = PosterPlan | ThumbnailsPlan | StoryboardPlan


# --- Planning (the planners of PLANNERS, plan/outputs.py) --------------------


def plan_poster(spec: PosterOutput, context: PlanContext) -> PosterPlan:
    content = content_seconds(context.source)
    rung = _rung(context.renditions, spec.width)
    step = max(POSTER_SAMPLE_SECONDS, content / POSTER_MAX_CANDIDATES)
    at = min(spec.at_seconds, content) if spec.at_seconds is not None else None
    return PosterPlan(name=spec.name, rung=rung.name, content_seconds=content,
                      size=fit_width(ImageSize(rung.width, rung.height), spec.width or rung.width),
                      jpeg_quality=POSTER_JPEG_QUALITY, webp_quality=POSTER_WEBP_QUALITY, sample_seconds=step,
                      region=poster_region(content), at_seconds=at)


def plan_thumbnails(spec: ThumbnailsOutput, context: PlanContext) -> ThumbnailsPlan:
    content = content_seconds(context.source)
    rung = _rung(context.renditions, spec.width)
    return ThumbnailsPlan(name=spec.name, rung=rung.name, content_seconds=content,
                          size=fit_width(ImageSize(rung.width, rung.height), spec.width),
                          times=thumbnail_times(content, spec.count), jpeg_quality=THUMBNAIL_JPEG_QUALITY)


def plan_storyboard(spec: StoryboardOutput, context: PlanContext) -> StoryboardPlan:
    content = content_seconds(context.source)
    rung = _rung(context.renditions, spec.tile_width)
    tile = fit_width(ImageSize(rung.width, rung.height), spec.tile_width)
    interval, tiles = storyboard_tiles(content, spec.interval_seconds, spec.max_tiles, spec.columns, tile)
    return StoryboardPlan(name=spec.name, rung=rung.name, content_seconds=content, tile=tile, columns=spec.columns,
                          interval_seconds=interval, tiles=tiles, jpeg_quality=STORYBOARD_JPEG_QUALITY)


def content_seconds(source: SourceInfo) -> float:
    """How long the renditions last: the source's duration less the clock jumps they close up."""
    return max(source.duration_seconds - sum(end - start for start, end in source.timeline_gaps), 0.0)


def picture_rung(sizes: Sequence[tuple[int, int]], width: int | None) -> int:
    """The smallest rung at least `width` wide (scaling down only), else (or with no width) the widest."""
    wide_enough = [i for i, (w, _) in enumerate(sizes) if width is not None and w >= width]
    if wide_enough:
        return min(wide_enough, key=lambda i: sizes[i][0] * sizes[i][1])
    return max(range(len(sizes)), key=lambda i: sizes[i][0])


def fit_width(picture: ImageSize, width: int) -> ImageSize:
    """The picture scaled to `width` (never up), aspect kept, even sizes (within a pixel of the aspect)."""
    width = min(width, picture.width)
    height = picture.height * width / picture.width
    return ImageSize(max(2, 2 * round(width / 2)), max(2, 2 * round(height / 2)))


def poster_region(content: float) -> tuple[float, float]:
    """Where a poster is preferably taken from: past the first and before the last tenth (titles,
    fades from and to black, credits); the whole video when that leaves under a second."""
    start, end = 0.1 * content, 0.9 * content
    return (start, end) if end - start >= 1.0 else (0.0, content)


def thumbnail_times(content: float, count: int) -> tuple[float, ...]:
    """The middles of `count` equal parts: evenly spaced, never the very first or last frame."""
    return tuple(round(content * (i + 0.5) / count, 3) for i in range(count))


def storyboard_tiles(content: float, interval: float, max_tiles: int, columns: int,
                     tile: ImageSize) -> tuple[float, tuple[Tile, ...]]:
    """The interval actually used (stretched so that at most max_tiles cover the video) and the tiles,
    row by row, `columns` to a row."""
    count = max(1, math.ceil(round(content / interval, 6))) if content > 0 else 1
    if count > max_tiles:
        count = max_tiles
        interval = content / max_tiles
    tiles = []
    for i in range(count):
        start = round(i * interval, 3)
        end = round(min((i + 1) * interval, content), 3) if content > 0 else round(interval, 3)
        row, column = divmod(i, columns)
        tiles.append(Tile(start=start, end=max(end, start), x=column * tile.width, y=row * tile.height))
    return interval, tuple(tiles)


def _rung(renditions: Sequence[RenditionPlan], width: int | None) -> RenditionPlan:
    if not renditions:
        raise ValueError("stills need a video rendition to take their pictures from")
    return renditions[picture_rung([(r.width, r.height) for r in renditions], width)]
