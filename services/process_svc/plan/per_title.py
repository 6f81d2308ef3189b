"""Per-title encoding: from what the source turned out to be (analysis) and how
short samples of it encoded (probe points), the CRF and cap of every rung.
Pure: numbers in, decisions and an encode plan out; unit-tested with recorded curves.

The method (docs/transcoding-profiles.md, "Per-title"):
1. the analysis measures spatial and temporal complexity (SI/TI) and scene
   changes over short windows spread over the source; `probe_windows` picks a
   few of them that span its range of complexity (stratified, not the worst);
2. each rung is probe-encoded on those windows at a few CRFs (`next_probe_crfs`
   chooses them round by round, so the target is bracketed by real encodes);
3. `plan_per_title` fits each rung's rate-quality curve (quality and log bitrate,
   piecewise linear in CRF through the probe points) and takes the highest CRF
   whose predicted quality clears the rung's target by a margin; then makes the
   ladder monotonic (a rung never costs fewer bytes than the one below it) and
   drops a rung that adds no measurable quality over the rung below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from services.process_svc.plan.ladder import plan_encode
from services.process_svc.plan.model import EncodePlan, RenditionPlan, SourceInfo
from services.process_svc.plan.per_title_spec import METRICS, PerTitleSpec
from services.process_svc.plan.specs import Profile

__all__ = ["METRICS", "PerTitleSpec", "plan_per_title"]
# Quality falls about this much per CRF step, and bitrate halves every 6 steps (x264/x265 at
# mid CRFs): the guesses used until a rung has two probe points of its own.
DEFAULT_DB_PER_CRF = -0.45
DEFAULT_LOG2_RATE_PER_CRF = -1 / 6
# A probe window when the plan says nothing of its GOP: the default ladder's GOP.
DEFAULT_WINDOW_SECONDS = 2.0


# --- Analysis --------------------------------------------------------------------

@dataclass(frozen=True)
class WindowAnalysis:
    """One analysed stretch of the source."""

    start_seconds: float
    seconds: float
    frames: int
    spatial: float  # mean SI (ITU-T P.910) of its pictures
    temporal: float  # mean TI between its consecutive pictures
    scene_changes: int  # cuts scdet found inside it

    @property
    def complexity(self) -> float:
        """What costs an encoder bits: detail, and detail that moves (TI weighs more)."""
        return self.spatial + 2.0 * self.temporal


@dataclass(frozen=True)
class SourceAnalysis:
    windows: tuple[WindowAnalysis, ...]
    width: int  # the analysed picture size (the source scaled down)
    height: int

    @property
    def spatial(self) -> float:
        return _mean([w.spatial for w in self.windows])

    @property
    def temporal(self) -> float:
        return _mean([w.temporal for w in self.windows])

    @property
    def scene_changes(self) -> int:
        return sum(w.scene_changes for w in self.windows)

    @property
    def seconds_analysed(self) -> float:
        return sum(w.seconds for w in self.windows)


def with_window(spec: PerTitleSpec, plan: EncodePlan) -> PerTitleSpec:
    """`spec` with its probe window set: one GOP of the plan's top rung unless the profile names one.
    A GOP is what the rendition is made of: a keyframe, then pictures predicted from it, the encoder's
    lookahead and rate control running over them. A shorter window has a larger share of keyframe and
    of rate-control warm-up than the rendition, and its quality and bytes differ from the rendition's."""
    if spec.window_seconds > 0:
        return spec
    top = plan.renditions[0] if plan.renditions else None
    gop = top.keyint_seconds if top is not None and top.keyint_seconds > 0 else DEFAULT_WINDOW_SECONDS
    return replace(spec, window_seconds=round(gop, 3))


def _window_seconds(spec: PerTitleSpec) -> float:
    return spec.window_seconds if spec.window_seconds > 0 else DEFAULT_WINDOW_SECONDS


def analysis_windows(duration_seconds: float, spec: PerTitleSpec) -> list[tuple[float, float]]:
    """(start, seconds) of the windows to analyse: evenly spread, one per stretch of the source, each
    the start of a candidate probe window (the executor moves it back to the keyframe before it)."""
    length = min(_window_seconds(spec), duration_seconds)
    if length <= 0:
        return []
    count = max(1, min(spec.analysis_windows, math.floor(duration_seconds / max(length * 1.5, 1e-9))))
    stride = duration_seconds / count
    return [(round(max(0.0, min(stride * (i + 0.5) - length / 2, duration_seconds - length)), 3),
             min(spec.analysis_seconds, length)) for i in range(count)]


