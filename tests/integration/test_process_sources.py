"""Sources that cameras, capture cards and careless edits really produce,
transcoded and then checked in the rendition itself (not just the job state):
interlaced pictures come out progressive, full-range levels come out limited,
every rendition is tagged BT.709."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace

from services.process_svc.execute import execute, probe_source
from services.process_svc.plan import plan_encode
from services.process_svc.profiles import parse_profile
from tests.media import decoded_summary, make_clip, renditions_made
from tests.source_media import (
    idet_counts,
    make_browser_recording,
    make_changing_clip,
    make_clip_with_longer_sound,
    make_full_range_clip,
    make_gapped_clip,
    make_interlaced_clip,
)

LADDER = parse_profile({
    "name": "sources",
    "video_defaults": {"crf": 20, "preset": "ultrafast", "keyint_seconds": 1},
    "audio": {"bitrate": "64k"},
    "outputs": [
        {"type": "video", "name": "576p", "height": 576, "maxrate": "3M", "bufsize": "6M"},
        {"type": "video", "name": "240p", "height": 240, "maxrate": "500k", "bufsize": "1M"},
    ],
})


def _transcode(source: Path, out: Path) -> list[Path]:
    return [r.path for r in renditions_made(execute(plan_encode(LADDER, probe_source(source)), source, out))]


@pytest.mark.parametrize("flagged", [True, False], ids=["flagged tff", "combed but flagged progressive"])
def test_interlaced_source_comes_out_progressive(flagged: bool, tmp_path: Path) -> None:
    source = make_interlaced_clip(tmp_path / "576i.mp4", flagged=flagged)
    assert idet_counts(source)["tff"] > 40, "the test source must itself be interlaced"

    info = probe_source(source)
    renditions = _transcode(source, tmp_path / "out")

    assert info.interlaced
    for rendition in renditions:
        counts = idet_counts(rendition)
        assert counts["tff"] + counts["bff"] <= 2, f"{rendition.name} is still combed: {counts}"
        assert counts["progressive"] >= 40
        summary = decoded_summary(rendition)
        assert summary["frames"] == 50, "one frame per source frame: the rate stays 25"


def test_progressive_source_is_not_deinterlaced(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "p.mp4", seconds=1.0, width=640, height=360)
    assert not probe_source(source).interlaced
    assert not any(f.name == "bwdif" for f in plan_encode(LADDER, probe_source(source)).upright)


def _mean_luma(path: Path) -> float:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, :frame.width]
        return float(rows.mean())


def _tags(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return int(frame.color_range), int(frame.colorspace)


@pytest.mark.parametrize(("full", "limited"), [(255, 235), (0, 16), (128, 126)])
def test_full_range_levels_become_limited_and_tagged(full: int, limited: int, tmp_path: Path) -> None:
    source = make_full_range_clip(tmp_path / "phone.mp4", luma=full)
    assert probe_source(source).full_range

    for rendition in _transcode(source, tmp_path / "out"):
        assert _mean_luma(rendition) == pytest.approx(limited, abs=2)
        assert _tags(rendition) == (ColorRange.MPEG, Colorspace.ITU709)


def test_every_rendition_is_tagged_limited_range_bt709(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "plain.mp4", seconds=0.5, width=640, height=360)
    for rendition in _transcode(source, tmp_path / "out"):
        assert _tags(rendition) == (ColorRange.MPEG, Colorspace.ITU709)


def _frame_sizes(path: Path) -> set[tuple[int, int]]:
    with av.open(str(path)) as container:
        return {(f.width, f.height) for f in container.decode(video=0)}


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


@pytest.mark.parametrize("parts", [
    [(640, 360, 48000), (480, 270, 44100)],
    [(480, 270, 44100), (640, 360, 48000), (320, 180, 22050)],
], ids=["size and rate fall", "size and rate rise then fall"])
def test_picture_size_and_sample_rate_changing_mid_stream(parts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = make_changing_clip(tmp_path / "programme-change.ts", parts)

    renditions = renditions_made(execute(plan_encode(LADDER, probe_source(source)), source, tmp_path / "out"))

    for rendition in renditions:
        assert _frame_sizes(rendition.path) == {(rendition.width, rendition.height)}
        summary = decoded_summary(rendition.path)
        assert summary["frames"] == 25 * len(parts), "every picture of every part"
        assert summary["duration"] == pytest.approx(decoded_summary(source)["duration"], abs=0.1)
        # Each part's AAC carries its encoder's priming and padding: compare with what the source holds.
        assert _audio_seconds(rendition.path) == pytest.approx(len(parts), abs=0.1)


@pytest.mark.parametrize(("suffix", "codec"), [(".h264", "libx264"), (".hevc", "libx265")])
def test_raw_elementary_stream_is_accepted_and_keeps_its_timing(suffix: str, codec: str, tmp_path: Path) -> None:
    """A camera's or encoder's bare .h264/.hevc: no container, no timestamps, no stated duration."""
    from services.upload_svc.probe import probe_file

    source = make_clip(tmp_path / f"camera{suffix}", seconds=1.0, width=320, height=240, audio=False, codec=codec)

    probed = probe_file(source)
    assert probed.duration_seconds == pytest.approx(1.0, abs=0.05)
    assert (probed.video_frames, round(probed.fps)) == (30, 30)
    for rendition in _transcode(source, tmp_path / "out"):
        summary = decoded_summary(rendition)
        assert (summary["frames"], summary["width"]) == (30, 320)
        assert summary["duration"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("width", "height"), [(2, 2), (8, 64), (64, 14)])
def test_picture_below_the_minimum_size_is_refused_with_its_size(width: int, height: int, tmp_path: Path) -> None:
    from services.shared.errors import InvalidArgument
    from services.upload_svc.probe import UnusableMedia, probe_file

    source = make_clip(tmp_path / "pixel.mp4", seconds=0.5, width=width, height=height, audio=False)

    with pytest.raises(UnusableMedia, match=f"the picture is {width}x{height} pixels; the smallest .* is 16x16"):
        probe_file(source)
    with pytest.raises(InvalidArgument, match="the smallest we transcode is 16x16"):
        plan_encode(LADDER, probe_source(source))


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".flv"])
def test_file_cut_in_half_is_refused_at_upload_and_fails_in_the_worker(suffix: str, tmp_path: Path) -> None:
    """An interrupted copy: the header says 4 s, the pictures stop at 2 s. Never a 'completed' half video."""
    from services.process_svc.failures import SourceUnreadable
    from services.upload_svc.probe import UnusableMedia, probe_file

    whole = make_clip(tmp_path / f"whole{suffix}", seconds=4.0, width=320, height=240,
                      codec="libvpx-vp9" if suffix == ".webm" else "libx264", audio=suffix != ".webm")
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    assert probe_file(whole).duration_seconds == pytest.approx(4.0, abs=0.1)
    with pytest.raises(UnusableMedia, match="the file is truncated: its pictures stop at 00:0"):
        probe_file(cut)
    with pytest.raises(SourceUnreadable, match="looks truncated"):
        _transcode(cut, tmp_path / "out")


def test_a_browser_recording_that_states_no_length_is_taken_whole(tmp_path: Path) -> None:
    """MediaRecorder's WebM has no duration and no index: its length comes from its timestamps."""
    from services.upload_svc.probe import probe_file

    source = make_browser_recording(tmp_path / "recording.webm", seconds=3.0)
    with av.open(str(source)) as container:
        assert not container.duration, "the test source must state no length"
        written = sum(1 for p in container.demux(video=0) if p.size)

    assert probe_file(source).duration_seconds == pytest.approx(3.0, abs=0.1)
    assert probe_source(source).duration_seconds == pytest.approx(3.0, abs=0.1)
    summary = decoded_summary(_transcode(source, tmp_path / "out")[0])
    assert summary["frames"] == written and summary["has_audio"]
    assert summary["duration"] == pytest.approx(3.0, abs=0.1)


