"""What people and scripts read from `vtc`: tables, summaries, JSON, units."""

from __future__ import annotations

import io
import json

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from vtc.cli.output import (
    Output,
    human_bitrate,
    human_bytes,
    human_duration,
    job_summary,
    probe_summary,
    profiles_table,
    renditions_table,
    status_name,
    to_dict,
    video_summary,
    videos_table,
)
from vtc.v1 import common_pb2, process_pb2


def _video(title: str = "Holiday clip", status: int = common_pb2.JOB_STATUS_COMPLETED) -> common_pb2.Video:
    rendition = common_pb2.Rendition(name="360p", width=640, height=360, bitrate=812_345, size_bytes=203_456,
                                      duration_seconds=2.0, video_codec="h264", audio_codec="aac")
    return common_pb2.Video(
        video_id="vid_0123456789abcdef0123", title=title, filename="clip.mp4", size_bytes=1_500_000,
        sha256="ab" * 32, created_at=Timestamp(seconds=1_700_000_000),
        probe=common_pb2.MediaProbe(container="mov,mp4", duration_seconds=125.4, width=640, height=360, fps=30,
                                    video_codec="h264", audio_codec="aac", has_audio=True),
        job=common_pb2.Job(job_id="job_1", status=status, renditions=[rendition],
                           error="the source has no video stream" if status == common_pb2.JOB_STATUS_FAILED else ""),
        status=(common_pb2.VIDEO_STATUS_FAILED if status == common_pb2.JOB_STATUS_FAILED
                else common_pb2.VIDEO_STATUS_READY),
    )


def _render(renderable: object) -> str:
    buffer = io.StringIO()
    out = Output(json_mode=False, stdout=buffer)
    out.console.width = 140
    out.show(renderable)
    return buffer.getvalue()


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                        (5 * 1024 ** 3, "5.0 GiB")])
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize("bps, text", [(812_345, "812 kb/s"), (2_500_000, "2.50 Mb/s")])
def test_human_bitrate(bps: int, text: str) -> None:
    assert human_bitrate(bps) == text


@pytest.mark.parametrize("seconds, text", [(2.0, "0:02"), (125.4, "2:05"), (3723, "1:02:03")])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_status_name_drops_the_enum_prefix() -> None:
    assert status_name(common_pb2.JOB_STATUS_RUNNING) == "running"


def test_videos_table_shows_id_title_status_duration() -> None:
    text = _render(videos_table([_video()]))
    row = next(line for line in text.splitlines() if "vid_0123456789abcdef0123" in line)
    for cell in ("Holiday clip", "ready", "2:05"):
        assert cell in row


def test_titles_are_printed_literally_not_as_markup() -> None:
    assert "[bold]raw[/bold]" in _render(videos_table([_video(title="[bold]raw[/bold]")]))


def test_video_summary_has_source_job_and_renditions() -> None:
    text = _render(video_summary(_video()))
    assert "2:05, 640x360, 30 fps, h264, audio aac" in text
    assert "job_1  completed" in text
    rendition_row = next(line for line in text.splitlines() if "360p" in line and "kb/s" in line)
    assert "198.7 KiB" in rendition_row and "812 kb/s" in rendition_row and "640x360" in rendition_row


def test_video_summary_shows_each_renditions_quality() -> None:
    video = _video()
    video.job.renditions[0].quality.CopyFrom(common_pb2.RenditionQuality(psnr_db=41.237, ssim=0.98765,
                                                                         xpsnr_db=38.504, frames_compared=12))
    text = _render(video_summary(video))
    assert "PSNR" in text and "SSIM" in text and "XPSNR" in text
    rendition_row = next(line for line in text.splitlines() if "360p" in line and "kb/s" in line)
    assert "41.24" in rendition_row and "0.9877" in rendition_row and "38.50" in rendition_row
    assert to_dict(video)["job"]["renditions"][0]["quality"]["frames_compared"] == 12


