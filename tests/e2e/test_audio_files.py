"""A file of sound alone (a podcast's MP3, cover art and all) through the whole stack: under the
`audio` profile it is accepted and becomes AAC and Opus renditions holding all of its sound; under a
profile of video outputs it is refused at upload, with the profile to use instead."""

from __future__ import annotations

from pathlib import Path

import av
import grpc
import numpy as np
import pytest

from tests.calls import bearer, upload_requests
from tests.cli_runner import Cli
from tests.source_media import write_tone
from tests.stack import Stack
from vtc.v1 import upload_pb2_grpc

SECONDS = 3.0


def make_mp3(path: Path, *, cover: bool) -> Path:
    """A stereo 440 Hz tone as MP3, with an attached picture (cover art) when asked."""
    with av.open(str(path), "w") as container:
        sound = container.add_stream("libmp3lame", rate=44100)
        sound.layout = "stereo"
        if cover:
            art = container.add_stream("mjpeg", rate=1)
            art.width, art.height, art.pix_fmt = 64, 64, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, np.uint8), format="rgb24")
            for packet in art.encode(picture.reformat(format="yuvj420p")) + art.encode(None):
                container.mux(packet)
        write_tone(container, sound, SECONDS, rate=44100, samples=1152)
    return path


@pytest.mark.parametrize("cover", [False, True], ids=["plain", "with cover art"])
def test_a_podcast_mp3_becomes_aac_and_opus_renditions(cover: bool, cli: Cli, tmp_path: Path) -> None:
    source = make_mp3(tmp_path / "episode.mp3", cover=cover)

    uploaded = cli.json("upload", str(source), "--profile", "audio", "--watch", timeout=240)

    job = uploaded["job"]
    assert job["status"] == "JOB_STATUS_COMPLETED", job
    assert [(r["name"], r["audio_codec"], r["container"]) for r in job["renditions"]] == [
        ("aac", "aac", "m4a"), ("opus", "opus", "webm")]
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in ("aac", "opus"):
        done = cli.run("download", uploaded["video_id"], "--rendition", name, cwd=saved)
        assert done.returncode == 0, done.stderr
    files = sorted(saved.iterdir())
    assert [f.name for f in files] == [f"{uploaded['video_id']}_aac.m4a", f"{uploaded['video_id']}_opus.webm"]
    for file in files:
        with av.open(str(file)) as container:
            assert not container.streams.video
            heard = sum(frame.samples for frame in container.decode(audio=0)) / 48000
        assert heard == pytest.approx(SECONDS, abs=0.1), file.name


def test_an_mp3_under_a_profile_of_video_outputs_is_refused_with_the_profile_to_use(stack: Stack,
                                                                                     tmp_path: Path) -> None:
    source = make_mp3(tmp_path / "episode.mp3", cover=True)
    with stack.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(source, "episode", "default"),
                                                          metadata=bearer(stack.admin_token()), timeout=60)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds only audio (mp3)" in refused.value.details() and "'audio'" in refused.value.details()
