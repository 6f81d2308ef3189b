"""Picks the poster while the frames go by, holding at most three sampled
pictures (the candidate being judged and its two neighbours) and the best
one so far: memory stays bounded whatever the video's length.

Preference, best first: a frame `rejection` lets through inside the poster
region (the middle 80% of the video), then one outside it, then (a video with
no acceptable frame at all, e.g. entirely black) the best-scoring of the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from services.process_svc.execute.stills.scoring import LumaStats, poster_score, rejection

Picture = TypeVar("Picture")

# Lower is preferred.
_IN_REGION, _OUTSIDE_REGION, _REJECTED = 0, 1, 2


@dataclass(frozen=True)
class PosterChoice(Generic[Picture]):
    time: float  # content seconds
    picture: Picture
    score: float
    rejected_because: str | None  # None, unless no frame of the video was acceptable


@dataclass
class _Sample(Generic[Picture]):
    time: float
    stats: LumaStats
    picture: Picture


class PosterPicker(Generic[Picture]):
    def __init__(self, region: tuple[float, float]) -> None:
        self._region = region
        self._previous: LumaStats | None = None
        self._pending: list[_Sample[Picture]] = []  # the sample being judged waits for its next neighbour
        self._best: tuple[tuple[int, float], PosterChoice[Picture]] | None = None
        self.samples = 0
        self.rejections: dict[str, int] = {}  # why frames were refused, for the log

    def add(self, time: float, stats: LumaStats, picture: Picture) -> None:
        """One sampled frame, in time order."""
        self.samples += 1
        self._pending.append(_Sample(time, stats, picture))
        if len(self._pending) == 2:
            self._judge(self._pending[0], self._pending[1].stats)
            self._previous = self._pending.pop(0).stats

    def finish(self) -> PosterChoice[Picture] | None:
        """The chosen frame; None when no frame was sampled."""
        if self._pending:
            self._judge(self._pending.pop(), None)
        return self._best[1] if self._best is not None else None

    def _judge(self, sample: _Sample[Picture], following: LumaStats | None) -> None:
        reason = rejection(self._previous, sample.stats, following)
        if reason is not None:
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
            tier = _REJECTED
        else:
            start, end = self._region
            tier = _IN_REGION if start <= sample.time <= end else _OUTSIDE_REGION
        rank = (tier, -poster_score(self._previous, sample.stats, following))
        if self._best is None or rank < self._best[0]:
            self._best = (rank, PosterChoice(sample.time, sample.picture, -rank[1], reason))