def probe_windows(analysis: SourceAnalysis, duration_seconds: float,
                  spec: PerTitleSpec) -> tuple[WindowAnalysis, ...]:
    """The analysed windows the probes encode: ranked by complexity, one from each of `n` equal
    strata (the middle of each), so the samples span easy and hard parts as the source does."""
    ranked = sorted(analysis.windows, key=lambda w: w.complexity)
    if not ranked:
        return ()
    wanted = round(duration_seconds * spec.sample_share / _window_seconds(spec))
    count = max(2, min(6, wanted, len(ranked)))
    picked = sorted({min(len(ranked) - 1, int((i + 0.5) * len(ranked) / count)) for i in range(count)})
    return tuple(sorted((ranked[i] for i in picked), key=lambda w: w.start_seconds))


# --- Probes and curves -----------------------------------------------------------

@dataclass(frozen=True)
class ProbePoint:
    """One rung encoded at one CRF over the probe windows."""

    crf: int
    bitrate: float  # bits per second over the windows
    psnr_db: float
    xpsnr_db: float

    def quality(self, metric: str) -> float:
        return self.xpsnr_db if metric == "xpsnr" else self.psnr_db


@dataclass(frozen=True)
class PresetOffset:
    """What the final preset does differently from the probe preset, measured at one CRF."""

    crf: int
    psnr_db: float  # final minus probe
    xpsnr_db: float
    rate_ratio: float  # final over probe

    def apply(self, point: ProbePoint) -> ProbePoint:
        return replace(point, bitrate=point.bitrate * self.rate_ratio, psnr_db=point.psnr_db + self.psnr_db,
                       xpsnr_db=point.xpsnr_db + self.xpsnr_db)


def preset_offset(final: ProbePoint, probe: ProbePoint) -> PresetOffset:
    if final.crf != probe.crf:
        raise ValueError(f"an offset compares one CRF, got {final.crf} and {probe.crf}")
    return PresetOffset(crf=final.crf, psnr_db=final.psnr_db - probe.psnr_db, xpsnr_db=final.xpsnr_db - probe.xpsnr_db,
                        rate_ratio=final.bitrate / probe.bitrate if probe.bitrate > 0 else 1.0)


@dataclass(frozen=True)
class RungProbes:
    """A rung's probe points (at the final preset, or corrected to it), and optionally the quality of
    its pictures scaled up to the rung above's size, measured against that rung's reference."""

    name: str
    points: tuple[ProbePoint, ...]
    upscaled: tuple[ProbePoint, ...] = ()  # bitrate is this rung's; quality against the rung above


class RateQualityCurve:
    """Quality and log2 bitrate of one rung as functions of CRF: piecewise linear through the probe
    points, extended past the ends along the end segments (never rising with CRF)."""

    def __init__(self, points: tuple[ProbePoint, ...] | list[ProbePoint], metric: str) -> None:
        if not points:
            raise ValueError("a curve needs at least one probe point")
        by_crf: dict[int, ProbePoint] = {}
        for point in points:
            by_crf[point.crf] = point  # a CRF probed twice: the later measurement
        self.points = [by_crf[c] for c in sorted(by_crf)]
        self.metric = metric
        self._quality = [(p.crf, p.quality(metric)) for p in self.points]
        self._log_rate = [(p.crf, math.log2(max(p.bitrate, 1.0))) for p in self.points]

    @property
    def crfs(self) -> list[int]:
        return [p.crf for p in self.points]

    def quality(self, crf: float) -> float:
        return _piecewise(self._quality, crf, DEFAULT_DB_PER_CRF)

    def bitrate(self, crf: float) -> float:
        return 2 ** _piecewise(self._log_rate, crf, DEFAULT_LOG2_RATE_PER_CRF)

    def highest_crf_meeting(self, quality_db: float, low: int, high: int) -> int:
        """The highest whole CRF in [low, high] predicted to reach quality_db; `low` when none does."""
        for crf in range(high, low - 1, -1):
            if self.quality(crf) >= quality_db:
                return crf
        return low


def _piecewise(points: list[tuple[int, float]], x: float, default_slope: float) -> float:
    x0, y0 = points[0]
    if len(points) == 1:
        return y0 + default_slope * (x - x0)
    for i in range(len(points) - 1):
        (x0, y0), (x1, y1) = points[i], points[i + 1]
        if x <= x1 or i == len(points) - 2:
            # Measurement noise never makes quality or bitrate rise with CRF.
            slope = min((y1 - y0) / (x1 - x0), default_slope / 10)
            return y0 + slope * (x - x0)
    raise AssertionError("unreachable")


