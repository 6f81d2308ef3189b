"""The quality report on real encodes: the figures follow the encoder's quality setting."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from services.process_svc.execute import execute, probe_source
from services.process_svc.execute.quality import QualityMeter
from services.process_svc.plan import plan_encode
from services.process_svc.profiles import parse_profile
from tests.media import renditions_made


def _profile(crf: int) -> dict:
    return {"type": "video", "name": f"crf{crf}", "height": 360, "crf": crf, "maxrate": "20M", "bufsize": "40M"}


TWO_CRFS = parse_profile({
    "name": "two-crfs",
    "video_defaults": {"preset": "ultrafast", "keyint_seconds": 1},
    "outputs": [_profile(18), _profile(45)],
})


def test_the_lower_crf_rendition_measures_better_on_every_metric(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(TWO_CRFS, probe_source(clip_640x360))

    produced = renditions_made(execute(plan, clip_640x360, tmp_path, quality_sample_every=1))

    good, poor = (p.quality for p in produced)
    assert good is not None and poor is not None
    assert good.frames_compared == poor.frames_compared == 60, "every frame of the 2 s clip at 30 fps"
    assert good.psnr_db > poor.psnr_db + 3
    assert good.ssim > poor.ssim
    assert good.xpsnr_db > poor.xpsnr_db + 3
    for quality in (good, poor):
        assert 25 <= quality.psnr_db <= 60
        assert 0.8 <= quality.ssim <= 1.0
        assert 20 <= quality.xpsnr_db <= 60


def test_sampling_compares_every_nth_frame_and_zero_turns_it_off(clip_640x360: Path, tmp_path: Path) -> None:
    plan = plan_encode(TWO_CRFS, probe_source(clip_640x360))

    sampled = renditions_made(execute(plan, clip_640x360, tmp_path / "sampled", quality_sample_every=7))
    off = renditions_made(execute(plan, clip_640x360, tmp_path / "off", quality_sample_every=0))

    assert [p.quality.frames_compared for p in sampled if p.quality] == [9, 9], "frames 0, 7, ..., 56 of 60"
    assert [p.quality for p in off] == [None, None]


def test_a_cascaded_rung_is_measured_against_its_own_reference(clip_640x360: Path, tmp_path: Path) -> None:
    """240p is scaled from 360p (the cascade): its reference is that picture, so it still measures as
    close as a rung scaled from the source would."""
    ladder = parse_profile({
        "name": "cascade",
        "video_defaults": {"preset": "ultrafast", "keyint_seconds": 1, "crf": 18},
        "outputs": [{"type": "video", "name": "360p", "height": 360, "maxrate": "20M", "bufsize": "40M"},
                    {"type": "video", "name": "240p", "height": 240, "maxrate": "20M", "bufsize": "40M"}],
    })
    plan = plan_encode(ladder, probe_source(clip_640x360))
    assert plan.renditions[1].scaled_from == 0

    produced = renditions_made(execute(plan, clip_640x360, tmp_path, quality_sample_every=2))

    assert all(p.quality is not None and p.quality.psnr_db > 35 and p.quality.frames_compared == 30
               for p in produced)


def test_the_meter_reads_the_frames_it_is_given_and_never_changes_them() -> None:
    """Per-title probes give one scaled picture to several encoders on several threads (one per CRF):
    a meter that renumbered its reference changed the timestamps another encoder was about to read,
    and that probe measured 15 dB where 39 dB was right."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 64, 64, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 90000), Fraction(25)
    encoder.options = {"preset": "ultrafast", "crf": "30"}
    meter = QualityMeter("h264", encoder, sample_every=2)
    frames = []
    for index in range(12):
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 20, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = 3600 * index + 7, Fraction(1, 90000)
        frames.append(frame)
        meter.reference(frame)
        meter.encoded(encoder.encode(frame))
    meter.encoded(encoder.encode(None))
    meter.flush()
    quality = meter.result()

    assert quality is not None and quality.frames_compared == 6
    assert [(f.pts, f.time_base) for f in frames] == [(3600 * i + 7, Fraction(1, 90000)) for i in range(12)]
    assert quality.psnr_db > 30
