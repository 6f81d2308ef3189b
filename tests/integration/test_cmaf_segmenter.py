"""The CMAF segmenter against real encodes: the segments carry the very packets
of the progressive MP4, each opens on a keyframe, and init + segments decode
to the whole track, starting at 0."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.process_svc.adaptive import CmafSegmenter, Fmp4Error, measure_audio, measure_video
from services.process_svc.adaptive.fmp4 import read_segment
from services.process_svc.adaptive.segmenter import copy_packet, read_track

FPS, SECONDS, RATE = 30, 9, 48000


def _encode(out: Path, segment_seconds: float) -> Path:
    """A 9 s clip (fixed 2 s GOPs, B-frames) and its AAC track into a progressive MP4 and into segments."""
    graph = av.filter.Graph()
    source = graph.add("testsrc2", f"size=320x180:rate={FPS}:duration={SECONDS}")
    pixels = graph.add("format", "yuv420p")
    sink = graph.add("buffersink")
    source.link_to(pixels)
    pixels.link_to(sink)
    graph.configure()
    progressive = out / "progressive.mp4"
    with av.open(str(progressive), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.codec_context.time_base = Fraction(1, 15360)
        video.options = {"preset": "ultrafast", "g": str(2 * FPS), "keyint_min": str(2 * FPS), "sc_threshold": "0",
                         "bf": "2"}
        audio = container.add_stream("aac", rate=RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.bit_rate = 96_000
        container.start_encoding()  # opens the encoders: the segmenters copy their configuration
        video_track = CmafSegmenter(out / "p" / "180p", video, segment_seconds)
        audio_track = CmafSegmenter(out / "p" / "audio", audio, segment_seconds)

        def send(segmenter: CmafSegmenter, packets: list[av.Packet]) -> None:
            for packet in packets:
                segmenter.mux(copy_packet(packet))
                container.mux(packet)

        while True:
            try:
                frame = sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            frame.pict_type = av.video.frame.PictureType.NONE
            send(video_track, video.encode(frame))
        send(video_track, video.encode(None))
        for start in range(0, SECONDS * RATE, 1024):
            t = np.arange(start, start + 1024) / RATE
            samples = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            chunk.sample_rate, chunk.pts, chunk.time_base = RATE, start, Fraction(1, RATE)
            send(audio_track, audio.encode(chunk))
        send(audio_track, audio.encode(None))
        video_track.close()
        audio_track.close()
    return progressive


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cmaf")
    _encode(out, 4.0)
    return out


def _joined(folder: Path) -> bytes:
    _, segments = read_track(folder)
    return (folder / "init.mp4").read_bytes() + b"".join((folder / s.file).read_bytes() for s in segments)


def _payloads(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def test_video_segments_hold_the_progressive_files_packets_cut_at_keyframes(encoded: Path) -> None:
    folder = encoded / "p" / "180p"
    track = measure_video(folder, width=320, height=180, frame_rate=Fraction(FPS))
    # 9 s in 4 s segments: two GOPs each, then the last GOP cut short.
    assert [round(s.seconds(track.timescale), 6) for s in track.segments] == [4.0, 4.0, 1.0]
    assert [s.start for s in track.segments] == [0, 4 * track.timescale, 8 * track.timescale]
    assert all(s.starts_with_keyframe for s in track.segments)
    assert track.codecs.startswith("avc1.")  # profile/level from the avcC x264 wrote
    joined = encoded / "video-joined.mp4"
    joined.write_bytes(_joined(folder))
    # The same encoded packets, byte for byte, in the same order: no second encode.
    assert _payloads(joined, "video") == _payloads(encoded / "progressive.mp4", "video")
    with av.open(str(joined)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FPS * SECONDS
    assert frames[0].time == 0.0  # the edit list hides the B-frame delay, as in the progressive file
    assert (frames[0].width, frames[0].height) == (320, 180)


def test_each_video_segment_decodes_on_its_own(encoded: Path) -> None:
    folder = encoded / "p" / "180p"
    init, segments = read_track(folder)
    for segment in segments:
        alone = encoded / f"alone-{segment.file}.mp4"
        alone.write_bytes((folder / "init.mp4").read_bytes() + (folder / segment.file).read_bytes())
        with av.open(str(alone)) as container:
            frames = list(container.decode(video=0))
        assert len(frames) == round(segment.duration / init.timescale * FPS)
        assert frames[0].key_frame


def test_audio_segments_hold_the_progressive_files_packets(encoded: Path) -> None:
    folder = encoded / "p" / "audio"
    track = measure_audio(folder, channels=2, sample_rate=RATE)
    assert track.codecs == "mp4a.40.2"
    assert track.timescale == RATE
    assert len(track.segments) == 3
    # Cut at the first packet at or after each 4 s mark: within one AAC frame of it.
    assert all(abs(s.start - n * 4 * RATE) <= 1024 + track.presentation_offset
               for n, s in enumerate(track.segments))
    assert track.presentation_offset == 1024  # AAC priming, skipped by the edit list
    assert abs(track.presentation_seconds - SECONDS) < 1024 / RATE
    joined = encoded / "audio-joined.mp4"
    joined.write_bytes(_joined(folder))
    assert _payloads(joined, "audio") == _payloads(encoded / "progressive.mp4", "audio")


def test_a_progressive_mp4_is_not_read_as_a_segment(encoded: Path) -> None:
    init, _ = read_track(encoded / "p" / "180p")
    with pytest.raises(Fmp4Error):
        read_segment((encoded / "progressive.mp4").read_bytes(), init)
