"""Reads what the manifests need out of fragmented MP4 (CMAF) files: the
track's timescale and codec configuration from the init segment, and each
media segment's decode time, duration and whether it opens on a sync sample.

The files are the truth a player sees, so the playlists are written from
them and not from what the muxer was asked to do. ISO/IEC 14496-12 boxes,
read with struct; no media library needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Boxes whose payload is nothing but more boxes.
_CONTAINERS = {"moov", "trak", "mdia", "minf", "stbl", "moof", "traf", "mvex", "edts", "dinf"}
_NON_SYNC = 0x00010000  # sample_is_non_sync_sample in the sample flags
# Sample entry -> the box holding its codec configuration record.
_VIDEO_CONFIG_BOXES = {"hvc1": "hvcC", "hev1": "hvcC", "av01": "av1C", "vp09": "vpcC"}


class Fmp4Error(ValueError):
    """The bytes are not the fragmented MP4 this module expects."""


@dataclass(frozen=True)
class InitInfo:
    timescale: int  # ticks per second of the track's media time (mdhd)
    sample_entry: str  # "avc1", "mp4a", ...
    avc_config: bytes = b""  # the avcC payload (video), empty otherwise
    # The codec configuration record of other video sample entries: hvcC (hvc1/hev1), av1C (av01),
    # vpcC (vp09, a full box: version and flags first); empty otherwise.
    video_config: bytes = b""
    audio_config: bytes = b""  # the AudioSpecificConfig in esds (AAC), empty otherwise
    default_sample_duration: int = 0  # trex defaults, used when a fragment states none
    default_sample_flags: int = 0
    # The edit list's media time: where presentation starts in the media timeline (the B-frame reorder
    # delay for video, the AAC priming samples for audio).
    presentation_offset: int = 0


@dataclass(frozen=True)
class SegmentInfo:
    decode_time: int  # tfdt of the first fragment, in the track's timescale
    duration: int  # sum of every sample's duration, in the track's timescale
    samples: int
    starts_with_sync_sample: bool  # a keyframe first: the segment decodes on its own


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(type, payload start, box end) of each box between start and end."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if offset + 8 > end:
            raise Fmp4Error(f"truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise Fmp4Error(f"box {kind!r} at byte {offset} claims {size} bytes, {end - offset} remain")
        yield kind.decode("latin-1"), offset + header, offset + size
        offset += size


def _find(data: bytes, path: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Payload span of the first box along a path such as "moov/trak/mdia/mdhd"."""
    head, _, rest = path.partition("/")
    for kind, payload, box_end in _boxes(data, start, end):
        if kind == head:
            return (payload, box_end) if not rest else _find(data, rest, payload, box_end)
    return None


def read_init(data: bytes) -> InitInfo:
    """The init segment (ftyp + moov) of a single-track fragmented MP4."""
    mdhd = _find(data, "moov/trak/mdia/mdhd")
    stsd = _find(data, "moov/trak/mdia/minf/stbl/stsd")
    if mdhd is None or stsd is None:
        raise Fmp4Error("no moov/trak with mdhd and stsd: not an MP4 init segment")
    version = data[mdhd[0]]
    (timescale,) = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))
    # stsd: full box header, entry count, then the first sample entry (a box).
    entry = next(_boxes(data, stsd[0] + 8, stsd[1]))
    kind, payload, entry_end = entry
    avc_config = audio_config = video_config = b""
    if kind in ("avc1", "avc3"):
        # VisualSampleEntry: 78 bytes of fixed fields before its child boxes.
        avcc = _find(data, "avcC", payload + 78, entry_end)
        if avcc is not None:
            avc_config = data[avcc[0]:avcc[1]]
    elif kind in _VIDEO_CONFIG_BOXES:
        record = _find(data, _VIDEO_CONFIG_BOXES[kind], payload + 78, entry_end)
        if record is not None:
            video_config = data[record[0]:record[1]]
    elif kind == "mp4a":
        # AudioSampleEntry: 28 bytes of fixed fields before its child boxes.
        esds = _find(data, "esds", payload + 28, entry_end)
        if esds is not None:
            audio_config = _decoder_specific_info(data[esds[0] + 4:esds[1]])
    defaults = (0, 0)
    trex = _find(data, "moov/mvex/trex")
    if trex is not None:
        # version/flags, track_ID, default_sample_description_index, duration, size, flags
        _, _, _, duration, _, flags = struct.unpack_from(">IIIIII", data, trex[0])
        defaults = (duration, flags)
    return InitInfo(timescale=timescale, sample_entry=kind, avc_config=avc_config, audio_config=audio_config,
                    video_config=video_config,
                    default_sample_duration=defaults[0], default_sample_flags=defaults[1],
                    presentation_offset=_edit_offset(data))


