"""The `adaptive` output of a real transcode: the presentation a player gets
decodes rung by rung (init + segments), every segment opens on a keyframe,
the segments carry the progressive MP4's own packets, and the playlists and
MPD state what the files measure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import av
import pytest

from services.process_svc.execute import execute, probe_source
from services.process_svc.plan import plan_encode
from services.process_svc.profiles import parse_profile
from tests.media import make_clip

SECONDS, FPS = 6.0, 30
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def _profile(segment_seconds: float = 2.0, keyint_seconds: float = 1.0) -> object:
    return parse_profile({
        "name": "adaptive-test",
        # superfast, not ultrafast: B-frames, so the segments must carry the reorder delay as the MP4 does.
        "video_defaults": {"crf": 30, "preset": "superfast", "keyint_seconds": keyint_seconds},
        "audio": {"bitrate": "64k"},
        "outputs": [
            {"type": "video", "name": "360p", "height": 360, "maxrate": "900k", "bufsize": "1.8M"},
            {"type": "video", "name": "180p", "height": 180, "maxrate": "300k", "bufsize": "600k"},
            {"type": "adaptive", "name": "presentation", "segment_seconds": segment_seconds},
        ],
    })


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=SECONDS, width=640, height=360)


@pytest.fixture(scope="module")
def transcoded(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("out")
    produced = execute(plan_encode(_profile(), probe_source(clip)), clip, out, quality_sample_every=0)
    return out, {p.name: p for p in produced}


def _playlist(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _attributes(line: str) -> dict[str, str]:
    parts, current, quoted = [], "", False
    for char in line.split(":", 1)[1]:
        quoted = not quoted if char == '"' else quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return {k: v.strip('"') for k, v in (p.split("=", 1) for p in parts)}


def _segments(folder: Path) -> list[tuple[str, float]]:
    """(file, EXTINF seconds) of the track's media playlist."""
    lines = _playlist(folder / "playlist.m3u8")
    return [(lines[i + 1], float(line[len("#EXTINF:"):].rstrip(","))) for i, line in enumerate(lines)
            if line.startswith("#EXTINF:")]


def test_the_presentation_is_listed_as_the_outputs_files(transcoded: tuple[Path, dict[str, object]]) -> None:
    out, produced = transcoded
    presentation = produced["presentation"]
    assert not presentation.error  # type: ignore[attr-defined]
    keys = [f.key for f in presentation.files]  # type: ignore[attr-defined]
    assert keys[:2] == ["presentation/master.m3u8", "presentation/manifest.mpd"]  # the main files first
    for track in ("360p", "180p", "audio"):
        assert f"presentation/{track}/init.mp4" in keys and f"presentation/{track}/playlist.m3u8" in keys
        assert [f"presentation/{track}/{name}" for name, _ in _segments(out / "presentation" / track)] == \
            [k for k in keys if k.startswith(f"presentation/{track}/seg-")]
    assert sorted(keys) == sorted(p.relative_to(out).as_posix() for p in (out / "presentation").rglob("*")
                                  if p.is_file())
    types = {f.key.rsplit(".", 1)[1]: f.content_type for f in presentation.files}  # type: ignore[attr-defined]
    assert types == {"m3u8": "application/vnd.apple.mpegurl", "mpd": "application/dash+xml",
                     "mp4": types["mp4"], "m4s": "video/iso.segment"}


