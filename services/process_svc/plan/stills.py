"""Stills: a poster, thumbnails and a storyboard, planned from what a profile
asks for and the ladder's plan. Pure: times, sizes and sprite geometry, no
media library.

The pictures come from one rung of the ladder (upright, square pixels,
limited-range BT.709), the smallest rung at least as wide as the widest
still asks for, so no still is upscaled from a smaller picture than the
source offers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.process_svc.plan.model import EncodePlan

# --- What a profile asks for -------------------------------------------------


@dataclass(frozen=True)
class PosterSpec:
    """One representative picture (`type: poster`), written as JPEG and WebP."""

    width: int = 1280  # at most; never wider than the picture it is taken from
    jpeg_quality: int = 85  # Pillow's 1..95
    webp_quality: int = 80  # 1..100
    # Candidates are sampled this often (seconds); longer videos sample less often, so that at
    # most `max_candidates` are looked at.
    sample_seconds: float = 0.25
    max_candidates: int = 240


@dataclass(frozen=True)
class ThumbnailsSpec:
    """`count` JPEG pictures at even intervals (`type: thumbnails`)."""

    count: int = 5
    width: int = 320
    jpeg_quality: int = 80


@dataclass(frozen=True)
class StoryboardSpec:
    """A sprite sheet of small pictures and its WebVTT index (`type: storyboard`)."""

    interval_seconds: float = 2.0  # one tile per interval
    tile_width: int = 160
    columns: int = 10
    max_tiles: int = 200  # longer videos get a larger interval, so one sheet always holds them all
    jpeg_quality: int = 75


# --- What the executor will do -----------------------------------------------


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int


@dataclass(frozen=True)
class PosterPlan:
    size: ImageSize
    jpeg_quality: int
    webp_quality: int
    sample_seconds: float  # a candidate every this many seconds of content
    region: tuple[float, float]  # the part of the video the poster is preferably taken from (seconds)


@dataclass(frozen=True)
class ThumbnailsPlan:
    size: ImageSize
    times: tuple[float, ...]  # content seconds, one per thumbnail
    jpeg_quality: int

    def file_name(self, index: int) -> str:
        return f"thumb-{index + 1:04d}.jpg"


@dataclass(frozen=True)
class Tile:
    """One picture of the storyboard: shown for [start, end), at (x, y) in the sprite sheet."""

    start: float
    end: float
    x: int
    y: int


@dataclass(frozen=True)
class StoryboardPlan:
    tile: ImageSize
    columns: int
    interval_seconds: float
    tiles: tuple[Tile, ...]
    jpeg_quality: int
    sprite_name: str = "storyboard.jpg"
    index_name: str = "storyboard.vtt"

    @property
    def sheet(self) -> ImageSize:
        """The sprite sheet holding every planned tile."""
        rows = math.ceil(len(self.tiles) / self.columns)
        return ImageSize(self.tile.width * min(self.columns, len(self.tiles)), self.tile.height * rows)


@dataclass(frozen=True)
class StillsPlan:
    rung: int  # index in EncodePlan.renditions of the rung whose frames the stills are made from
    content_seconds: float
    poster: PosterPlan | None = None
    thumbnails: ThumbnailsPlan | None = None
    storyboard: StoryboardPlan | None = None


# --- Planning ----------------------------------------------------------------


def plan_stills(encode: EncodePlan, *, poster: PosterSpec | None = None, thumbnails: ThumbnailsSpec | None = None,
                storyboard: StoryboardSpec | None = None) -> StillsPlan:
    """Where each still comes from, its size and its times, for this ladder and source."""
    if not encode.renditions:
        raise ValueError("stills need at least one video rendition to take their pictures from")
    content = max(encode.source.duration_seconds - sum(end - start for start, end in encode.source.timeline_gaps),
                  0.0)
    widest = max([s.width for s in (poster, thumbnails) if s is not None]
                 + ([storyboard.tile_width] if storyboard is not None else []), default=0)
    rung = picture_rung([(r.width, r.height) for r in encode.renditions], widest)
    picture = ImageSize(encode.renditions[rung].width, encode.renditions[rung].height)
    return StillsPlan(
        rung=rung,
        content_seconds=content,
        poster=_poster(poster, picture, content) if poster is not None else None,
        thumbnails=_thumbnails(thumbnails, picture, content) if thumbnails is not None else None,
        storyboard=_storyboard(storyboard, picture, content) if storyboard is not None else None,
    )


def picture_rung(sizes: list[tuple[int, int]], width: int) -> int:
    """The smallest rung at least `width` wide (scaling down only), else the widest."""
    wide_enough = [i for i, (w, _) in enumerate(sizes) if w >= width]
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


def _poster(spec: PosterSpec, picture: ImageSize, content: float) -> PosterPlan:
    step = max(spec.sample_seconds, content / spec.max_candidates) if spec.max_candidates else spec.sample_seconds
    return PosterPlan(size=fit_width(picture, spec.width), jpeg_quality=spec.jpeg_quality,
                      webp_quality=spec.webp_quality, sample_seconds=step, region=poster_region(content))


def _thumbnails(spec: ThumbnailsSpec, picture: ImageSize, content: float) -> ThumbnailsPlan:
    return ThumbnailsPlan(size=fit_width(picture, spec.width), times=thumbnail_times(content, spec.count),
                          jpeg_quality=spec.jpeg_quality)


def _storyboard(spec: StoryboardSpec, picture: ImageSize, content: float) -> StoryboardPlan:
    tile = fit_width(picture, spec.tile_width)
    interval, tiles = storyboard_tiles(content, spec.interval_seconds, spec.max_tiles, spec.columns, tile)
    return StoryboardPlan(tile=tile, columns=spec.columns, interval_seconds=interval, tiles=tiles,
                          jpeg_quality=spec.jpeg_quality)
