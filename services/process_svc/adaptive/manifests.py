"""HLS playlists and the DASH MPD of a presentation: pure functions from the
measured tracks (model.py) to text.

HLS (RFC 8216): one master playlist, a STREAM-INF per video rung whose
BANDWIDTH is the peak segment bitrate of the rung plus the audio's and whose
AVERAGE-BANDWIDTH is their means, the audio as an EXT-X-MEDIA group; one VOD
media playlist per track over its fMP4 segments (EXT-X-MAP = init.mp4).
DASH (ISO/IEC 23009-1, live profile, static): one video AdaptationSet with a
Representation per rung, one audio AdaptationSet, a SegmentTemplate with a
SegmentTimeline of the measured durations over the very same files.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from fractions import Fraction

from services.process_svc.adaptive.model import (
    AUDIO_TRACK,
    FIRST_SEGMENT_NUMBER,
    INIT_SEGMENT,
    MEDIA_PLAYLIST,
    SEGMENT_TEMPLATE,
    Presentation,
    Track,
)

HLS_VERSION = 7  # fMP4 segments with EXT-X-MAP in a playlist without I-frame tags need 6+; 7 as FFmpeg writes
AUDIO_GROUP = "audio"
DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
DASH_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"


def hls_master_playlist(presentation: Presentation) -> str:
    audio = presentation.audio
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{AUDIO_TRACK}",DEFAULT=YES,'
                     f'AUTOSELECT=YES,CHANNELS="{audio.channels}",URI="{audio.name}/{MEDIA_PLAYLIST}"')
    for video in presentation.video:
        # A rung's bandwidth counts the audio a player fetches alongside it (RFC 8216 4.3.4.2).
        peak = video.peak_bitrate + (audio.peak_bitrate if audio else 0)
        average = video.average_bitrate + (audio.average_bitrate if audio else 0)
        codecs = ",".join([video.codecs, *([audio.codecs] if audio else [])])
        attributes = [f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={average}", f'CODECS="{codecs}"',
                      f"RESOLUTION={video.width}x{video.height}", f"FRAME-RATE={float(video.frame_rate):.3f}"]
        if audio is not None:
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", f"{video.name}/{MEDIA_PLAYLIST}"]
    return "\n".join(lines) + "\n"


def hls_media_playlist(track: Track) -> str:
    """The track's VOD playlist; its URIs are relative to the track's folder."""
    target = max((_nearest_integer(s.seconds(track.timescale)) for s in track.segments), default=1)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", f"#EXT-X-TARGETDURATION:{max(target, 1)}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
             f'#EXT-X-MAP:URI="{INIT_SEGMENT}"']
    for segment in track.segments:
        lines += [f"#EXTINF:{segment.seconds(track.timescale):.6f},", segment.file]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _nearest_integer(value: float) -> int:
    return math.floor(value + 0.5)


def dash_manifest(presentation: Presentation) -> str:
    longest = max((t.max_segment_seconds for t in presentation.tracks), default=0.0)
    mpd = ET.Element("MPD", {
        "xmlns": DASH_NS,
        "profiles": DASH_PROFILE,
        "type": "static",
        "mediaPresentationDuration": _duration(presentation.duration_seconds),
        # @bandwidth is each track's peak segment rate, so one segment ahead always suffices.
        "minBufferTime": _duration(longest),
    })
    period = ET.SubElement(mpd, "Period", {"id": "0", "start": "PT0S"})
    if presentation.video:
        widest = max(presentation.video, key=lambda t: t.width * t.height)
        video_set = ET.SubElement(period, "AdaptationSet", {
            "id": "0", "contentType": "video", "mimeType": "video/mp4", "segmentAlignment": "true",
            "startWithSAP": "1", "maxWidth": str(widest.width), "maxHeight": str(widest.height),
            "maxFrameRate": _frame_rate(max(t.frame_rate for t in presentation.video)),
        })
        for track in presentation.video:
            representation = ET.SubElement(video_set, "Representation", {
                "id": track.name, "bandwidth": str(track.peak_bitrate), "codecs": track.codecs,
                "width": str(track.width), "height": str(track.height), "frameRate": _frame_rate(track.frame_rate),
                "sar": "1:1",
            })
            _segment_template(representation, track)
    if presentation.audio is not None:
        audio = presentation.audio
        audio_set = ET.SubElement(period, "AdaptationSet", {
            "id": "1", "contentType": "audio", "mimeType": "audio/mp4", "segmentAlignment": "true",
            "startWithSAP": "1", "lang": "und",
        })
        representation = ET.SubElement(audio_set, "Representation", {
            "id": audio.name, "bandwidth": str(audio.peak_bitrate), "codecs": audio.codecs,
            "audioSamplingRate": str(audio.sample_rate),
        })
        ET.SubElement(representation, "AudioChannelConfiguration",
                      {"schemeIdUri": CHANNEL_SCHEME, "value": str(audio.channels)})
        _segment_template(representation, audio)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"


def _segment_template(parent: ET.Element, track: Track) -> None:
    template = ET.SubElement(parent, "SegmentTemplate", {
        "timescale": str(track.timescale),
        "initialization": f"{track.name}/{INIT_SEGMENT}",
        "media": f"{track.name}/{SEGMENT_TEMPLATE}",
        "startNumber": str(FIRST_SEGMENT_NUMBER),
    })
    if track.presentation_offset:
        # The edit list of the init segment, said the DASH way: this media time plays at the Period's start.
        template.set("presentationTimeOffset", str(track.presentation_offset))
    timeline = ET.SubElement(template, "SegmentTimeline")
    # Runs of equal durations as one S with @r (repeat count), each run's start stated.
    runs: list[list[int]] = []  # [start, duration, repeats]
    expected = None
    for segment in track.segments:
        if runs and segment.duration == runs[-1][1] and segment.start == expected:
            runs[-1][2] += 1
        else:
            runs.append([segment.start, segment.duration, 0])
        expected = segment.start + segment.duration
    for start, duration, repeats in runs:
        attributes = {"t": str(start), "d": str(duration)}
        if repeats:
            attributes["r"] = str(repeats)
        ET.SubElement(timeline, "S", attributes)


def _duration(seconds: float) -> str:
    """xs:duration with millisecond precision, rounded up so the last frame is inside."""
    return f"PT{math.ceil(seconds * 1000) / 1000:.3f}S"


def _frame_rate(rate: Fraction) -> str:
    rate = Fraction(rate).limit_denominator(1001)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"