def next_probe_crfs(spec: PerTitleSpec, probes: dict[str, RungProbes],
                    caps: dict[str, int] | None = None) -> dict[str, int]:
    """For each rung with a target whose answer is not yet bracketed by probe points at most
    `bracket_crf` apart, the CRF to probe next (the current best guess). Empty: probing is done.
    caps: each rung's profile cap (bits/s), which bounds the CRFs worth probing."""
    wanted: dict[str, int] = {}
    for name, rung in probes.items():
        target = spec.target(name)
        if target is None:
            continue
        if not rung.points:
            wanted[name] = spec.first_crf
            continue
        curve = RateQualityCurve(rung.points, spec.metric)
        answer, reachable = choose_crf(curve, (caps or {}).get(name, 0), target, spec)
        below = [c for c in curve.crfs if c <= answer]
        above = [c for c in curve.crfs if c > answer]
        if (below and above and min(above) - max(below) <= spec.bracket_crf) \
                or (len(curve.crfs) >= 2 and min(abs(c - answer) for c in curve.crfs) <= spec.near_crf) \
                or (not reachable and (answer in curve.crfs or len(curve.crfs) >= 2)) \
                or (answer == spec.max_crf and spec.max_crf in curve.crfs):
            continue
        guess = answer if answer not in curve.crfs else answer + 1
        wanted[name] = max(spec.min_crf, min(spec.max_crf, guess))
    return wanted


def choose_crf(curve: RateQualityCurve, cap: int, target: float, spec: PerTitleSpec) -> tuple[int, bool]:
    """The rung's CRF and whether the target is within reach: the highest CRF predicted to clear the
    target by the margin whose average bitrate stays under `cap_share` of the cap, else under the
    whole cap. When none does, the target is out of reach under the cap: the lowest CRF whose predicted
    average fits under the cap, the most quality the CRF still sets. A lower CRF would spend up to the
    whole cap for what little the cap lets through (on the noisy bench source, 20% more bits for
    0.07 dB); a higher one would look worse."""
    wanted = target + spec.margin_db
    lowest = capped_crf(curve, cap, spec)
    crf = curve.highest_crf_meeting(wanted, lowest, spec.max_crf)
    if curve.quality(crf) >= wanted:
        return crf, True
    if cap <= 0:
        return spec.min_crf, False
    ceiling = capped_crf(curve, cap, spec, share=1.0)
    crf = curve.highest_crf_meeting(wanted, ceiling, lowest)
    if curve.quality(crf) >= wanted:
        return crf, True
    return ceiling, False


# --- Decisions -------------------------------------------------------------------

@dataclass(frozen=True)
class RungDecision:
    """What the per-title planner decided for one rung, and why."""

    name: str
    crf: int
    max_bitrate: int
    buffer_size: int
    target_db: float  # 0: the rung has no target (the profile's CRF is kept)
    predicted_db: float
    predicted_bitrate: int
    probed_crfs: tuple[int, ...]
    dropped: bool = False
    reason: str = ""  # why it differs from "highest CRF meeting the target", in words


def plan_per_title(profile: Profile, source: SourceInfo, spec: PerTitleSpec,
                   probes: dict[str, RungProbes]) -> tuple[EncodePlan, tuple[RungDecision, ...]]:
    """The profile's plan for `source` with each rung's CRF and cap chosen from its probes and the
    rungs that add nothing dropped; and the decisions, for kept and dropped rungs, largest first."""
    fixed = plan_encode(profile, source)
    decisions: list[RungDecision] = []
    curves: dict[str, RateQualityCurve] = {}
    for rung in fixed.renditions:
        decisions.append(_decide(rung, spec, probes.get(rung.name), curves))
    _make_monotonic(decisions, fixed.renditions, curves, spec)
    _drop_redundant(decisions, curves, probes, spec)
    chosen = {d.name: d for d in decisions}
    if len(fixed.renditions) == 1 and fixed.renditions[0].name not in {r.name for r in profile.renditions}:
        # A source smaller than every rung gets one rung of its own size, made from the smallest.
        smallest = min(profile.renditions, key=lambda r: r.height)
        chosen[smallest.name] = chosen[fixed.renditions[0].name]
    rungs = tuple(r.model_copy(update={"crf": chosen[r.name].crf, "max_bitrate": chosen[r.name].max_bitrate,
                                       "buffer_size": chosen[r.name].buffer_size})
                  for r in profile.renditions if r.name in chosen and not chosen[r.name].dropped)
    # Planned again from the profile, so a rung whose parent was dropped is scaled from what remains.
    return plan_encode(profile.with_renditions(rungs), source), tuple(decisions)


