"""Each shipped codec profile on a real (tiny) encode: the executor runs the
profile's own encoder settings on a 2 s 640x360 clip, and every file is read
back as a player would: container, codec, MP4 sample entry (hvc1), frame
count, duration, audio codec, keyframes on the same frames in every rung, and
a quality report decoded from the encoder's own packets."""

from __future__ import annotations

import io
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.process_svc.adaptive.codecs import codecs_string
from services.process_svc.adaptive.fmp4 import read_init
from services.process_svc.execute import execute, probe_source
from services.process_svc.plan import Profile, plan_encode
from services.process_svc.profiles import ProfileCatalog
from tests.media import decoded_summary, make_clip, renditions_made

# The shipped profile's rungs at sizes a 640x360 clip has, the largest and the smallest kept
# (modern: an AV1 rung and an H.264 one); keyframes every 0.5 s to check that they line up.
SMALL_HEIGHTS = (240, 144)
KEYINT_SECONDS = 0.5


def small(profile: Profile) -> Profile:
    first, last = profile.renditions[0], profile.renditions[-1]
    rungs = tuple(spec.model_copy(update={"name": f"{height}p", "height": height, "keyint_seconds": KEYINT_SECONDS})
                  for spec, height in zip((first, last), SMALL_HEIGHTS, strict=True))
    return profile.model_copy(update={"outputs": rungs})


