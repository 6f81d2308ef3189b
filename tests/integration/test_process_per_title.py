"""Per-title deciding on tiny generated clips: the analysis tells a still picture from
a noisy moving one, probes measure quality falling with CRF, and a decided plan, once
executed, meets its targets on the final renditions, with H.264, HEVC and AV1 rungs
and their HLS/DASH presentation alike."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
import pytest

from services.process_svc.execute import execute, probe_source
from services.process_svc.execute.analysis import analyse_source
from services.process_svc.execute.per_title import decide_per_title
from services.process_svc.execute.probe_encode import ProbeSetting, probe_encode
from services.process_svc.plan import plan_encode
from services.process_svc.plan.per_title import PerTitleSpec, analysis_windows
from services.process_svc.profiles import ProfileCatalog
from tests.media import renditions_made

FPS = 25


def clip(path: Path, chain: list[tuple[str, str]], *, seconds: float, width: int = 640, height: int = 360) -> Path:
    """Encodes the pictures of a filter chain (its first filter a source) as a near-lossless H.264 MP4."""
    graph = av.filter.Graph()
    head = None
    for name, args in [*chain, ("format", "yuv420p")]:
        node = graph.add(name, args)
        if head is not None:
            head.link_to(node)
        head = node
    sink = graph.add("buffersink")
    assert head is not None
    head.link_to(sink)
    graph.configure()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10", "g": str(FPS)}
        for index in range(round(seconds * FPS)):
            frame = sink.pull()
            frame.pts, frame.time_base, frame.pict_type = index, Fraction(1, FPS), 0
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("per-title")
    size = "640x360"
    return {
        "still": clip(folder / "still.mp4", [("testsrc2", f"size={size}:rate={FPS}"), ("trim", "end_frame=1"),
                                            ("loop", "loop=-1:size=1")], seconds=4),
        "noisy": clip(folder / "noisy.mp4", [("testsrc2", f"size={size}:rate={FPS}"),
                                            ("scroll", "horizontal=0.02"), ("noise", "alls=10:allf=t+u")], seconds=4),
        # Two shots: a cut at 1.5 s from bars to a fractal.
        "cut": clip(folder / "cut.mp4", [("testsrc2", f"size={size}:rate={FPS}"),
                                          ("geq", "lum='if(lt(T,1.5),lum(X,Y),mod(X*Y,255))':cb=128:cr=128")],
                    seconds=3),
    }


def test_analysis_tells_a_still_picture_from_noisy_motion_and_finds_the_cut(clips: dict[str, Path]) -> None:
    spec = PerTitleSpec(targets=(), window_seconds=1.0)
    still = analyse_source(clips["still"], analysis_windows(4.0, spec))
    noisy = analyse_source(clips["noisy"], analysis_windows(4.0, spec))
    assert len(still.windows) == len(noisy.windows) == 2
    # Each window starts on the keyframe before it (one a second here) and lasts analysis_seconds.
    assert [(w.start_seconds, w.frames) for w in still.windows] == [(0.0, 10), (2.0, 10)]
    assert still.temporal < 0.5 < 10 < noisy.temporal
    assert noisy.spatial > still.spatial
    assert still.scene_changes == noisy.scene_changes == 0
    cut = analyse_source(clips["cut"], [(1.0, 1.0)])
    assert cut.scene_changes == 1


def test_probe_quality_and_bitrate_fall_as_crf_rises(clips: dict[str, Path]) -> None:
    profile = ProfileCatalog.load().get("default")
    plan = plan_encode(profile, probe_source(clips["noisy"]))
    settings = {"360p": [ProbeSetting(crf, "veryfast") for crf in (18, 30, 42)]}
    points = probe_encode(plan, clips["noisy"], [(0.0, 1.0), (2.0, 1.0)], settings)["360p"]
    ordered = [points[s] for s in settings["360p"]]
    assert ordered[0].bitrate > ordered[1].bitrate > ordered[2].bitrate
    assert ordered[0].xpsnr_db > ordered[1].xpsnr_db > ordered[2].xpsnr_db
    assert ordered[0].psnr_db > ordered[2].psnr_db


def test_a_decided_plan_meets_its_targets_on_the_final_renditions(clips: dict[str, Path], tmp_path: Path) -> None:
    profile = ProfileCatalog.load().get("per-title")
    assert profile.per_title is not None
    spec = replace(profile.per_title, metric="psnr", targets=(("360p", 34.0),), window_seconds=1.0)
    info = probe_source(clips["noisy"])
    decided = decide_per_title(profile, spec, info, clips["noisy"])

    (decision,) = decided.decisions
    assert decision.name == "360p" and decision.target_db == 34.0
    assert len(decision.probed_crfs) >= 2  # the answer was bracketed by real probes
    assert decision.predicted_db >= 34.0 + spec.margin_db
    assert decided.analysis_seconds > 0 and decided.probe_seconds > 0
    (produced,) = renditions_made(execute(decided.plan, clips["noisy"], tmp_path, quality_sample_every=1))
    assert produced.quality is not None
    measured = produced.quality.psnr_db
    assert measured >= 34.0 - 0.2, f"predicted {decision.predicted_db}, measured {measured}"
    assert abs(measured - decision.predicted_db) < 1.0
    # The still clip meets the same target at a far higher CRF.
    still = decide_per_title(profile, spec, probe_source(clips["still"]), clips["still"])
    assert still.decisions[0].crf > decision.crf


def test_xpsnr_does_not_depend_on_how_many_frames_the_report_compares(clips: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """XPSNR's masking counts motion from the picture before; a report comparing every 5th frame
    must not count the gap between samples as motion (it read 1.5 dB high on fast 1080p motion)."""
    profile = ProfileCatalog.load().get("default")
    plan = plan_encode(profile, probe_source(clips["noisy"]))
    every = renditions_made(execute(plan, clips["noisy"], tmp_path / "every", quality_sample_every=1))
    fifth = renditions_made(execute(plan, clips["noisy"], tmp_path / "fifth", quality_sample_every=5))
    for all_frames, sampled in zip(every, fifth, strict=True):
        assert all_frames.quality is not None and sampled.quality is not None
        assert sampled.quality.frames_compared == 20
        assert abs(sampled.quality.xpsnr_db - all_frames.quality.xpsnr_db) < 0.3, (all_frames.quality,
                                                                                    sampled.quality)


PER_TITLE_HEVC_AV1_PRESENTATION = """
name: pt-codecs
video_defaults: {container: mp4, preset: veryfast, pix_fmt: yuv420p, keyint_seconds: 1, scene_cut: false}
audio: {codec: aac, encoder: aac, bitrate: 96k}
outputs:
  - {type: video, name: 360p, height: 360, codec: hevc, encoder: libx265, crf: 26, maxrate: 2M, bufsize: 4M}
  - {type: video, name: 240p, height: 240, codec: av1, encoder: libsvtav1, preset: "10", crf: 35,
     maxrate: 1M, bufsize: 2M}
  - {type: adaptive, name: presentation, segment_seconds: 2}