def _decide(rung: RenditionPlan, spec: PerTitleSpec, probes: RungProbes | None,
            curves: dict[str, RateQualityCurve]) -> RungDecision:
    target = spec.target(rung.name)
    if target is None or probes is None or not probes.points:
        return RungDecision(name=rung.name, crf=rung.crf, max_bitrate=rung.max_bitrate, buffer_size=rung.buffer_size,
                            target_db=0.0, predicted_db=0.0, predicted_bitrate=0, probed_crfs=(),
                            reason="no quality target for this rung: the profile's CRF")
    curve = curves[rung.name] = RateQualityCurve(probes.points, spec.metric)
    crf, reachable = choose_crf(curve, rung.max_bitrate, target, spec)
    reason = ""
    if not reachable:
        reason = (f"the target is out of reach: CRF {crf} is predicted at {curve.quality(crf):.2f} dB "
                  f"{spec.metric.upper()}")
        if crf > spec.min_crf:
            reason += (f"; below it the profile's cap of {rung.max_bitrate / 1e6:g} Mbit/s, not the CRF, sets the "
                       "quality")
    return _with_crf(rung, crf, curve, target, reason, spec)


def capped_crf(curve: RateQualityCurve, cap: int, spec: PerTitleSpec, *, share: float | None = None) -> int:
    """The lowest CRF whose predicted average bitrate stays under `share` (default `cap_share`) of the
    profile's cap. Near the cap, the cap starts to set the quality in the rendition's peaks, and probes
    (whose VBV buffer starts full) would overstate what the rendition gets: so a CRF below it is
    chosen only when the target is out of reach (choose_crf)."""
    if cap <= 0:
        return spec.min_crf
    share = spec.cap_share if share is None else share
    crf = spec.min_crf
    while crf < spec.max_crf and curve.bitrate(crf) > cap * share:
        crf += 1
    return crf


def _with_crf(rung: RenditionPlan, crf: int, curve: RateQualityCurve, target: float, reason: str,
              spec: PerTitleSpec) -> RungDecision:
    predicted_rate = curve.bitrate(crf)
    cap = min(rung.max_bitrate, round(predicted_rate * spec.cap_factor))
    buffer = round(cap * rung.buffer_size / rung.max_bitrate) if rung.max_bitrate else 2 * cap
    return RungDecision(name=rung.name, crf=crf, max_bitrate=cap, buffer_size=buffer, target_db=target,
                        predicted_db=round(curve.quality(crf), 2), predicted_bitrate=round(predicted_rate),
                        probed_crfs=tuple(curve.crfs), reason=reason)


def _make_monotonic(decisions: list[RungDecision], rungs: tuple[RenditionPlan, ...],
                    curves: dict[str, RateQualityCurve], spec: PerTitleSpec) -> None:
    """From the bottom up: a rung that would cost less than `rung_step` times the rung below gets a lower
    CRF (more quality, more bytes) until it does, so players never step up to fewer bits."""
    for upper in range(len(decisions) - 2, -1, -1):
        above, below = decisions[upper], decisions[upper + 1]
        curve = curves.get(above.name)
        if curve is None or not below.predicted_bitrate:
            continue
        floor = below.predicted_bitrate * spec.rung_step
        if above.predicted_bitrate >= floor:
            continue
        crf = above.crf
        lowest = capped_crf(curve, rungs[upper].max_bitrate, spec)
        while crf > lowest and curve.bitrate(crf) < floor:
            crf -= 1
        decisions[upper] = _with_crf(rungs[upper], crf, curve, above.target_db,
                                     f"CRF lowered from {above.crf} to {crf} so this rung costs more than the "
                                     f"{below.name} rung below it", spec)


def _drop_redundant(decisions: list[RungDecision], curves: dict[str, RateQualityCurve],
                    probes: dict[str, RungProbes], spec: PerTitleSpec) -> None:
    """Drops a rung whose predicted quality beats the rung below it, scaled up to its size, by less
    than `min_gain_db`: it would cost more bytes for nothing a viewer could see. The lowest rung stays."""
    for upper in range(len(decisions) - 1):
        above = decisions[upper]
        below = next((d for d in decisions[upper + 1:] if not d.dropped), None)
        if below is None or above.name not in curves:
            continue
        lower_probes = probes.get(below.name)
        if lower_probes is None or not lower_probes.upscaled:
            continue
        upscaled = RateQualityCurve(lower_probes.upscaled, spec.metric).quality(below.crf)
        gain = above.predicted_db - upscaled
        if gain < spec.min_gain_db:
            decisions[upper] = replace(above, dropped=True,
                                       reason=f"dropped: {gain:+.2f} dB {spec.metric.upper()} over the {below.name} "
                                              f"rung scaled up to its size, below the {spec.min_gain_db} dB that "
                                              "counts as a visible gain")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
