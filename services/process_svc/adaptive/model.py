"""An adaptive presentation as it was written: tracks of CMAF segments with
their measured durations and sizes. Plain frozen dataclasses; the manifest
writers (manifests.py) turn them into HLS playlists and a DASH MPD.

Layout inside the presentation folder (every reference relative, none
leaving the folder, so a URL signed in its path covers every file):

    master.m3u8  manifest.mpd
    <track>/init.mp4  <track>/seg-00001.m4s ...  <track>/playlist.m3u8
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
MEDIA_PLAYLIST = "playlist.m3u8"
INIT_SEGMENT = "init.mp4"
FIRST_SEGMENT_NUMBER = 1
AUDIO_TRACK = "audio"


def segment_file(number: int) -> str:
    """The file name of media segment `number` (counting from FIRST_SEGMENT_NUMBER)."""
    return f"seg-{number:05d}.m4s"


# The same names as a DASH SegmentTemplate and as an FFmpeg muxer pattern.
SEGMENT_TEMPLATE = "seg-$Number%05d$.m4s"
SEGMENT_PATTERN = "seg-%05d.m4s"


@dataclass(frozen=True)
class Segment:
    file: str  # name inside the track's folder
    start: int  # decode time of its first sample, in the track's timescale
    duration: int  # in the track's timescale
    size: int  # bytes
    starts_with_keyframe: bool

    def seconds(self, timescale: int) -> float:
        return self.duration / timescale


@dataclass(frozen=True)
class Track:
    name: str  # its folder, and its id in the MPD ("720p", "audio")
    kind: str  # "video" or "audio"
    codecs: str  # RFC 6381, e.g. "avc1.64001f"
    timescale: int
    segments: tuple[Segment, ...]
    presentation_offset: int = 0  # media time shown at presentation time 0 (the init's edit list)
    width: int = 0
    height: int = 0
    frame_rate: Fraction = Fraction(0)
    channels: int = 0
    sample_rate: int = 0

    @property
    def duration_seconds(self) -> float:
        return sum(s.duration for s in self.segments) / self.timescale

    @property
    def presentation_seconds(self) -> float:
        """How long the track plays. Audio's offset skips AAC priming samples, which do not play; video's
        is the B-frame reorder delay, which shifts every frame and removes none."""
        ticks = sum(s.duration for s in self.segments)
        if self.kind == "audio":
            ticks -= self.presentation_offset
        return ticks / self.timescale

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def peak_bitrate(self) -> int:
        """Bits per second of the densest segment (HLS BANDWIDTH, DASH @bandwidth)."""
        return max((math.ceil(s.size * 8 * self.timescale / s.duration) for s in self.segments if s.duration),
                   default=0)

    @property
    def average_bitrate(self) -> int:
        """Bits per second over the whole track (HLS AVERAGE-BANDWIDTH)."""
        duration = sum(s.duration for s in self.segments)
        return math.ceil(self.size * 8 * self.timescale / duration) if duration else 0

    @property
    def max_segment_seconds(self) -> float:
        return max((s.seconds(self.timescale) for s in self.segments), default=0.0)

    def files(self) -> list[str]:
        """Every file of the track, relative to the presentation folder."""
        return [f"{self.name}/{INIT_SEGMENT}", *(f"{self.name}/{s.file}" for s in self.segments),
                f"{self.name}/{MEDIA_PLAYLIST}"]


@dataclass(frozen=True)
class Presentation:
    video: tuple[Track, ...]  # largest first, as the ladder
    audio: Track | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        return (*self.video, *((self.audio,) if self.audio is not None else ()))

    @property
    def duration_seconds(self) -> float:
        return max((t.presentation_seconds for t in self.tracks), default=0.0)

    def files(self) -> list[str]:
        """Every file of the presentation, relative to its folder: the entry points (master playlist, MPD)
        first, as an output lists its main file first. Playback URLs point at a completed job's folder
        only, so no player sees the manifests before the segments are stored."""
        return [MASTER_PLAYLIST, DASH_MANIFEST, *(f for t in self.tracks for f in t.files())]