per_title: {metric: psnr, targets: {360p: 33, 240p: 32}}
"""


def test_hevc_and_av1_rungs_and_their_presentation_take_per_title_decisions(clips: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    # Issue 9 part 4: the mode is the encoder's own CRF scale, probed with the rung's own encoder,
    # and the HLS/DASH presentation is cut from the decided rungs like any other.
    from services.process_svc.profiles.document import read_profile_document

    profile = read_profile_document(PER_TITLE_HEVC_AV1_PRESENTATION)
    assert profile.per_title is not None
    spec = replace(profile.per_title, window_seconds=1.0)
    decided = decide_per_title(profile, spec, probe_source(clips["noisy"]), clips["noisy"])

    assert [d.name for d in decided.decisions] == ["360p", "240p"]
    planned = {r.name: r for r in decided.plan.renditions}
    assert planned["360p"].encoder == "libx265" and planned["240p"].encoder == "libsvtav1"
    for decision in decided.decisions:
        assert planned[decision.name].crf == decision.crf
        assert decision.predicted_db >= decision.target_db + spec.margin_db
    outputs = execute(decided.plan, clips["noisy"], tmp_path, quality_sample_every=1)
    produced = {r.name: r for r in renditions_made(outputs)}
    for decision in decided.decisions:
        quality = produced[decision.name].quality
        assert quality is not None and quality.psnr_db >= decision.target_db - 0.2, (decision, quality)
    (presentation,) = [o for o in outputs if o.kind == "adaptive"]
    assert not presentation.failed
    names = {Path(f.key).name for f in presentation.files}
    assert {"master.m3u8", "manifest.mpd"} <= names, names
    # Decoded back, as a player would: the codecs the profile named.
    assert (produced["360p"].video_codec, produced["240p"].video_codec) == ("hevc", "av1")
    with av.open(str(produced["240p"].path)) as played:
        assert sum(1 for _ in played.decode(video=0)) == 100