def _edit_offset(data: bytes) -> int:
    """The media time of the first edit that shows media (an empty edit, media time -1, shows none)."""
    elst = _find(data, "moov/trak/edts/elst")
    if elst is None:
        return 0
    version = data[elst[0]]
    (count,) = struct.unpack_from(">I", data, elst[0] + 4)
    offset = elst[0] + 8
    for _ in range(count):
        if version == 1:
            _, media_time = struct.unpack_from(">Qq", data, offset)
            offset += 20
        else:
            _, media_time = struct.unpack_from(">Ii", data, offset)
            offset += 12
        if media_time >= 0:
            return media_time
    return 0


def _decoder_specific_info(esds: bytes) -> bytes:
    """The DecoderSpecificInfo (tag 5) inside an ES_Descriptor: for AAC, the AudioSpecificConfig."""
    offset = 0
    while offset < len(esds):
        tag = esds[offset]
        offset += 1
        length = 0
        for _ in range(4):  # expandable size: 7 bits a byte, high bit says more follow
            byte = esds[offset]
            offset += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: ES_ID, flags, then optional fields and nested descriptors
            flags = esds[offset + 2]
            offset += 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
            if flags & 0x40:
                offset += 1 + esds[offset]
        elif tag == 0x04:  # DecoderConfigDescriptor: 13 fixed bytes then DecoderSpecificInfo
            offset += 13
        elif tag == 0x05:
            return esds[offset:offset + length]
        else:
            offset += length
    return b""


def read_segment(data: bytes, init: InitInfo) -> SegmentInfo:
    """A media segment: [styp] [sidx] then one or more moof + mdat pairs of one track."""
    decode_time: int | None = None
    duration = samples = 0
    first_sync: bool | None = None
    for kind, payload, end in _boxes(data):
        if kind != "moof":
            continue
        traf = _find(data, "traf", payload, end)
        if traf is None:
            raise Fmp4Error("a moof without traf")
        tfhd = _find(data, "tfhd", *traf)
        tfdt = _find(data, "tfdt", *traf)
        if tfhd is None or tfdt is None:
            raise Fmp4Error("a traf without tfhd or tfdt: not a CMAF fragment")
        default_duration, default_flags = _fragment_defaults(data, tfhd[0], init)
        if decode_time is None:
            version = data[tfdt[0]]
            (decode_time,) = struct.unpack_from(">Q" if version == 1 else ">I", data, tfdt[0] + 4)
        for kind_in_traf, trun_payload, _ in _boxes(data, *traf):
            if kind_in_traf != "trun":
                continue
            for sample_duration, sample_flags in _samples(data, trun_payload, default_duration, default_flags):
                if first_sync is None:
                    first_sync = not sample_flags & _NON_SYNC
                duration += sample_duration
                samples += 1
    if decode_time is None:
        raise Fmp4Error("no moof: not a media segment")
    return SegmentInfo(decode_time=decode_time, duration=duration, samples=samples,
                       starts_with_sync_sample=bool(first_sync))


def _fragment_defaults(data: bytes, tfhd: int, init: InitInfo) -> tuple[int, int]:
    (flags,) = struct.unpack_from(">I", data, tfhd)
    flags &= 0xFFFFFF
    offset = tfhd + 8  # version/flags, track_ID
    if flags & 0x01:  # base-data-offset
        offset += 8
    if flags & 0x02:  # sample-description-index
        offset += 4
    duration, sample_flags = init.default_sample_duration, init.default_sample_flags
    if flags & 0x08:
        (duration,) = struct.unpack_from(">I", data, offset)
        offset += 4
    if flags & 0x10:  # default-sample-size
        offset += 4
    if flags & 0x20:
        (sample_flags,) = struct.unpack_from(">I", data, offset)
    return duration, sample_flags


def _samples(data: bytes, trun: int, default_duration: int, default_flags: int) -> Iterator[tuple[int, int]]:
    """(duration, flags) of each sample of a trun."""
    (flags,) = struct.unpack_from(">I", data, trun)
    flags &= 0xFFFFFF
    (count,) = struct.unpack_from(">I", data, trun + 4)
    offset = trun + 8
    if flags & 0x001:  # data-offset
        offset += 4
    first_flags = None
    if flags & 0x004:
        (first_flags,) = struct.unpack_from(">I", data, offset)
        offset += 4
    for index in range(count):
        duration, sample_flags = default_duration, default_flags
        if flags & 0x100:
            (duration,) = struct.unpack_from(">I", data, offset)
            offset += 4
        if flags & 0x200:  # size
            offset += 4
        if flags & 0x400:
            (sample_flags,) = struct.unpack_from(">I", data, offset)
            offset += 4
        if flags & 0x800:  # composition time offset
            offset += 4
        if index == 0 and first_flags is not None:
            sample_flags = first_flags
        yield duration, sample_flags
