"""Typed outputs made in one pass over a real source: an audio-only rendition next to
the video ones, the hooks other output types build on, and an output failing alone."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import av
import pytest

from services.process_svc.execute import (
    EXECUTORS,
    EncodedStreams,
    OutputExecutor,
    OutputFailed,
    OutputFile,
    ProducedOutput,
    execute,
    probe_source,
)
from services.process_svc.plan import PLANNERS, OutputPlan, plan_encode
from services.process_svc.plan.specs import OUTPUT_SPECS
from services.process_svc.profiles import parse_profile
from tests.media import decoded_summary

LADDER = {"name": "typed", "video_defaults": {"preset": "ultrafast", "crf": 30, "maxrate": "2M", "bufsize": "4M",
                                              "keyint_seconds": 1},
          "audio": {"bitrate": "96k"}}
RUNGS = [{"type": "video", "name": "360p", "height": 360}, {"type": "video", "name": "180p", "height": 180}]


def profile(*outputs: dict):  # type: ignore[no-untyped-def]
    return parse_profile({**LADDER, "outputs": [*RUNGS, *outputs]}, source="test")


def audio_of(path: Path) -> tuple[str, int, float, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.codec_context.channels, samples / stream.codec_context.sample_rate, \
            bool(container.streams.video)


@pytest.mark.parametrize(("spec", "file", "codec", "content_type"), [
    ({"type": "audio", "name": "sound"}, "renditions/sound.m4a", "aac", "audio/mp4"),
    ({"type": "audio", "name": "sound", "codec": "opus", "bitrate": "64k", "max_channels": 1},
     "renditions/sound.webm", "opus", "audio/webm"),
    ({"type": "audio", "name": "sound", "codec": "opus", "container": "ogg"}, "renditions/sound.ogg", "opus",
     "audio/ogg"),
])
def test_an_audio_output_is_the_sound_alone_in_its_container(clip_640x360: Path, tmp_path: Path, spec: dict,
                                                             file: str, codec: str, content_type: str) -> None:
    plan = plan_encode(profile(spec), probe_source(clip_640x360))

    produced = execute(plan, clip_640x360, tmp_path)

    assert [(o.name, o.kind, o.error) for o in produced] == [("360p", "video", ""), ("180p", "video", ""),
                                                            ("sound", "audio", "")]
    [sound_file] = produced[2].files
    assert (sound_file.key, sound_file.content_type) == (file, content_type)
    assert sound_file.path == tmp_path / file and sound_file.size_bytes == sound_file.path.stat().st_size > 0
    decoded_codec, channels, seconds, has_video = audio_of(sound_file.path)
    assert (decoded_codec, channels, has_video) == (codec, spec.get("max_channels", 2), False)
    assert abs(seconds - 2.0) < 0.1, "the whole source's sound"
    rendition = produced[2].rendition
    assert rendition is not None and (rendition.width, rendition.video_codec, rendition.audio_codec) == (0, "", codec)
    for video in produced[:2]:  # the renditions still carry their own AAC track
        assert video.files[0].key == f"renditions/{video.name}.mp4"
        assert decoded_summary(video.files[0].path)["has_audio"]


@dataclass(frozen=True)
class RecorderPlan:
    kind: ClassVar[str] = "recorder"
    name: str = "recorder"


def audio_payload(path: Path) -> bytes:
    with av.open(str(path)) as container:
        return b"".join(bytes(packet) for packet in container.demux(audio=0))


def test_an_audio_output_like_the_renditions_track_is_that_very_encode(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(profile({"type": "audio", "name": "sound", "bitrate": "96k"}), probe_source(clip_640x360))
    assert plan.outputs_of("audio")[0].shares_track

    produced = execute(plan, clip_640x360, tmp_path)

    assert [o.error for o in produced] == ["", "", ""]
    sound = produced[2].files[0].path
    assert audio_of(sound)[:3] == ("aac", 2, pytest.approx(2.0, abs=0.1))
    assert audio_payload(sound) == audio_payload(tmp_path / "renditions/360p.mp4"), "the same AAC packets"


class Recorder(OutputExecutor):
    """Writes down what the pass hands it: the hooks an adaptive packager and the stills build on."""

    kind = "recorder"

    def __init__(self, plan: OutputPlan, context) -> None:  # type: ignore[no-untyped-def]
        super().__init__(plan, context)
        self.lock = threading.Lock()
        self.streams: EncodedStreams | None = None
        self.upright: list[tuple[int, int]] = []
        self.scaled: list[tuple[str, int, int]] = []
        self.video: dict[str, int] = {}
        self.audio = 0
        self.ended = False

    def streams_ready(self, streams: EncodedStreams) -> None:
        assert all(stream.codec_context.extradata for stream in streams.video.values()), "encoders are open"
        self.streams = streams

    def upright_frame(self, frame: av.VideoFrame) -> None:
        self.upright.append((frame.width, frame.height))

    def rung_frame(self, rung: str, frame: av.VideoFrame) -> None:
        self.scaled.append((rung, frame.width, frame.height))

    def video_packet(self, rung: str, packet: av.Packet) -> None:
        with self.lock:  # from each rung's own thread
            self.video[rung] = self.video.get(rung, 0) + 1

    def audio_packet(self, packet: av.Packet) -> None:
        self.audio += 1

    def end_of_stream(self) -> None:
        self.ended = True

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        RECORDED.append(self)
        return ProducedOutput(name=self.plan.name, kind=self.kind, error="" if self.ended else "no end")


RECORDED: list[Recorder] = []


def packet_count(path: Path, kind: str) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(getattr(container.streams, kind)[0]) if p.size)


def test_other_outputs_get_upright_frames_and_every_encoded_packet_of_the_pass(clip_640x360: Path,
                                                                              tmp_path: Path) -> None:
    plan = plan_encode(profile(), probe_source(clip_640x360))
    plan = replace(plan, outputs=(*plan.outputs, RecorderPlan()))  # one more output type, listening to the pass
    RECORDED.clear()

    produced = execute(plan, clip_640x360, tmp_path, executors={**EXECUTORS, "recorder": Recorder})

    [recorder] = RECORDED
    assert [o.error for o in produced] == ["", "", ""] and recorder.ended
    assert recorder.streams is not None and set(recorder.streams.video) == {"360p", "180p"}
    assert recorder.streams.audio is not None and recorder.streams.audio.codec_context.name == "aac"
    assert recorder.upright == [(640, 360)] * 60, "every source frame, upright, unscaled"
    assert sorted(set(recorder.scaled)) == [("180p", 320, 180), ("360p", 640, 360)] and len(recorder.scaled) == 120
    for rung in ("360p", "180p"):
        assert recorder.video[rung] == packet_count(tmp_path / f"renditions/{rung}.mp4", "video")
    assert recorder.audio == packet_count(tmp_path / "renditions/360p.mp4", "audio")


class BrokenPoster(OutputExecutor):
    kind = "audio"

    def upright_frame(self, frame: av.VideoFrame) -> None:
        raise OutputFailed("the poster frame could not be written: disk full")

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        raise AssertionError("a failed output is not finished")


class BuggyOutput(OutputExecutor):
    kind = "audio"

    def finish(self, done: Mapping[str, ProducedOutput]) -> ProducedOutput:
        assert set(done) == {"360p", "180p"}, "video renditions finish first"
        path = self.context.out_dir / "x"
        path.write_bytes(b"x")
        OutputFile.of(path, self.context.out_dir, "text/plain")
        raise KeyError("oops")


@pytest.mark.parametrize(("executor", "error"), [
    (BrokenPoster, "the poster frame could not be written: disk full"),
    (BuggyOutput, "internal error in the audio output (KeyError: 'oops'); the service logged the details"),
])
def test_an_output_that_fails_is_reported_with_its_reason_while_the_others_complete(
        clip_640x360: Path, tmp_path: Path, executor: type[OutputExecutor], error: str) -> None:
    plan = plan_encode(profile({"type": "audio", "name": "sound"}), probe_source(clip_640x360))

    produced = execute(plan, clip_640x360, tmp_path, executors={**EXECUTORS, "audio": executor})

    assert [(o.name, o.error) for o in produced] == [("360p", ""), ("180p", ""), ("sound", error)]
    assert produced[2].failed and not produced[2].files
    assert decoded_summary(produced[0].files[0].path)["frames"] == 60


def test_every_output_type_with_a_planner_has_an_executor_and_a_model() -> None:
    assert set(PLANNERS) == set(EXECUTORS), "a type the planner plans is a type the pass can make"
    assert set(EXECUTORS) <= set(OUTPUT_SPECS)
