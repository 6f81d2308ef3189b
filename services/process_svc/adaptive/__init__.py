"""HLS and DASH over one set of CMAF segments, cut from the packets the
progressive renditions are muxed from (no second encode).

    CmafSegmenter      one track's packets -> init.mp4 + seg-NNNNN.m4s
    measure_video / measure_audio   a written track folder -> Track (measured)
    write_manifests    Presentation -> master.m3u8, manifest.mpd, <track>/playlist.m3u8
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from services.process_svc.adaptive.codecs import UnsupportedCodec, codecs_string
from services.process_svc.adaptive.fmp4 import Fmp4Error
from services.process_svc.adaptive.manifests import dash_manifest, hls_master_playlist, hls_media_playlist
from services.process_svc.adaptive.model import (
    AUDIO_TRACK,
    DASH_MANIFEST,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    Presentation,
    Segment,
    Track,
)
from services.process_svc.adaptive.segmenter import CmafSegmenter, read_track

__all__ = ["AUDIO_TRACK", "CmafSegmenter", "Fmp4Error", "Presentation", "Segment", "Track", "UnsupportedCodec",
           "measure_audio", "measure_video", "write_manifests"]


def measure_video(folder: Path, *, width: int, height: int, frame_rate: Fraction) -> Track:
    """The video track written into `folder` (named after it), as measured from its files."""
    init, segments = read_track(folder)
    return Track(name=folder.name, kind="video", codecs=codecs_string(init), timescale=init.timescale,
                 segments=segments, presentation_offset=init.presentation_offset, width=width, height=height,
                 frame_rate=frame_rate)


def measure_audio(folder: Path, *, channels: int, sample_rate: int) -> Track:
    init, segments = read_track(folder)
    return Track(name=folder.name, kind="audio", codecs=codecs_string(init), timescale=init.timescale,
                 segments=segments, presentation_offset=init.presentation_offset, channels=channels,
                 sample_rate=sample_rate)


def write_manifests(folder: Path, presentation: Presentation) -> list[str]:
    """Writes the playlists and the MPD; returns every file of the presentation, relative to `folder`."""
    for track in presentation.tracks:
        (folder / track.name / MEDIA_PLAYLIST).write_text(hls_media_playlist(track))
    (folder / MASTER_PLAYLIST).write_text(hls_master_playlist(presentation))
    (folder / DASH_MANIFEST).write_text(dash_manifest(presentation))
    return presentation.files()
