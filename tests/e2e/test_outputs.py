"""A job's typed outputs end to end: uploaded with a profile of video and audio outputs over REST
(Envoy), every output listed by GetVideo (REST and gRPC), each file stored and decodable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import httpx

from tests.calls import bearer
from tests.media import decoded_summary
from tests.stack import Stack
from vtc.v1 import common_pb2, metadata_pb2, metadata_pb2_grpc

PROFILE = """
name: with-sound
audio: {bitrate: 96k}
video_defaults: {crf: 30, maxrate: 1M, bufsize: 2M, preset: ultrafast}
outputs:
  - {type: video, name: 360p, height: 360}
  - {type: video, name: 180p, height: 180}
  - {type: audio, name: sound, codec: aac, bitrate: 64k, max_channels: 1}
"""


def test_every_output_is_stored_and_listed_by_get_video(stack: Stack, clip_640x360: Path, tmp_path: Path) -> None:
    data = clip_640x360.read_bytes()
    with httpx.Client(base_url=stack.rest_url, timeout=120) as rest:
        token = rest.post("/v1/auth/token", json={"apiKey": stack.admin_key}).raise_for_status().json()["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        reply = rest.post("/v1/uploads", headers={**auth, "content-type": "video/mp4"}, content=data, params={
            "header.filename": "sound.mp4", "header.size_bytes": len(data),
            "header.sha256": hashlib.sha256(data).hexdigest(),
            "header.profile_document": PROFILE}).raise_for_status().json()
        with rest.stream("GET", f"/v1/jobs/{reply['jobId']}:watch", headers=auth) as watch:
            final = [json.loads(line) for line in watch.iter_lines() if line.strip()][-1]["job"]
        assert final["status"] == "JOB_STATUS_COMPLETED", final

        video = rest.get(f"/v1/videos/{reply['videoId']}", headers=auth).raise_for_status().json()
        outputs = video["job"]["outputs"]
        assert [(o["name"], o["type"], o["status"]) for o in outputs] == [
            ("360p", "video", "OUTPUT_STATUS_COMPLETED"), ("180p", "video", "OUTPUT_STATUS_COMPLETED"),
            ("sound", "audio", "OUTPUT_STATUS_COMPLETED")]
        assert [[f["path"] for f in o["files"]] for o in outputs] == [
            ["renditions/360p.mp4"], ["renditions/180p.mp4"], ["renditions/sound.m4a"]]
        assert outputs[2]["files"][0]["contentType"] == "audio/mp4"
        assert (outputs[2]["rendition"]["audioCodec"], outputs[2]["rendition"]["videoCodec"]) == ("aac", "")

    with stack.channel() as channel:
        metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        got = metadata.GetVideo(metadata_pb2.GetVideoRequest(video_id=reply["videoId"]), metadata=bearer(token))
        assert [o.name for o in got.job.outputs] == ["360p", "180p", "sound"]
        for output in got.job.outputs:
            path = tmp_path / Path(output.files[0].path).name
            with path.open("wb") as sink:
                for chunk in metadata.DownloadRendition(metadata_pb2.DownloadRenditionRequest(
                        video_id=reply["videoId"], rendition=output.name), metadata=bearer(token), timeout=60):
                    sink.write(chunk.data)
            assert path.stat().st_size == output.files[0].size_bytes == output.rendition.size_bytes
            assert output.status == common_pb2.OUTPUT_STATUS_COMPLETED
            if output.type == "video":
                summary = decoded_summary(path)
                assert (summary["width"], summary["height"], summary["frames"], summary["has_audio"]) == (
                    output.rendition.width, output.rendition.height, 60, True)
            else:
                with av.open(str(path)) as container:
                    assert not container.streams.video and container.streams.audio[0].codec_context.channels == 1
                    samples = sum(frame.samples for frame in container.decode(audio=0))
                assert abs(samples / 48000 - 2.0) < 0.1, "the whole source's sound, mono"