def test_the_renditions_table_fits_an_80_column_terminal_whole() -> None:
    rendition = common_pb2.Rendition(name="1080p", width=1920, height=1080, bitrate=12_345_678,
                                      size_bytes=123_456_789, video_codec="h264", audio_codec="aac",
                                      quality=common_pb2.RenditionQuality(psnr_db=41.237, ssim=0.98765,
                                                                          xpsnr_db=38.504, frames_compared=12))
    buffer = io.StringIO()
    out = Output(json_mode=False, stdout=buffer)
    out.console.width = 80
    out.show(renditions_table([rendition]))
    assert "…" not in buffer.getvalue()
    assert "1080p      117.7 MiB  12.35 Mb/s   1920x1080  h264 + aac  41.24  0.9877  38.50" in buffer.getvalue()


def test_a_rendition_without_a_quality_report_shows_dashes() -> None:
    rendition_row = next(line for line in _render(video_summary(_video())).splitlines()
                         if "360p" in line and "kb/s" in line)
    assert rendition_row.split()[-3:] == ["-", "-", "-"]


def test_video_summary_of_a_failed_job_shows_why() -> None:
    assert "the source has no video stream" in _render(video_summary(_video(status=common_pb2.JOB_STATUS_FAILED)))


def test_video_summary_lists_the_jobs_warnings() -> None:
    video = _video()
    video.job.warnings.append("the source is interlaced: the renditions were deinterlaced (bwdif), one frame per frame")
    assert "warning  the source is interlaced" in _render(video_summary(video))


def test_json_keeps_proto_field_names_and_empty_fields() -> None:
    data = to_dict(_video())
    assert data["video_id"] == "vid_0123456789abcdef0123"
    assert data["job"]["status"] == "JOB_STATUS_COMPLETED"
    assert data["job"]["error"] == ""  # present even when empty, so scripts can rely on the key
    assert data["job"]["renditions"][0]["name"] == "360p"


def test_json_output_is_one_parseable_document_even_when_long() -> None:
    buffer = io.StringIO()
    Output(json_mode=True, stdout=buffer).json({"videos": [to_dict(_video(title="x" * 500))] * 3})
    assert json.loads(buffer.getvalue())["videos"][2]["title"] == "x" * 500


HOSTILE = "evil\x1b]0;owned\x07\x1b[2J\x1b[1A\r\x9b31m\u202eexe.mov"


def test_server_text_never_reaches_the_terminal_with_raw_control_characters() -> None:
    video = _video(title=HOSTILE)
    video.filename = HOSTILE
    video.job.error = HOSTILE
    video.job.renditions[0].name = HOSTILE
    buffer = io.StringIO()
    out = Output(json_mode=False, stdout=buffer)
    out.show(videos_table([video]))
    out.show(video_summary(video))
    out.say(f"deleted {HOSTILE}")
    printed = buffer.getvalue()
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert raw not in printed, repr(raw)
    assert "evil\\x1b]0;owned\\x07\\x1b[2J" in printed  # shown, visibly, instead


