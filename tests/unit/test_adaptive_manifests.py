"""The HLS playlists and DASH MPD a player reads, from measured tracks; the
codecs strings from the encoded streams' configuration records."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest

from services.process_svc.adaptive.codecs import (
    UnsupportedCodec,
    aac_codecs,
    av1_codecs,
    avc_codecs,
    hevc_codecs,
    vp9_codecs,
)
from services.process_svc.adaptive.manifests import dash_manifest, hls_master_playlist, hls_media_playlist
from services.process_svc.adaptive.model import Presentation, Segment, Track, segment_file

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def _track(name: str, kind: str, timescale: int, segments: list[tuple[int, int]], **extra: object) -> Track:
    """segments: (duration in ticks, bytes), back to back from 0."""
    start, made = 0, []
    for number, (duration, size) in enumerate(segments, start=1):
        made.append(Segment(segment_file(number), start, duration, size, True))
        start += duration
    return Track(name=name, kind=kind, timescale=timescale, segments=tuple(made), **extra)  # type: ignore[arg-type]


def _presentation() -> Presentation:
    # 720p: 4 s segments of 1.0 MB, 2.0 MB, then a 1 s tail of 0.1 MB (timescale 15360).
    hd = _track("720p", "video", 15360, [(61440, 1_000_000), (61440, 2_000_000), (15360, 100_000)],
                codecs="avc1.64001f", width=1280, height=720, frame_rate=Fraction(30000, 1001),
                presentation_offset=1024)
    sd = _track("360p", "video", 15360, [(61440, 250_000), (61440, 300_000), (15360, 20_000)],
                codecs="avc1.64001e", width=640, height=360, frame_rate=Fraction(30000, 1001),
                presentation_offset=1024)
    audio = _track("audio", "audio", 48000, [(192512, 64_000), (191488, 65_000), (49152, 16_000)],
                   codecs="mp4a.40.2", channels=2, sample_rate=48000, presentation_offset=1024)
    return Presentation(video=(hd, sd), audio=audio)


def _attributes(line: str) -> dict[str, str]:
    body = line.split(":", 1)[1]
    parts, current, quoted = [], "", False
    for char in body:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return {k: v.strip('"') for k, v in (p.split("=", 1) for p in parts)}


def test_master_playlist_states_measured_bandwidth_codecs_resolution_and_audio_group() -> None:
    presentation = _presentation()
    lines = hls_master_playlist(presentation).splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    media = [_attributes(line) for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert media == [{"TYPE": "AUDIO", "GROUP-ID": "audio", "NAME": "audio", "DEFAULT": "YES", "AUTOSELECT": "YES",
                      "CHANNELS": "2", "URI": "audio/playlist.m3u8"}]
    variants = [(_attributes(line), lines[i + 1]) for i, line in enumerate(lines)
                if line.startswith("#EXT-X-STREAM-INF:")]
    assert [uri for _, uri in variants] == ["720p/playlist.m3u8", "360p/playlist.m3u8"]
    hd = variants[0][0]
    # Peak: the 2 MB segment over 4 s = 4 Mb/s, plus audio's densest segment (65 kB in 3.989 s).
    audio_peak = -(-65_000 * 8 * 48000 // 191488)
    assert int(hd["BANDWIDTH"]) == 4_000_000 + audio_peak
    # Average: 3.1 MB over 9 s, plus 145 kB over 9.024 s of audio.
    assert int(hd["AVERAGE-BANDWIDTH"]) == -(-3_100_000 * 8 // 9) + -(-145_000 * 8 * 48000 // 433152)
    assert hd["CODECS"] == "avc1.64001f,mp4a.40.2"
    assert hd["RESOLUTION"] == "1280x720"
    assert hd["FRAME-RATE"] == "29.970"
    assert hd["AUDIO"] == "audio"
    assert variants[1][0]["RESOLUTION"] == "640x360"


def test_master_playlist_without_audio_has_no_group() -> None:
    presentation = Presentation(video=_presentation().video)
    text = hls_master_playlist(presentation)
    assert "EXT-X-MEDIA:" not in text and "AUDIO=" not in text
    assert 'CODECS="avc1.64001f"' in text


def test_media_playlist_lists_every_segment_with_its_duration_after_the_init_map() -> None:
    track = _presentation().audio
    assert track is not None
    lines = hls_media_playlist(track).splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"
    assert '#EXT-X-MAP:URI="init.mp4"' in lines
    # Each EXTINF rounded to the nearest integer may not exceed the target duration.
    assert "#EXT-X-TARGETDURATION:4" in lines
    entries = [(lines[i], lines[i + 1]) for i, line in enumerate(lines) if line.startswith("#EXTINF:")]
    assert entries == [("#EXTINF:4.010667,", "seg-00001.m4s"), ("#EXTINF:3.989333,", "seg-00002.m4s"),
                       ("#EXTINF:1.024000,", "seg-00003.m4s")]


def test_target_duration_rounds_to_the_nearest_second() -> None:
    track = _track("v", "video", 1000, [(4600, 10), (4400, 10)], codecs="avc1.64001f")
    assert "#EXT-X-TARGETDURATION:5" in hls_media_playlist(track)


def test_every_reference_is_relative_and_stays_inside_the_presentation() -> None:
    presentation = _presentation()
    references = [line for line in hls_master_playlist(presentation).splitlines() if line and line[0] != "#"]
    references += [line.split('URI="')[1].rstrip('"') for line in hls_master_playlist(presentation).splitlines()
                   if 'URI="' in line]
    mpd = ET.fromstring(dash_manifest(presentation))
    for template in mpd.iterfind(".//d:SegmentTemplate", NS):
        references += [template.get("initialization", ""), template.get("media", "")]
    assert references
    for reference in references:
        assert "://" not in reference and not reference.startswith("/") and ".." not in reference.split("/")
    assert set(presentation.files()) >= {"master.m3u8", "manifest.mpd", "720p/seg-00003.m4s",
                                         "audio/init.mp4", "360p/playlist.m3u8"}


def _timeline(template: ET.Element) -> list[tuple[int, int]]:
    """(start, duration) of every segment the SegmentTimeline describes."""
    segments: list[tuple[int, int]] = []
    for s in template.iterfind("d:SegmentTimeline/d:S", NS):
        start = int(s.get("t", segments[-1][0] + segments[-1][1] if segments else 0))
        for _ in range(1 + int(s.get("r", "0"))):
            segments.append((start, int(s.get("d", "0"))))
            start += int(s.get("d", "0"))
    return segments


def test_dash_manifest_describes_the_same_segments_with_measured_bandwidth() -> None:
    presentation = _presentation()
    mpd = ET.fromstring(dash_manifest(presentation))
    assert mpd.get("type") == "static"
    assert mpd.get("profiles") == "urn:mpeg:dash:profile:isoff-live:2011"
    # The video's 9 s; audio plays 9.024 s less its 1024 priming samples.
    assert mpd.get("mediaPresentationDuration") == "PT9.003S"
    assert mpd.get("minBufferTime") == "PT4.011S"
    sets = mpd.findall("d:Period/d:AdaptationSet", NS)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    assert [s.get("mimeType") for s in sets] == ["video/mp4", "audio/mp4"]
    by_id = {r.get("id"): r for r in mpd.iterfind(".//d:Representation", NS)}
    assert list(by_id) == ["720p", "360p", "audio"]
    hd = by_id["720p"]
    assert (hd.get("bandwidth"), hd.get("codecs"), hd.get("width"), hd.get("height"), hd.get("frameRate")) == \
        ("4000000", "avc1.64001f", "1280", "720", "30000/1001")
    assert by_id["audio"].get("codecs") == "mp4a.40.2"
    assert by_id["audio"].find("d:AudioChannelConfiguration", NS).get("value") == "2"  # type: ignore[union-attr]
    for track in presentation.tracks:
        template = by_id[track.name].find("d:SegmentTemplate", NS)
        assert template is not None
        assert template.get("presentationTimeOffset") == "1024"
        assert int(template.get("timescale", "0")) == track.timescale
        assert template.get("initialization") == f"{track.name}/init.mp4"
        timeline = _timeline(template)
        assert timeline == [(s.start, s.duration) for s in track.segments]
        # $Number$ counts from startNumber: the template names exactly the files written.
        media = template.get("media", "")
        first = int(template.get("startNumber", "1"))
        names = [media.replace("$Number%05d$", f"{first + i:05d}") for i in range(len(timeline))]
        assert names == [f"{track.name}/{s.file}" for s in track.segments]


def test_codecs_strings_come_from_the_configuration_records() -> None:
    # avcC: version 1, High profile (100 = 0x64), no constraint flags, level 3.1 (31 = 0x1f).
    assert avc_codecs("avc1", bytes([1, 100, 0, 31, 0xFF, 0xE1])) == "avc1.64001f"
    assert avc_codecs("avc1", bytes([1, 66, 0xC0, 30, 0xFF])) == "avc1.42c01e"  # constrained baseline 3.0
    # AudioSpecificConfig 0x1190: object type 2 (AAC-LC), 48 kHz, stereo.
    assert aac_codecs(bytes([0x11, 0x90])) == "mp4a.40.2"
    assert aac_codecs(bytes([0x2B, 0x92])) == "mp4a.40.5"  # HE-AAC
    with pytest.raises(UnsupportedCodec):
        avc_codecs("avc1", b"")


def test_codecs_strings_of_hevc_av1_vp9_from_their_records() -> None:
    # hvcC: version 1; profile space 0, Main tier, Main profile (1); compatibility flags 0x60000000
    # (bits 1 and 2 set, written reversed: 6); constraint bytes 0x90 then zeros; level 4 (120).
    hvcc = bytes([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120])
    assert hevc_codecs("hvc1", hvcc) == "hvc1.1.6.L120.90"
    assert hevc_codecs("hvc1", bytes([1, 0x22, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 153])) == "hvc1.2.4.H153.90"
    # av1C: marker + version 1; Main profile (0), level 4.0 (index 8); Main tier, 8 bits, 4:2:0.
    assert av1_codecs(bytes([0x81, 0x08, 0x0C])) == "av01.0.08M.08"
    assert av1_codecs(bytes([0x81, 0x0D, 0xCC])) == "av01.0.13H.10"  # high tier, 10 bits
    # vpcC (full box): profile 0, level 3.1, 8 bits.
    assert vp9_codecs(bytes([1, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0])) == "vp09.00.31.08"
    for broken in (lambda: hevc_codecs("hvc1", b""), lambda: av1_codecs(b"\x00"), lambda: vp9_codecs(b"")):
        with pytest.raises(UnsupportedCodec):
            broken()
