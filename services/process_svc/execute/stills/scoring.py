"""How good a poster a frame makes, from cheap statistics of a small luma
picture (about 160 pixels wide): no colour conversion, no full-size work.

A frame is refused as a poster when it is
- near black, near white or flat (no contrast): a title gap, a flash, a slate;
- in a fade: its mean brightness and its contrast both move steadily from its
  previous neighbour, through it, to its next one;
- blurred at a scene cut: a cut (the luma histograms of two neighbours differ a
  lot) next to it, and it is much less sharp (Laplacian variance) than its
  neighbour on its own side of the cut; a frame with cuts on both sides (a
  flash, a one-frame shot) is refused too.
The others are ranked by `poster_score`: detail (histogram entropy), sharpness,
contrast, exposure near the middle of the range, less how much the frame
differs from its neighbours (the steady middle of a shot rather than its edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 32
# Thresholds on the 0 (black) .. 1 (white) scale of limited-range luma (16..235).
NEAR_BLACK_MEAN = 0.08
NEAR_WHITE_MEAN = 0.92
MOSTLY_DARK_SHARE = 0.85  # share of pixels in the darkest 1/16 of the range
FLAT_CONTRAST = 0.04  # standard deviation of luma
FADE_MEAN_STEP = 0.01  # least change of mean luma between neighbours, each step, for a fade
FADE_CONTRAST_STEP = 0.03  # least relative change of contrast between neighbours, each step
CUT_DISTANCE = 0.5  # histogram distance (0 same .. 1 disjoint) above which two neighbours are different shots
BLUR_RATIO = 0.6  # sharper neighbour of the same shot: this frame is blurred if below this share of it
TARGET_MEAN = 0.45


@dataclass(frozen=True)
class LumaStats:
    mean: float  # 0 black .. 1 white
    contrast: float  # standard deviation, same scale
    sharpness: float  # variance of the 4-neighbour Laplacian, on 8-bit values
    histogram: tuple[float, ...]  # HISTOGRAM_BINS shares summing to 1, black first


def luma_stats(luma: np.ndarray) -> LumaStats:
    """Statistics of an 8-bit limited-range (16..235) luma picture, at least 3x3."""
    if luma.ndim != 2 or min(luma.shape) < 3:
        raise ValueError(f"luma_stats takes a 2-D picture of at least 3x3, got shape {luma.shape}")
    levels = np.clip((luma.astype(np.float32) - 16.0) / 219.0, 0.0, 1.0)
    counts = np.bincount(np.minimum((levels * HISTOGRAM_BINS).astype(np.int32), HISTOGRAM_BINS - 1).ravel(),
                         minlength=HISTOGRAM_BINS)
    values = luma.astype(np.float32)
    laplacian = (values[:-2, 1:-1] + values[2:, 1:-1] + values[1:-1, :-2] + values[1:-1, 2:]
                 - 4.0 * values[1:-1, 1:-1])
    return LumaStats(mean=float(levels.mean()), contrast=float(levels.std()), sharpness=float(laplacian.var()),
                     histogram=tuple(float(c) for c in counts / counts.sum()))


def histogram_distance(a: LumaStats, b: LumaStats) -> float:
    """Half the L1 distance of the two histograms: 0 for the same spread of brightness, 1 for disjoint."""
    return 0.5 * sum(abs(x - y) for x, y in zip(a.histogram, b.histogram, strict=True))


def entropy(stats: LumaStats) -> float:
    """Bits of the luma histogram: 0 for one flat level, 5 for all 32 bins equally used."""
    return -sum(p * math.log2(p) for p in stats.histogram if p > 0)


def score(stats: LumaStats) -> float:
    """How good a picture the frame is on its own: higher is better."""
    return (entropy(stats) / math.log2(HISTOGRAM_BINS)
            + math.log10(1.0 + stats.sharpness) / 3.0
            + 2.0 * stats.contrast
            - abs(stats.mean - TARGET_MEAN))


def poster_score(previous: LumaStats | None, current: LumaStats, following: LumaStats | None) -> float:
    """`score`, less how much the frame differs from its sampled neighbours: a frame in the steady
    middle of a shot stands for it better than one at its edge (next to a cut or the end of a fade)."""
    change = max([histogram_distance(n, current) for n in (previous, following) if n is not None], default=0.0)
    return score(current) - change


def rejection(previous: LumaStats | None, current: LumaStats, following: LumaStats | None) -> str | None:
    """Why `current` must not be the poster, judged with its sampled neighbours (None at either end);
    None when it may be."""
    dark_share = sum(current.histogram[:HISTOGRAM_BINS // 16])
    if current.mean < NEAR_BLACK_MEAN or dark_share > MOSTLY_DARK_SHARE:
        return "near black"
    if current.mean > NEAR_WHITE_MEAN:
        return "near white"
    if current.contrast < FLAT_CONTRAST:
        return "flat"
    if previous is not None and following is not None and _fading(previous, current, following):
        return "in a fade"
    cut_before = previous is not None and histogram_distance(previous, current) > CUT_DISTANCE
    cut_after = following is not None and histogram_distance(current, following) > CUT_DISTANCE
    if cut_before and cut_after:  # no neighbour of the same shot: compare with the sharper of the two
        assert previous is not None and following is not None
        sharpest = max(previous.sharpness, following.sharpness)
        return "blurred at a scene cut" if current.sharpness < BLUR_RATIO * sharpest else "between two cuts"
    same_shot = following if cut_before else previous if cut_after else None
    if same_shot is not None and current.sharpness < BLUR_RATIO * same_shot.sharpness:
        return "blurred at a scene cut"
    return None


def _fading(previous: LumaStats, current: LumaStats, following: LumaStats) -> bool:
    """Brightness and contrast both move steadily (same direction, each step large enough) across the three:
    the picture is being mixed with black or white."""
    steps = (current.mean - previous.mean, following.mean - current.mean)
    if not (_same_direction(steps) and min(abs(s) for s in steps) >= FADE_MEAN_STEP):
        return False
    ratios = (_relative(previous.contrast, current.contrast), _relative(current.contrast, following.contrast))
    return _same_direction(ratios) and min(abs(r) for r in ratios) >= FADE_CONTRAST_STEP


def _same_direction(steps: tuple[float, float]) -> bool:
    return (steps[0] > 0 and steps[1] > 0) or (steps[0] < 0 and steps[1] < 0)


def _relative(before: float, after: float) -> float:
    return (after - before) / max(before, 1e-3)