def test_json_output_escapes_every_control_character_and_still_parses() -> None:
    buffer = io.StringIO()
    Output(json_mode=True, stdout=buffer).json(to_dict(_video(title=HOSTILE)))
    printed = buffer.getvalue()
    assert not any(raw in printed for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e"))
    assert json.loads(printed)["title"] == HOSTILE



def test_video_summary_lists_every_output_with_its_files_or_why_it_failed() -> None:
    video = _video()
    video.job.outputs.extend([
        common_pb2.Output(name="360p", type="video", status=common_pb2.OUTPUT_STATUS_COMPLETED, files=[
            common_pb2.OutputFile(path="renditions/360p.mp4", size_bytes=203_456)]),
        common_pb2.Output(name="presentation", type="adaptive", status=common_pb2.OUTPUT_STATUS_COMPLETED, files=[
            common_pb2.OutputFile(path="presentation/master.m3u8", size_bytes=1024),
            common_pb2.OutputFile(path="presentation/manifest.mpd", size_bytes=1024),
            common_pb2.OutputFile(path="presentation/360p/seg-00001.m4s", size_bytes=2048)]),
        common_pb2.Output(name="poster", type="poster", status=common_pb2.OUTPUT_STATUS_FAILED,
                          error="no picture of the video could be written: disk full"),
    ])
    lines = _render(video_summary(video)).splitlines()
    presentation = next(line for line in lines if line.startswith("presentation"))
    assert presentation.split()[:5] == ["presentation", "adaptive", "completed", "4.0", "KiB"]
    assert "presentation/master.m3u8 (+2 more)" in presentation
    poster = next(line for line in lines if line.startswith("poster"))
    assert poster.split()[:4] == ["poster", "poster", "failed", "-"]
    assert "no picture of the video could be written: disk full" in poster


def test_video_summary_of_video_outputs_alone_shows_the_renditions_table_only() -> None:
    video = _video()
    video.job.outputs.add(name="360p", type="video", status=common_pb2.OUTPUT_STATUS_COMPLETED)
    assert "OUTPUT" not in _render(video_summary(video))


def test_job_summary_names_the_profile_and_the_job_a_retry_retries() -> None:
    job = common_pb2.Job(job_id="job_2", status=common_pb2.JOB_STATUS_QUEUED, profile="small", custom_profile=True,
                         retry_of="job_1")
    assert job_summary(job) == "job_2  queued  profile small (your own)  retry of job_1"


def test_the_profiles_table_names_each_profile_once_and_says_what_each_output_makes() -> None:
    profiles = [
        process_pb2.Profile(name="default", outputs=[
            process_pb2.ProfileOutput(name="720p", type="video", codec="h264", container="mp4", height=720,
                                      bitrate=3_500_000),
            process_pb2.ProfileOutput(name="presentation", type="adaptive", formats=["hls", "dash"],
                                      renditions=["720p"]),
            process_pb2.ProfileOutput(name="poster", type="poster", width=1280, formats=["jpeg", "webp"])]),
        process_pb2.Profile(name="radio", per_title=False, outputs=[
            process_pb2.ProfileOutput(name="aac", type="audio", codec="aac", container="m4a", bitrate=128_000)]),
        process_pb2.Profile(name="tuned", per_title=True, outputs=[
            process_pb2.ProfileOutput(name="360p", type="video", codec="h264", container="mp4", height=360,
                                      bitrate=900_000)]),
    ]
    buffer = io.StringIO()
    out = Output(json_mode=False, stdout=buffer)
    out.console.width = 80
    out.show(profiles_table(profiles))
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]

    assert "…" not in buffer.getvalue()
    rows = [line.split() for line in lines if line.strip() and not set(line.strip()) <= {"─"}]
    assert rows[0] == ["PROFILE", "OUTPUT", "TYPE", "WHAT"]
    assert rows[1] == ["default", "720p", "video", "h264", "mp4,", "720p,", "cap", "3.50", "Mb/s"]
    assert rows[2] == ["presentation", "adaptive", "hls", "+", "dash", "of", "720p"]
    assert rows[3] == ["poster", "poster", "jpeg", "+", "webp,", "1280", "px", "wide"]
    assert rows[4] == ["radio", "aac", "audio", "aac", "m4a,", "128", "kb/s"]
    assert rows[5] == ["tuned", "(CRF", "per", "source)", "360p", "video", "h264", "mp4,", "360p,", "cap", "900",
                       "kb/s"]


def test_a_file_of_sound_alone_is_summarised_without_a_picture() -> None:
    probe = common_pb2.MediaProbe(duration_seconds=754.0, has_audio=True, audio_codec="mp3")
    assert probe_summary(probe) == f"{human_duration(754.0)}, no picture, audio mp3"
