"""The default profile's adaptive output end to end: stored under the video's
presentation/ folder and listed by GetVideo with every file, the master
playlist first; what is listed is what is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.playback import present_video
from tests.stack import Stack
from vtc.v1 import common_pb2


def test_get_video_lists_the_presentation_and_every_file_of_it(stack: Stack, clip_two_rungs: Path,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    presented = present_video(stack, stack.admin_token(), clip_two_rungs, tmp_path_factory.mktemp("unused"))
    video = presented.get_video()
    outputs = {o.name: o for o in video.job.outputs}
    # The profile's stills (poster, thumbnails, storyboard) follow; tests/e2e/test_stills_outputs.py checks them.
    assert [(o.name, o.type) for o in video.job.outputs if o.type in ("video", "adaptive")] == [
        ("480p", "video"), ("360p", "video"), ("presentation", "adaptive")]
    presentation = outputs["presentation"]
    assert presentation.status == common_pb2.OUTPUT_STATUS_COMPLETED, presentation.error
    paths = [f.path for f in presentation.files]
    assert paths[:2] == ["presentation/master.m3u8", "presentation/manifest.mpd"]
    stored = sorted(p.relative_to(presented.folder.parent).as_posix() for p in presented.folder.rglob("*")
                    if p.is_file())
    assert sorted(paths) == stored
    # 8 s in 4 s segments for each rung: init, two segments, a playlist. The audio's priming and last
    # frame's padding run a few ms past 8 s: a short third segment may hold them.
    for track in ("480p", "360p", "audio"):
        files = [p for p in paths if p.startswith(f"presentation/{track}/")]
        assert files[:3] == [f"presentation/{track}/init.mp4", f"presentation/{track}/seg-00001.m4s",
                             f"presentation/{track}/seg-00002.m4s"]
        assert files[-1] == f"presentation/{track}/playlist.m3u8"
        assert len(files) == 4 if track != "audio" else len(files) in (4, 5)
    for file in presentation.files:
        assert file.storage_key == f"{presented.tenant_id}/{presented.video_id}/{file.path}"
        assert file.size_bytes == (presented.folder.parent / file.path).stat().st_size
    assert video.hls_url.endswith("/master.m3u8") and video.dash_url.endswith("/manifest.mpd")