def test_pictures_that_share_a_timestamp_are_transcoded_one_each(tmp_path: Path) -> None:
    """A recorder whose clock is coarser than its frame timing: the second picture on a timestamp is
    dropped, as ffmpeg's CLI drops it, where the MP4 muxer had refused the job's rendition."""
    source = make_browser_recording(tmp_path / "coarse.webm", seconds=3.0, coarse_clock=True)
    with av.open(str(source)) as container:
        stamps = [frame.pts for frame in container.decode(video=0)]
    assert len(set(stamps)) < len(stamps), "the test source must repeat a timestamp"

    summary = decoded_summary(_transcode(source, tmp_path / "out")[0])

    assert summary["frames"] == len(set(stamps))
    assert summary["duration"] == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_pictures_that_stop_under_sound_that_runs_on_are_complete(suffix: str, tmp_path: Path) -> None:
    """1 s of pictures over 3 s of sound (a title card over narration): accepted and transcoded, all the
    sound kept; not called truncated (Matroska states one length, the longest stream's)."""
    from services.upload_svc.probe import probe_file

    source = make_clip_with_longer_sound(tmp_path / f"card{suffix}", picture_seconds=1.0, sound_seconds=3.0)

    assert probe_file(source).duration_seconds == pytest.approx(3.0, abs=0.1)
    [rendition] = _transcode(source, tmp_path / "out")
    with av.open(str(rendition)) as container:
        sound = sum(frame.samples for frame in container.decode(audio=0)) / 48000
    assert sound == pytest.approx(3.0, abs=0.1)
    assert decoded_summary(rendition)["frames"] == 25


