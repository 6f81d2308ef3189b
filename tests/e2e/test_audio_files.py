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
from tests.playback import upload_and_wait
from tests.source_media import write_tone
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc, upload_pb2_grpc

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
def test_a_podcast_mp3_becomes_aac_and_opus_renditions(cover: bool, stack: Stack, tmp_path: Path) -> None:
    token = stack.admin_token()
    source = make_mp3(tmp_path / "episode.mp3", cover=cover)

    video_id, job = upload_and_wait(stack, token, source, "episode 1", "audio")

    assert job.status == common_pb2.JOB_STATUS_COMPLETED, job.error
    assert [(r.name, r.audio_codec, r.video_codec) for r in job.renditions] == [("aac", "aac", ""),
                                                                                ("opus", "opus", "")]
    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        for rendition in job.renditions:
            out = tmp_path / f"{rendition.name}.bin"
            out.write_bytes(b"".join(chunk.data for chunk in metadata.DownloadRendition(
                metadata_pb2.DownloadRenditionRequest(video_id=video_id, rendition=rendition.name),
                metadata=bearer(token), timeout=60)))
            with av.open(str(out)) as container:
                assert not container.streams.video
                heard = sum(frame.samples for frame in container.decode(audio=0)) / 48000
            assert heard == pytest.approx(SECONDS, abs=0.1), rendition.name


def test_an_mp3_under_a_profile_of_video_outputs_is_refused_with_the_profile_to_use(stack: Stack,
                                                                                     tmp_path: Path) -> None:
    source = make_mp3(tmp_path / "episode.mp3", cover=True)
    with stack.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        upload_pb2_grpc.UploadServiceStub(channel).Upload(upload_requests(source, "episode", "default"),
                                                          metadata=bearer(stack.admin_token()), timeout=60)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds only audio (mp3)" in refused.value.details() and "'audio'" in refused.value.details()
