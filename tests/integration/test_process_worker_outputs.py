"""A job's typed outputs through the real worker: each one stored and reported in the completed
event, and an output whose executor fails reported FAILED with its reason while the others complete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import av
import pytest
import yaml

from services.process_svc.execute import EXECUTORS, OutputExecutor, OutputFailed, ProducedOutput
from services.shared.bus.memory import InProcessBus
from services.shared.storage.keys import video_prefix
from tests.integration.test_process_worker import TENANT, Harness, kinds
from tests.media import decoded_summary
from vtc.v1 import common_pb2

PROFILE = {
    "name": "typed",
    "video_defaults": {"preset": "ultrafast", "crf": 30, "maxrate": "2M", "bufsize": "4M"},
    "audio": {"bitrate": "96k"},
    "outputs": [{"type": "video", "name": "360p", "height": 360}, {"type": "video", "name": "180p", "height": 180},
                {"type": "audio", "name": "sound", "codec": "opus", "bitrate": "64k"}],
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "index.yaml").write_text(yaml.safe_dump({"profiles": ["typed.yaml"]}))
    (profiles / "typed.yaml").write_text(yaml.safe_dump(PROFILE))
    bus = InProcessBus()
    await bus.start()
    harness = Harness(tmp_path, bus)
    harness.settings = harness.settings.model_copy(update={"process_profiles_dir": profiles})
    await harness.start()
    try:
        yield harness
    finally:
        await bus.close()


async def test_every_output_is_stored_and_reported(harness: Harness, clip_640x360: Path, tmp_path: Path) -> None:
    request = await harness.request(clip_640x360, profile="typed")

    events = await harness.events_until_terminal()

    assert kinds(events)[-1] == "completed"
    completed = events[-1].completed
    prefix = video_prefix(TENANT, request.video_id)
    assert [(o.name, o.type, o.status, o.error) for o in completed.outputs] == [
        ("360p", "video", common_pb2.OUTPUT_STATUS_COMPLETED, ""),
        ("180p", "video", common_pb2.OUTPUT_STATUS_COMPLETED, ""),
        ("sound", "audio", common_pb2.OUTPUT_STATUS_COMPLETED, "")]
    assert [[(f.path, f.storage_key, f.content_type) for f in o.files] for o in completed.outputs] == [
        [("renditions/360p.mp4", f"{prefix}renditions/360p.mp4", "video/mp4")],
        [("renditions/180p.mp4", f"{prefix}renditions/180p.mp4", "video/mp4")],
        [("renditions/sound.webm", f"{prefix}renditions/sound.webm", "audio/webm")]]
    assert [r.name for r in completed.renditions] == ["360p", "180p", "sound"], "the older field lists them too"
    sound = completed.outputs[2]
    assert (sound.rendition.audio_codec, sound.rendition.video_codec, sound.rendition.width) == ("opus", "", 0)
    for output in completed.outputs:
        stored = await harness.store.stat(output.files[0].storage_key)
        assert stored.size_bytes == output.files[0].size_bytes == output.rendition.size_bytes
    download = tmp_path / "sound.webm"
    await harness.store.get_file(sound.files[0].storage_key, download)
    with av.open(str(download)) as container:
        assert not container.streams.video
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples / 48000 - 2.0) < 0.1, "the whole source's sound, decoded from storage"
    video = tmp_path / "180p.mp4"
    await harness.store.get_file(completed.outputs[1].files[0].storage_key, video)
    assert decoded_summary(video)["frames"] == 60


class DiskFullAudio(OutputExecutor):
    kind = "audio"

    def audio_frame(self, frame: av.AudioFrame) -> None:
        raise OutputFailed("the audio file could not be written: no space left on the worker's disk")

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        raise AssertionError("a failed output is not finished")


async def test_an_output_that_fails_is_reported_failed_while_the_job_completes(
        harness: Harness, clip_640x360: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The registry is what the worker runs: one output type's executor breaks, as a full disk would break it.
    monkeypatch.setitem(EXECUTORS, "audio", DiskFullAudio)
    request = await harness.request(clip_640x360, profile="typed")

    events = await harness.events_until_terminal()

    assert kinds(events)[-1] == "completed" and events[-1].status == common_pb2.JOB_STATUS_COMPLETED
    completed = events[-1].completed
    reason = "the audio file could not be written: no space left on the worker's disk"
    assert [(o.name, o.status, o.error) for o in completed.outputs] == [
        ("360p", common_pb2.OUTPUT_STATUS_COMPLETED, ""), ("180p", common_pb2.OUTPUT_STATUS_COMPLETED, ""),
        ("sound", common_pb2.OUTPUT_STATUS_FAILED, reason)]
    assert not completed.outputs[2].files and not completed.outputs[2].HasField("rendition")
    assert f"output sound (audio) failed: {reason}" in completed.warnings
    prefix = video_prefix(TENANT, request.video_id)
    keys = [info.key async for info in harness.store.list_objects(prefix)]
    assert sorted(k.removeprefix(prefix) for k in keys) == [
        "renditions/180p.mp4", "renditions/360p.mp4", "source.mp4"], "nothing stored for the failed output"