@pytest.mark.parametrize(("rung", "width", "height"), [("360p", 640, 360), ("180p", 320, 180)])
def test_each_rung_decodes_from_its_segments(transcoded: tuple[Path, dict[str, object]], rung: str, width: int,
                                             height: int) -> None:
    out, _ = transcoded
    folder = out / "presentation" / rung
    segments = _segments(folder)
    assert [round(seconds, 3) for _, seconds in segments] == [2.0, 2.0, 2.0]
    init = (folder / "init.mp4").read_bytes()
    for name, seconds in segments:  # each segment plays on its own after the init: a keyframe first
        alone = out / f"{rung}-{name}.mp4"
        alone.write_bytes(init + (folder / name).read_bytes())
        with av.open(str(alone)) as container:
            frames = list(container.decode(video=0))
        assert frames[0].key_frame and len(frames) == round(seconds * FPS)
    joined = out / f"{rung}-joined.mp4"
    joined.write_bytes(init + b"".join((folder / name).read_bytes() for name, _ in segments))
    with av.open(str(joined)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == SECONDS * FPS
    assert {(f.width, f.height) for f in frames} == {(width, height)}
    assert frames[0].time == 0.0
    # The very packets of the progressive MP4: one encode.
    with av.open(str(joined)) as cmaf, av.open(str(out / "renditions" / f"{rung}.mp4")) as mp4:
        assert [bytes(p) for p in cmaf.demux(video=0) if p.size] == [bytes(p) for p in mp4.demux(video=0) if p.size]


def test_the_audio_track_decodes_from_its_segments(transcoded: tuple[Path, dict[str, object]]) -> None:
    out, _ = transcoded
    folder = out / "presentation" / "audio"
    joined = out / "audio-joined.mp4"
    joined.write_bytes((folder / "init.mp4").read_bytes()
                       + b"".join((folder / name).read_bytes() for name, _ in _segments(folder)))
    with av.open(str(joined)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].sample_rate
    assert abs(samples / rate - SECONDS) < 0.05


def test_master_playlist_states_what_the_segments_measure(transcoded: tuple[Path, dict[str, object]]) -> None:
    out, _ = transcoded
    folder = out / "presentation"
    lines = _playlist(folder / "master.m3u8")
    assert lines[0] == "#EXTM3U" and "#EXT-X-INDEPENDENT-SEGMENTS" in lines
    media = [_attributes(line) for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert [(m["TYPE"], m["GROUP-ID"], m["URI"]) for m in media] == [("AUDIO", "audio", "audio/playlist.m3u8")]

    def rates(track: str) -> list[float]:
        return [(folder / track / name).stat().st_size * 8 / seconds for name, seconds in _segments(folder / track)]

    audio = rates("audio")
    variants = {lines[i + 1]: _attributes(line) for i, line in enumerate(lines)
                if line.startswith("#EXT-X-STREAM-INF:")}
    assert list(variants) == ["360p/playlist.m3u8", "180p/playlist.m3u8"]
    for rung, (width, height) in (("360p", (640, 360)), ("180p", (320, 180))):
        attributes = variants[f"{rung}/playlist.m3u8"]
        video = rates(rung)
        assert abs(int(attributes["BANDWIDTH"]) - (max(video) + max(audio))) <= 2
        sizes = sum((folder / rung / n).stat().st_size for n, _ in _segments(folder / rung))
        audio_sizes = sum((folder / "audio" / n).stat().st_size for n, _ in _segments(folder / "audio"))
        seconds = sum(s for _, s in _segments(folder / rung))
        audio_seconds = sum(s for _, s in _segments(folder / "audio"))
        assert abs(int(attributes["AVERAGE-BANDWIDTH"]) - (sizes * 8 / seconds + audio_sizes * 8 / audio_seconds)) <= 2
        assert attributes["RESOLUTION"] == f"{width}x{height}"
        assert attributes["FRAME-RATE"] == "30.000"
        assert attributes["AUDIO"] == "audio"
        video_codec, audio_codec = attributes["CODECS"].split(",")
        assert audio_codec == "mp4a.40.2"
        # Profile, constraints and level as x264 wrote them in the rendition's avcC (not as the profile asked).
        with av.open(str(out / "renditions" / f"{rung}.mp4")) as mp4:
            avcc = mp4.streams.video[0].codec_context.extradata
        assert video_codec == f"avc1.{avcc[1:4].hex()}"
        assert avcc[1] == 100  # High: superfast keeps CABAC and 8x8 transforms


def test_dash_manifest_points_at_the_same_files(transcoded: tuple[Path, dict[str, object]]) -> None:
    out, _ = transcoded
    folder = out / "presentation"
    mpd = ET.fromstring((folder / "manifest.mpd").read_text())
    assert mpd.get("type") == "static"
    sets = mpd.findall("d:Period/d:AdaptationSet", NS)
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    for representation in mpd.iterfind(".//d:Representation", NS):
        track = representation.get("id", "")
        template = representation.find("d:SegmentTemplate", NS)
        assert template is not None
        assert (folder / template.get("initialization", "")).is_file()
        count = sum(1 + int(s.get("r", "0")) for s in template.iterfind("d:SegmentTimeline/d:S", NS))
        names = [template.get("media", "").replace("$Number%05d$", f"{n:05d}") for n in range(1, count + 1)]
        assert names == [f"{track}/{name}" for name, _ in _segments(folder / track)]
        assert all((folder / name).is_file() for name in names)


def test_segments_that_would_split_a_gop_skip_the_output_with_the_reason(clip: Path) -> None:
    plan = plan_encode(_profile(segment_seconds=3.0, keyint_seconds=2.0), probe_source(clip))
    assert not plan.outputs_of("adaptive")
    assert any("segment_seconds" in warning and "keyint_seconds" in warning for warning in plan.warnings)


def test_a_silent_source_gives_a_presentation_without_audio(tmp_path: Path) -> None:
    silent = make_clip(tmp_path / "silent.mp4", seconds=2.0, width=640, height=360, audio=False)
    produced = {p.name: p for p in execute(plan_encode(_profile(), probe_source(silent)), silent, tmp_path / "out",
                                           quality_sample_every=0)}
    assert not produced["presentation"].error
    master = (tmp_path / "out" / "presentation" / "master.m3u8").read_text()
    assert "EXT-X-MEDIA" not in master and "AUDIO=" not in master and "mp4a" not in master
    assert not (tmp_path / "out" / "presentation" / "audio").exists()
