"""The storyboard: small pictures tiled row by row into one sprite sheet, and
a WebVTT file whose cues point into it (`storyboard.jpg#xywh=x,y,w,h`, the
media-fragment syntax players' thumbnail plugins read for hover previews).
"""

from __future__ import annotations

import numpy as np

from services.process_svc.plan.stills import StoryboardPlan, Tile


def vtt_timestamp(seconds: float) -> str:
    """WebVTT's hh:mm:ss.ttt."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def storyboard_vtt(tiles: list[Tile], width: int, height: int, sprite_url: str) -> str:
    """The WebVTT index: one cue per tile, from its start to its end, pointing at its place in the sprite.
    sprite_url is relative to the VTT file (both live in the same folder)."""
    lines = ["WEBVTT", ""]
    for tile in tiles:
        lines += [f"{vtt_timestamp(tile.start)} --> {vtt_timestamp(tile.end)}",
                  f"{sprite_url}#xywh={tile.x},{tile.y},{width},{height}", ""]
    return "\n".join(lines)


class SpriteSheet:
    """The sheet being filled, as an RGB array of the planned size; `image()` crops it to the tiles made."""

    def __init__(self, plan: StoryboardPlan) -> None:
        self.plan = plan
        sheet = plan.sheet
        self._pixels = np.zeros((sheet.height, sheet.width, 3), dtype=np.uint8)
        self.tiles: list[Tile] = []

    @property
    def full(self) -> bool:
        return len(self.tiles) == len(self.plan.tiles)

    @property
    def next_start(self) -> float:
        """Content time of the next tile's picture."""
        return self.plan.tiles[len(self.tiles)].start

    def add(self, rgb: np.ndarray) -> None:
        """The next tile's picture, tile-sized RGB."""
        tile = self.plan.tiles[len(self.tiles)]
        size = self.plan.tile
        if rgb.shape != (size.height, size.width, 3):
            raise ValueError(f"a storyboard tile is {size.width}x{size.height} RGB, got shape {rgb.shape}")
        self._pixels[tile.y:tile.y + size.height, tile.x:tile.x + size.width] = rgb
        self.tiles.append(tile)

    def close(self, end: float) -> list[Tile]:
        """The tiles made, the last one ending at `end` (where the video really ended)."""
        if self.tiles:
            last = self.tiles[-1]
            self.tiles[-1] = Tile(start=last.start, end=max(round(end, 3), last.start), x=last.x, y=last.y)
        return self.tiles

    def image(self) -> np.ndarray:
        """The sheet cropped to the rows (and, with a single row, the columns) that hold tiles."""
        size = self.plan.tile
        rows = -(-len(self.tiles) // self.plan.columns)
        columns = min(len(self.tiles), self.plan.columns)
        return self._pixels[:rows * size.height, :columns * size.width]
