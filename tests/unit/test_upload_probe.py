"""The upload probe on generated media: what it reports for a real clip, and
the reason it gives for each kind of file it turns away."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.shared.errors import InvalidArgument
from services.upload_svc.mp4_boxes import read_mp4_layout
from services.upload_svc.probe import UnusableMedia, probe, probe_file
from tests.media import make_clip


@pytest.fixture(scope="module")
def audio_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "voice.m4a", seconds=2.0, video=False)


def test_clip_with_audio_reports_size_rate_duration_and_audio(clip_640x360: Path) -> None:
    media = probe_file(clip_640x360)

    assert (media.width, media.height) == (640, 360)
    assert media.fps == pytest.approx(30.0)
    assert media.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert media.video_frames == 60
    assert media.has_audio and media.audio_codec == "aac"
    assert media.video_codec == "h264"
    assert "mp4" in media.container
    assert media.bit_rate > 0
    kinds = {s.kind: s for s in media.streams}
    assert set(kinds) == {"video", "audio"}
    assert (kinds["video"].width, kinds["video"].height, kinds["video"].codec) == (640, 360, "h264")
    assert (kinds["audio"].sample_rate, kinds["audio"].channels) == (48000, 2)


def test_clip_without_audio_says_so(tmp_path: Path) -> None:
    media = probe_file(make_clip(tmp_path / "silent.mp4", seconds=1.0, width=320, height=180, audio=False))

    assert (media.width, media.height) == (320, 180)
    assert not media.has_audio and media.audio_codec == ""
    assert [s.kind for s in media.streams] == ["video"]


async def test_async_probe_gives_the_same_answer(clip_640x360: Path) -> None:
    assert await probe(clip_640x360) == probe_file(clip_640x360)


def _rejection(path: Path) -> str:
    with pytest.raises(UnusableMedia) as raised:
        probe_file(path)
    assert isinstance(raised.value, InvalidArgument)  # so the caller gets INVALID_ARGUMENT
    return raised.value.message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert "the file is empty" in _rejection(path)


def test_a_file_of_sound_alone_is_probed_without_a_picture(audio_only: Path) -> None:
    """Taken for the profiles that make audio outputs (the upload checks the profile)."""
    media = probe_file(audio_only)
    assert (media.width, media.height, media.video_codec) == (0, 0, "")
    assert media.has_audio and media.audio_codec == "aac"
    assert media.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_sound_cut_in_half_is_called_truncated(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "voice.mkv", seconds=4.0, video=False)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "the file is truncated: its sound stops at 00:0" in _rejection(cut)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(os.urandom(200_000))
    reason = _rejection(path)
    assert reason.startswith("not a video file: ")
    assert "text" not in reason


def test_text_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("Meeting notes: ship the encoder on Friday.\n" * 200)
    assert _rejection(path) == "not a video file: it contains text, not audio or video"


def test_first_half_of_a_clip_is_called_truncated(tmp_path: Path, clip_640x360: Path) -> None:
    data = clip_640x360.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    reason = _rejection(path)
    assert "truncated" in reason
    assert f"ends after {len(data) // 2} bytes" in reason
    assert "upload the complete file" in reason


def test_fast_start_clip_cut_in_half_is_called_truncated(tmp_path: Path, clip_640x360: Path) -> None:
    # With the index first, FFmpeg opens the half file and decodes its first frames:
    # only the box layout shows that the media data stops short.
    import av

    fast = tmp_path / "fast.mp4"
    with av.open(str(clip_640x360)) as src, av.open(str(fast), "w", options={"movflags": "faststart"}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = fast.read_bytes()
    assert read_mp4_layout(fast).boxes.index("moov") < read_mp4_layout(fast).boxes.index("mdat")
    half = tmp_path / "fast-half.mp4"
    half.write_bytes(data[: len(data) // 2])
    assert "truncated" in _rejection(half)


def test_clip_without_its_index_names_the_missing_moov(tmp_path: Path, clip_640x360: Path) -> None:
    data = clip_640x360.read_bytes()
    layout = read_mp4_layout(clip_640x360)
    assert layout is not None and layout.boxes[-1] == "moov"
    moov_at = data.rindex(b"moov") - 4
    path = tmp_path / "no-index.mp4"
    path.write_bytes(data[:moov_at])
    reason = _rejection(path)
    assert "'moov' box is missing" in reason


def test_undecodable_video_stream(tmp_path: Path, clip_640x360: Path) -> None:
    data = bytearray(clip_640x360.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:start + len(data) // 2] = os.urandom(len(data) // 2)  # overwrite the pictures, keep the index
    path = tmp_path / "scrambled.mp4"
    path.write_bytes(bytes(data))
    assert "has no decodable frame" in _rejection(path)


def test_still_image_has_zero_duration(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "still.png"
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((36, 64, 3), np.uint8), format="rgb24")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert "zero duration" in _rejection(path)


def _clip_with_mp3_audio(path: Path) -> Path:
    """A VP9 + MP3 clip: FFmpeg decodes those with `libvpx-vp9`/`vp9` and `mp3float`."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        video = container.add_stream("libvpx-vp9", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("libmp3lame", rate=44100)
        audio.layout = "mono"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, dtype=np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for i in range(40):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1152), dtype=np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 44100, i * 1152
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
    return path


def test_codecs_are_named_as_people_know_them_not_by_decoder(tmp_path: Path) -> None:
    media = probe_file(_clip_with_mp3_audio(tmp_path / "old.mkv"))

    assert (media.video_codec, media.audio_codec) == ("vp9", "mp3")
    assert sorted(s.codec for s in media.streams) == ["mp3", "vp9"]