def read_back(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        keyframes = [packet.pts for packet in container.demux(video) if packet.is_keyframe and packet.size]
        return {"format": container.format.name, "codec": video.codec_context.codec.canonical_name,
                "tag": video.codec_context.codec_tag,
                "audio": audio.codec_context.codec.canonical_name if audio else "",
                "sample_rate": audio.codec_context.sample_rate if audio else 0,
                "keyframes": [round(float(pts * video.time_base), 3) for pts in keyframes]}


EXPECTED = {  # profile: (container format, [(video codec, MP4 tag)] per small rung, audio codec, content type)
    "hevc": ("mov,mp4,m4a,3gp,3g2,mj2", [("hevc", "hvc1"), ("hevc", "hvc1")], "aac", "video/mp4"),
    "modern": ("mov,mp4,m4a,3gp,3g2,mj2", [("av1", "av01"), ("h264", "avc1")], "aac", "video/mp4"),
    "webm": ("matroska,webm", [("vp9", None), ("vp9", None)], "opus", "video/webm"),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_shipped_codec_profile_encodes_what_players_expect(name: str, clip_640x360: Path, tmp_path: Path) -> None:
    container, rungs, audio_codec, content_type = EXPECTED[name]
    plan = plan_encode(small(ProfileCatalog.load().get(name)), probe_source(clip_640x360))

    produced = renditions_made(execute(plan, clip_640x360, tmp_path, quality_sample_every=5))

    assert [(p.width, p.height) for p in produced] == [(426, 240), (256, 144)]
    keyframes = []
    for rendition, (codec, tag) in zip(produced, rungs, strict=True):
        found = read_back(rendition.path)
        assert (found["format"], found["codec"], found["audio"]) == (container, codec, audio_codec), rendition.name
        if tag is not None:
            assert found["tag"] == tag, f"{rendition.name}: sample entry {found['tag']!r}"
        assert found["sample_rate"] == 48000
        summary = decoded_summary(rendition.path)
        assert summary["frames"] == 60, "every source frame, decoded back"
        assert abs(summary["duration"] - 2.0) <= 0.1
        assert (rendition.video_codec, rendition.audio_codec, rendition.content_type) == (codec, audio_codec,
                                                                                          content_type)
        assert rendition.quality is not None and rendition.quality.frames_compared == 12
        assert rendition.quality.psnr_db > 30, f"{rendition.name}: {rendition.quality}"
        keyframes.append(found["keyframes"])
    assert keyframes[0] == keyframes[1] == [0.0, 0.5, 1.0, 1.5], "keyframes on the same frames in every rung"


def test_opus_tracks_are_copied_into_every_webm_rung(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(small(ProfileCatalog.load().get("webm")), probe_source(clip_640x360))
    produced = renditions_made(execute(plan, clip_640x360, tmp_path, quality_sample_every=0))

    tracks = []
    for rendition in produced:
        with av.open(str(rendition.path)) as container:
            audio = container.streams.audio[0]
            tracks.append([bytes(p) for p in container.demux(audio) if p.size])
        with av.open(str(rendition.path)) as container:
            samples = sum(frame.samples for frame in container.decode(audio=0))
        assert abs(samples / 48000 - 2.0) < 0.05, "two seconds of sound"
    assert tracks[0] == tracks[1], "the one Opus encode, muxed into both rungs"


def _init_segment(encoder: str, codec_tag: str = "", **options: str) -> bytes:
    """The init segment (ftyp + moov) of a one-track fragmented MP4 made by `encoder`."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4",
                 options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}) as container:
        if encoder == "libopus":
            stream = container.add_stream(encoder, rate=48000)
            stream.codec_context.layout = "stereo"
            silence = av.AudioFrame.from_ndarray(np.zeros((1, 960 * 2), np.float32), format="flt", layout="stereo")
            silence.sample_rate, silence.pts = 48000, 0
            container.mux(stream.encode(silence))
        else:
            stream = container.add_stream(encoder, rate=30)
            context = stream.codec_context
            context.width, context.height, context.pix_fmt, context.options = 320, 240, "yuv420p", options
            if codec_tag:
                context.codec_tag = codec_tag
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 40 * i, np.uint8), format="rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = i, Fraction(1, 30)
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = buffer.getvalue()
    return data[:data.index(b"moof") - 4]


def test_the_packager_names_every_codec_a_profile_makes() -> None:
    assert codecs_string(read_init(_init_segment("libx265", "hvc1", **{"x265-params": "log-level=error"}))) \
        .startswith("hvc1.1.6.L")
    assert codecs_string(read_init(_init_segment("libsvtav1", preset="12"))) == "av01.0.00M.08"
    assert codecs_string(read_init(_init_segment("libvpx-vp9", deadline="realtime"))).startswith("vp09.00.")
    assert codecs_string(read_init(_init_segment("libopus"))) == "opus"


def test_audio_profile_makes_aac_and_opus_without_decoding_a_picture(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(ProfileCatalog.load().get("audio"), probe_source(clip_640x360))
    assert plan.renditions == (), "no ladder: the pass decodes no video"
    reports: list = []

    produced = execute(plan, clip_640x360, tmp_path, reports.append, progress_interval_seconds=0.0)

    assert [(o.name, o.error) for o in produced] == [("aac", ""), ("opus", "")]
    found = {}
    for output in produced:
        assert output.rendition is not None
        with av.open(str(output.rendition.path)) as container:
            assert not container.streams.video
            audio = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio))
            found[output.name] = (container.format.name.split(",")[0], audio.codec_context.codec.canonical_name,
                                  audio.codec_context.sample_rate, audio.codec_context.channels)
        assert abs(samples / 48000 - 2.0) < 0.05, f"{output.name}: two seconds of sound"
    assert found == {"aac": ("mov", "aac", 48000, 2), "opus": ("matroska", "opus", 48000, 2)}
    assert reports and reports[-1].percent == 100.0


def test_audio_profile_on_a_silent_source_fails_saying_why(tmp_path: Path) -> None:
    silent = make_clip(tmp_path / "silent.mp4", seconds=1.0, width=320, height=180, audio=False)
    plan = plan_encode(ProfileCatalog.load().get("audio"), probe_source(silent))
    assert plan.outputs == () and any("no audio" in warning for warning in plan.warnings)


@pytest.mark.parametrize(("name", "codecs", "audio"), [("modern", ("av01.", "avc1."), "mp4a.40.2"),
                                                     ("hevc", ("hvc1.", "hvc1."), "mp4a.40.2"),
                                                     ("webm", ("vp09.", "vp09."), "opus")])
def test_one_presentation_carries_the_profiles_codecs(name: str, codecs: tuple[str, str], audio: str,
                                                     clip_640x360: Path, tmp_path: Path) -> None:
    """modern: AV1 and H.264 rungs side by side in one HLS/DASH presentation; hevc: its rungs as hvc1,
    the sample entry Safari needs; webm: VP9 and Opus in CMAF segments. Each rung's segments decode
    as the codec the playlist names, and the audio track as its own."""
    profile = ProfileCatalog.load().get(name)
    [adaptive] = profile.of_type("adaptive")
    tiny = small(profile)
    tiny = tiny.model_copy(update={"outputs": (*tiny.outputs, adaptive.model_copy(update={"segment_seconds": 1.0}))})
    plan = plan_encode(tiny, probe_source(clip_640x360))

    produced = execute(plan, clip_640x360, tmp_path, quality_sample_every=0)

    assert [(o.name, o.error) for o in produced] == [("240p", ""), ("144p", ""), ("presentation", "")]
    folder = tmp_path / "presentation"
    master = (folder / "master.m3u8").read_text()
    listed = re.findall(rf'CODECS="([^",]+),{re.escape(audio)}"', master)
    assert [c[:5] for c in listed] == list(codecs), master
    assert all(f'codecs="{c}"' in (folder / "manifest.mpd").read_text() for c in listed)
    for rung, expected in zip(("240p", "144p"), codecs, strict=True):
        init = (folder / rung / "init.mp4").read_bytes()
        assert expected[:4].encode() in init, f"{rung}: sample entry {expected[:4]}"
        joined = tmp_path / f"{rung}.mp4"
        joined.write_bytes(init + b"".join(p.read_bytes() for p in sorted((folder / rung).glob("seg-*.m4s"))))
        with av.open(str(joined)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            decoded_as = stream.codec_context.codec.canonical_name
        assert (decoded_as, frames) == ({"av01": "av1", "avc1": "h264", "hvc1": "hevc",
                                         "vp09": "vp9"}[expected[:4]], 60)
    sound = tmp_path / "audio.mp4"
    sound.write_bytes(b"".join(p.read_bytes() for p in [folder / "audio" / "init.mp4",
                                                        *sorted((folder / "audio").glob("seg-*.m4s"))]))
    with av.open(str(sound)) as container:
        decoded_as = container.streams.audio[0].codec_context.codec.canonical_name
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded_as == {"mp4a.40.2": "aac", "opus": "opus"}[audio]
    assert abs(samples / 48000 - 2.0) < 0.05, "two seconds of sound"