@pytest.mark.parametrize("audio", [True, False], ids=["picture and sound", "picture only"])
def test_ten_hour_clock_jump_is_closed_up(audio: bool, tmp_path: Path) -> None:
    """2 s of content stamped across 10 hours: the rendition lasts 2 s, not 36002 s."""
    source = make_gapped_clip(tmp_path / "clock-reset.mkv", gap_seconds=36_000, audio=audio)

    info = probe_source(source)
    renditions = renditions_made(execute(plan_encode(LADDER, info), source, tmp_path / "out"))

    assert len(info.timeline_gaps) == 1 and info.timeline_gaps[0][1] - info.timeline_gaps[0][0] > 35_990
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    for rendition in renditions:
        summary = decoded_summary(rendition.path)
        assert summary["frames"] == 50
        assert summary["duration"] == pytest.approx(2.0, abs=0.1)
        if audio:
            assert _audio_seconds(rendition.path) == pytest.approx(2.0, abs=0.1)


def test_what_the_renditions_change_is_told_as_warnings(tmp_path: Path) -> None:
    source = make_gapped_clip(tmp_path / "clock-reset.mkv", gap_seconds=100)
    warnings = plan_encode(LADDER, probe_source(source)).warnings
    assert any("clock jumps from 00:01.0 to 01:41.0" in w and "leave out those 01:40.0" in w for w in warnings)

    interlaced = plan_encode(LADDER, probe_source(make_interlaced_clip(tmp_path / "i.mp4", flagged=True))).warnings
    assert any("interlaced" in w for w in interlaced)
    assert plan_encode(LADDER, probe_source(make_clip(tmp_path / "plain.mp4", seconds=0.5))).warnings == ()


def test_subtitles_and_extra_audio_tracks_are_listed_as_left_out(tmp_path: Path) -> None:
    source = tmp_path / "film.mkv"
    with av.open(str(make_clip(tmp_path / "a.mkv", seconds=0.5, width=320, height=240))) as clip, \
            av.open(str(source), "w") as film:
        video = film.add_stream_from_template(clip.streams.video[0])
        audio = [film.add_stream_from_template(clip.streams.audio[0]) for _ in range(2)]
        subtitles = film.add_stream("ass")
        subtitles.codec_context.time_base = Fraction(1, 1000)
        subtitles.metadata["language"] = "fra"
        for packet in clip.demux():
            if packet.dts is None:
                continue
            targets = [video] if packet.stream.type == "video" else audio
            for target in targets:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
                copy.stream = target
                film.mux(copy)

    warnings = plan_encode(LADDER, probe_source(source)).warnings

    assert "subtitle stream 3 (ass, fra) was not carried over: renditions have no subtitles yet" in warnings
    assert "the source has 2 audio tracks: the renditions carry the first one only" in warnings
