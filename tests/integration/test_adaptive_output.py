"""The `adaptive` output of a real transcode: the presentation a player gets
decodes rung by rung (init + segments), every segment opens on a keyframe,
the segments carry the progressive MP4's own packets, and the playlists and
MPD state what the files measure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
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


def _vfr_clip(path: Path, seconds: float = 9.0) -> tuple[Path, float]:
    """A phone-like variable-rate clip, 320x180 with a tone: frames about 1/30 s apart on a 1 ms clock,
    jittered, one in 90 dropped (29.7 fps on average). Returns it and its longest frame interval."""
    rng = np.random.default_rng(7)
    times, t = [], 0.0
    while t < seconds * 1000:
        times.append(round(t))
        t += 1000 / 30 * (2 if len(times) % 90 == 0 else 1) + rng.uniform(-4, 4)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.codec_context.time_base = video.time_base = Fraction(1, 1000)
        video.options = {"preset": "ultrafast"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i, ms in enumerate(times):
            picture = np.zeros((180, 320, 3), dtype=np.uint8)
            picture[:, (i * 4) % 320] = 255  # a moving bar
            picture[..., 2] = (i * 8) % 256
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, round(seconds * 48000), 1024):
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(start, start + 1024) / 48000)).astype(np.float32)
            samples = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            samples.sample_rate, samples.pts, samples.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
    assert 29.5 < (len(times) - 1) / (times[-1] / 1000) < 29.9
    return path, max(b - a for a, b in zip(times, times[1:], strict=False)) / 1000


def test_a_variable_rate_source_gets_segments_of_their_length_on_the_same_keyframes(tmp_path: Path) -> None:
    """Keyframes are forced every keyint_seconds of media time, as ffmpeg's -force_key_frames
    "expr:gte(t,n_forced*1)": a phone's 29.7 fps average keeps its presentation, and every segment lasts
    segment_seconds to within a frame, cut on the same keyframes in every rung."""
    clip, frame = _vfr_clip(tmp_path / "phone.mp4")
    profile = parse_profile({
        "name": "vfr-test",
        "video_defaults": {"crf": 30, "preset": "superfast", "keyint_seconds": 1.0},
        "audio": {"bitrate": "64k"},
        "outputs": [
            {"type": "video", "name": "180p", "height": 180, "maxrate": "300k", "bufsize": "600k"},
            {"type": "video", "name": "120p", "height": 120, "maxrate": "200k", "bufsize": "400k"},
            {"type": "adaptive", "name": "presentation", "segment_seconds": 2.0},
        ],
    })
    plan = plan_encode(profile, probe_source(clip))
    assert plan.outputs_of("adaptive") and not plan.warnings
    out = tmp_path / "out"
    produced = {p.name: p for p in execute(plan, clip, out, quality_sample_every=0)}
    assert not produced["presentation"].error  # type: ignore[attr-defined]

    durations = {rung: [seconds for _, seconds in _segments(out / "presentation" / rung)] for rung in ("180p", "120p")}
    assert durations["180p"] == durations["120p"], "cut at the same instants in every rung"
    assert len(durations["180p"]) == 5  # 9 s: four of 2 s and the rest
    for seconds in durations["180p"][:-1]:
        assert abs(seconds - 2.0) <= frame, durations
    keyframes = {}
    for rung in ("180p", "120p"):
        with av.open(str(out / "renditions" / f"{rung}.mp4")) as container:
            stream = container.streams.video[0]
            keyframes[rung] = [float(p.pts * stream.time_base) for p in container.demux(stream)
                               if p.is_keyframe and p.size]
    assert keyframes["180p"] == keyframes["120p"], "keyframes on the same frames in every rung"
    assert len(keyframes["180p"]) == 9  # one a second
    for second, time in enumerate(keyframes["180p"]):
        assert second <= time < second + frame, keyframes  # the first frame at or past each second
    playlist = (out / "presentation" / "180p" / "playlist.m3u8").read_text()
    assert "#EXT-X-TARGETDURATION:2\n" in playlist
