"""Cuts one track's encoded packets into CMAF segments: `init.mp4` and
`seg-00001.m4s`... in the track's folder, each segment opening on a keyframe.

The packets are the ones the progressive MP4 gets (a copy of each, as a
packet muxed into one container is rebased to its time base): no second
encode. FFmpeg's `hls` muxer in fMP4 mode does the cutting: a video track is
cut at the first keyframe at or after each multiple of the segment length
(with fixed GOPs that divide it: exactly there), an audio track at the first
packet there. Negative timestamps (B-frame delay, AAC priming) go through
unshifted, so the fMP4 muxer writes the same edit list as the progressive
file and both start at 0. The playlist the muxer writes is dropped:
manifests.py writes ours from the files as measured (read_track).
"""

from __future__ import annotations

from pathlib import Path

import av

from services.process_svc.adaptive.fmp4 import InitInfo, read_init, read_segment
from services.process_svc.adaptive.model import (
    FIRST_SEGMENT_NUMBER,
    INIT_SEGMENT,
    SEGMENT_PATTERN,
    Segment,
    segment_file,
)

_MUXER_PLAYLIST = ".muxer.m3u8"  # FFmpeg's own, removed on close


class CmafSegmenter:
    """Only one thread may call mux() and close() (the one writing the track)."""

    def __init__(self, folder: Path, template: av.stream.Stream, segment_seconds: float) -> None:
        """template: the encoder's stream, opened (its codec configuration is known)."""
        if segment_seconds <= 0:
            raise ValueError(f"segment length must be positive, not {segment_seconds}")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._container = av.open(str(folder / _MUXER_PLAYLIST), "w", format="hls", options={
            "hls_time": f"{segment_seconds:g}",
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": INIT_SEGMENT,
            "hls_segment_filename": str(folder / SEGMENT_PATTERN),
            "start_number": str(FIRST_SEGMENT_NUMBER),
            # Its playlist is rewritten after every segment and thrown away: keep it one entry long (no
            # `vod` type, which keeps them all), not a whole film's, so long sources stay linear. Without
            # the delete_segments flag every segment file stays.
            "hls_list_size": "1",
            "avoid_negative_ts": "disabled",
        })
        self._stream = self._container.add_stream_from_template(template, opaque=True)
        if template.codec_context.codec_tag == "hvc1":
            # The sample entry Apple's players need for HEVC (hev1 does not play there); the muxer's
            # default for HEVC is hev1, and the template's tag is not carried over on its own.
            self._stream.codec_context.codec_tag = "hvc1"
        self._closed = False

    def mux(self, packet: av.Packet) -> None:
        """Muxes an encoded packet, which becomes the segmenter's: pass a copy (copy_packet) of a packet
        another container muxes too, as muxing rebases its timestamps and binds it to a stream."""
        if packet.size == 0:
            return  # a flush marker, no data
        packet.stream = self._stream
        self._container.mux(packet)

    def close(self) -> None:
        """Writes the last segment (and the init segment, if no segment was complete yet)."""
        if self._closed:
            return
        self._closed = True
        self._container.close()
        (self.folder / _MUXER_PLAYLIST).unlink(missing_ok=True)


def copy_packet(packet: av.Packet) -> av.Packet:
    """An independent packet with the same payload, timing and key flag."""
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.duration = packet.pts, packet.dts, packet.duration
    clone.time_base = packet.time_base
    clone.is_keyframe = packet.is_keyframe
    return clone


def read_track(folder: Path) -> tuple[InitInfo, tuple[Segment, ...]]:
    """The track's init segment and every media segment as written, numbered from the first."""
    init = read_init((folder / INIT_SEGMENT).read_bytes())
    segments = []
    number = FIRST_SEGMENT_NUMBER
    while (path := folder / segment_file(number)).exists():
        data = path.read_bytes()
        info = read_segment(data, init)
        segments.append(Segment(file=path.name, start=info.decode_time, duration=info.duration, size=len(data),
                                starts_with_keyframe=info.starts_with_sync_sample))
        number += 1
    return init, tuple(segments)
