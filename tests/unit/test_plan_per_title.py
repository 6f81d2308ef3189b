"""The per-title planner, from recorded probe curves (no media): CRF per rung from the
target, probe rounds, monotonic ladder, dropped rungs, and the plan that results."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from services.process_svc.plan import SourceInfo, plan_encode
from services.process_svc.plan.per_title import (
    PerTitleSpec,
    ProbePoint,
    RateQualityCurve,
    RungProbes,
    SourceAnalysis,
    WindowAnalysis,
    analysis_windows,
    next_probe_crfs,
    plan_per_title,
    preset_offset,
    probe_windows,
    with_window,
)
from services.process_svc.profiles import ProfileCatalog

# Recorded: the 360p rung of bench/complexity_sources.py clips (640x360, 1 s window), x264 veryfast,
# (crf, bits/s, PSNR dB, XPSNR dB) as probe_encode measured them.
SLIDES_360P = (ProbePoint(18, 502_000, 46.361, 49.455), ProbePoint(26, 356_000, 39.062, 42.735),
               ProbePoint(34, 223_000, 31.202, 34.970))
NOISY_360P = (ProbePoint(18, 1_571_000, 37.667, 31.228), ProbePoint(26, 653_000, 36.397, 30.145),
              ProbePoint(34, 322_000, 32.910, 28.277))
ANIMATION_360P = (ProbePoint(18, 1_180_000, 44.174, 36.377), ProbePoint(26, 385_000, 38.772, 32.514),
                  ProbePoint(34, 135_000, 34.284, 27.488))


@pytest.fixture(scope="module")
def profile():  # type: ignore[no-untyped-def]
    return ProfileCatalog.load().get("default")


def hd_source() -> SourceInfo:
    return SourceInfo(width=1920, height=1080, fps=Fraction(30), duration_seconds=60.0)


def spec(**targets: float) -> PerTitleSpec:
    return PerTitleSpec(targets=tuple((name.replace("p_", "p"), db) for name, db in targets.items()),
                        metric="xpsnr", margin_db=0.3)


def scaled(points: tuple[ProbePoint, ...], rate: float, db: float = 0.0) -> tuple[ProbePoint, ...]:
    """A rung above or below a recorded one: more or fewer bits for the same CRFs."""
    return tuple(replace(p, bitrate=p.bitrate * rate, psnr_db=p.psnr_db + db, xpsnr_db=p.xpsnr_db + db)
                 for p in points)


def test_curve_interpolates_between_probes_and_never_rises_with_crf() -> None:
    curve = RateQualityCurve(ANIMATION_360P, "xpsnr")
    assert curve.quality(26) == pytest.approx(32.514)
    assert curve.quality(22) == pytest.approx((36.377 + 32.514) / 2)
    assert curve.bitrate(18) == pytest.approx(1_180_000)
    assert curve.bitrate(22) == pytest.approx((1_180_000 * 385_000) ** 0.5)  # log-linear between probes
    # Past the probed range: along the end segment.
    assert curve.quality(38) == pytest.approx(27.488 - 4 * (32.514 - 27.488) / 8)
    # PSNR of the noisy clip rises from CRF 18 to 26 (the encoder smooths the grain): treated as flat-ish.
    noisy = RateQualityCurve(NOISY_360P, "psnr")
    assert noisy.quality(20) <= noisy.quality(18)


def test_each_rung_gets_the_highest_crf_that_clears_its_target_by_the_margin(profile) -> None:  # type: ignore[no-untyped-def]
    # 1080p and 720p are the recorded 360p curves with more bits; targets differ per rung.
    probes = {"1080p": RungProbes("1080p", scaled(ANIMATION_360P, 5.0)),
              "720p": RungProbes("720p", scaled(ANIMATION_360P, 2.5)),
              "480p": RungProbes("480p", scaled(ANIMATION_360P, 1.5)),
              "360p": RungProbes("360p", ANIMATION_360P)}
    targets = spec(**{"1080p": 34.0, "720p": 33.0, "480p": 32.0, "360p": 31.0})
    plan, decisions = plan_per_title(profile, hd_source(), targets, probes)

    chosen = {d.name: d.crf for d in decisions}
    # 36.377 - 0.484 (crf - 18) up to CRF 26, then -0.628 per CRF: 34.3 -> 22, ..., 31.3 -> 27.
    assert chosen == {"1080p": 22, "720p": 24, "480p": 26, "360p": 27}
    for decision in decisions:
        assert decision.predicted_db >= decision.target_db + 0.3
        assert not decision.dropped and decision.reason == ""
    assert [(r.name, r.crf) for r in plan.renditions] == list(chosen.items())
    # The cap follows the predicted bitrate, never above the profile's.
    top = plan.renditions[0]
    assert top.max_bitrate == min(6_000_000, round(decisions[0].predicted_bitrate * targets.cap_factor))
    assert top.buffer_size == 2 * top.max_bitrate


def test_an_easy_source_gets_a_higher_crf_than_a_hard_one_for_the_same_target(profile) -> None:  # type: ignore[no-untyped-def]
    targets = spec(**{"360p": 30.0})
    source = SourceInfo(width=640, height=360, fps=Fraction(30), duration_seconds=20.0)
    _, slides = plan_per_title(profile, source, targets, {"360p": RungProbes("360p", SLIDES_360P)})
    _, animation = plan_per_title(profile, source, targets, {"360p": RungProbes("360p", ANIMATION_360P)})
    assert slides[0].crf > animation[0].crf
    assert slides[0].predicted_bitrate < animation[0].predicted_bitrate


def test_a_target_out_of_reach_gets_the_lowest_crf_the_cap_holds_and_says_so(profile) -> None:  # type: ignore[no-untyped-def]
    targets = spec(**{"360p": 35.0})
    source = SourceInfo(width=640, height=360, fps=Fraction(30), duration_seconds=20.0)
    _, decisions = plan_per_title(profile, source, targets, {"360p": RungProbes("360p", NOISY_360P)})
    # 360p's cap is 900 kbit/s: CRF 24 is the lowest whose average fits under it; below, the cap, not
    # the CRF, sets the quality, and the rung would spend up to the whole cap for little more.
    curve = RateQualityCurve(NOISY_360P, "xpsnr")
    assert curve.bitrate(24) <= 900_000 < curve.bitrate(23)
    assert decisions[0].crf == 24
    assert "out of reach" in decisions[0].reason and "cap of 0.9 Mbit/s" in decisions[0].reason
    uncapped = profile.with_renditions(tuple(r.model_copy(update={"max_bitrate": 50_000_000,
                                                                  "buffer_size": 100_000_000})
                                             for r in profile.renditions))
    _, decisions = plan_per_title(uncapped, source, targets, {"360p": RungProbes("360p", NOISY_360P)})
    assert decisions[0].crf == targets.min_crf
    assert "out of reach" in decisions[0].reason and "cap" not in decisions[0].reason


def test_a_target_reached_only_above_the_cap_share_is_still_reached_under_the_whole_cap(profile) -> None:  # type: ignore[no-untyped-def]
    curve = RateQualityCurve(NOISY_360P, "xpsnr")
    cap = 900_000
    assert curve.bitrate(24) > 0.8 * cap  # above the share per-title keeps clear of when it can
    targets = spec(**{"360p": curve.quality(24) - 0.3 - 0.01})
    source = SourceInfo(width=640, height=360, fps=Fraction(30), duration_seconds=20.0)
    _, decisions = plan_per_title(profile, source, targets, {"360p": RungProbes("360p", NOISY_360P)})
    assert decisions[0].crf == 24 and decisions[0].reason == ""


def test_a_lower_rung_never_costs_more_than_the_rung_above(profile) -> None:  # type: ignore[no-untyped-def]
    # The 360p rung needs many bits for its target; 480p alone would pick a CRF that costs fewer.
    probes = {"1080p": RungProbes("1080p", scaled(SLIDES_360P, 4.0, db=-2)),
              "720p": RungProbes("720p", scaled(SLIDES_360P, 2.0, db=-2)),
              "480p": RungProbes("480p", scaled(SLIDES_360P, 0.9)),
              "360p": RungProbes("360p", NOISY_360P)}
    targets = spec(**{"1080p": 38.0, "720p": 38.0, "480p": 38.0, "360p": 28.0})
    plan, decisions = plan_per_title(profile, hd_source(), targets, probes)
    rates = [d.predicted_bitrate for d in decisions]
    assert all(upper >= lower * targets.rung_step for upper, lower in zip(rates, rates[1:], strict=False))
    lifted = decisions[2]
    assert "so this rung costs more than the 360p rung" in lifted.reason
    assert lifted.predicted_db > 38.0  # more bits than its target needs, never fewer


def test_a_rung_adding_nothing_over_the_rung_below_is_dropped_and_the_ladder_replanned(profile) -> None:  # type: ignore[no-untyped-def]
    # 720p scaled up to 1080p comes within 0.2 dB of the 1080p rung itself: 1080p adds nothing.
    top = scaled(ANIMATION_360P, 5.0)
    probes = {"1080p": RungProbes("1080p", top),
              "720p": RungProbes("720p", scaled(ANIMATION_360P, 2.5), upscaled=scaled(top, 0.5, db=-0.1)),
              "480p": RungProbes("480p", scaled(ANIMATION_360P, 1.5), upscaled=scaled(ANIMATION_360P, 1.5, db=-3)),
              "360p": RungProbes("360p", ANIMATION_360P, upscaled=scaled(ANIMATION_360P, 1.0, db=-3))}
    targets = spec(**{"1080p": 32.0, "720p": 32.0, "480p": 32.0, "360p": 32.0})
    plan, decisions = plan_per_title(profile, hd_source(), targets, probes)

    assert [d.name for d in decisions if d.dropped] == ["1080p"]
    assert "over the 720p rung scaled up" in decisions[0].reason
    assert [r.name for r in plan.renditions] == ["720p", "480p", "360p"]
    # 720p was scaled from 1080p's picture; now it is scaled from the source, with the colour conversion.
    assert plan.renditions[0].scaled_from == -1
    assert "in_color_matrix=bt709" in plan.renditions[0].filters[0].args


def test_probe_rounds_bracket_the_answer_then_stop() -> None:
    targets = spec(**{"360p": 31.0})
    empty = {"360p": RungProbes("360p", ())}
    assert next_probe_crfs(targets, empty) == {"360p": targets.first_crf}
    one = {"360p": RungProbes("360p", (ANIMATION_360P[1],))}  # CRF 26 gave 32.5 dB
    # Default slope -0.45 dB/CRF: 32.514 - 0.45 (c - 26) >= 31.3 -> c = 28.
    assert next_probe_crfs(targets, one) == {"360p": 28}
    wide = {"360p": RungProbes("360p", (ANIMATION_360P[0], ANIMATION_360P[2]))}
    # The answer (CRF 27) lies between probes 18 and 34, 16 apart and neither near it: one more probe.
    assert next_probe_crfs(targets, wide) == {"360p": 27}
    assert next_probe_crfs(replace(targets, bracket_crf=16), wide) == {}
    near = {"360p": RungProbes("360p", (ANIMATION_360P[1], ANIMATION_360P[2]))}
    assert next_probe_crfs(targets, near) == {}  # CRF 26 was probed, one from the answer
    assert next_probe_crfs(spec(), {"360p": RungProbes("360p", ())}) == {}  # no target: no probes


def test_preset_offset_moves_fast_preset_probes_onto_the_final_preset() -> None:
    final, fast = ProbePoint(26, 400_000, 38.0, 32.5), ProbePoint(26, 500_000, 37.4, 32.0)
    offset = preset_offset(final, fast)
    corrected = offset.apply(ProbePoint(30, 250_000, 35.0, 30.0))
    assert corrected == ProbePoint(30, 200_000, pytest.approx(35.6), pytest.approx(30.5))


def analysis_of(*complexities: tuple[float, float]) -> SourceAnalysis:
    return SourceAnalysis(windows=tuple(WindowAnalysis(start_seconds=5.0 * i, seconds=1.0, frames=30, spatial=si,
                                                       temporal=ti, scene_changes=0)
                                        for i, (si, ti) in enumerate(complexities)), width=640, height=360)


def test_analysis_windows_spread_over_the_source() -> None:
    one_second = PerTitleSpec(targets=(), window_seconds=1.0)
    windows = analysis_windows(60.0, one_second)
    assert len(windows) == 12
    assert windows[0] == (2.0, 0.4) and windows[-1] == (57.0, 0.4)  # analysed: the first 0.4 s of each
    assert analysis_windows(2.0, one_second) == [(0.5, 0.4)]


def test_a_probe_window_is_one_gop_of_the_top_rung_unless_the_profile_names_one(profile) -> None:  # type: ignore[no-untyped-def]
    plan = plan_encode(profile, hd_source())
    gop = plan.renditions[0].keyint_seconds
    assert with_window(PerTitleSpec(targets=()), plan).window_seconds == pytest.approx(gop)
    assert with_window(PerTitleSpec(targets=(), window_seconds=1.5), plan).window_seconds == 1.5


def test_probe_windows_span_easy_to_hard_not_only_the_worst() -> None:
    analysis = analysis_of(*[(50.0, t) for t in (1, 30, 2, 20, 3, 10, 4, 40, 5, 6, 7, 8)])
    picked = probe_windows(analysis, 60.0, PerTitleSpec(targets=(), sample_share=0.08, window_seconds=1.0))
    assert len(picked) == 5  # 8% of 60 s in 1 s windows
    temporal = sorted(w.temporal for w in picked)
    assert temporal[0] <= 3 and temporal[-1] >= 20  # from the easy end to the hard end
    assert [w.start_seconds for w in picked] == sorted(w.start_seconds for w in picked)
