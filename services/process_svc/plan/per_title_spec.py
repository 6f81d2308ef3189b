"""The `per_title:` option of a profile as the per-title planner reads it (plan/per_title.py);
validated from YAML by plan/specs.py (PerTitleOption)."""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("xpsnr", "psnr")


@dataclass(frozen=True)
class PerTitleSpec:
    """A profile's `per_title:` option."""

    targets: tuple[tuple[str, float], ...]  # (rung name, target in dB of `metric`)
    metric: str = "xpsnr"
    first_crf: int = 26  # every rung's first probe
    min_crf: int = 14
    max_crf: int = 42
    margin_db: float = 0.3  # the prediction must clear the target by this (samples are not the whole)
    min_gain_db: float = 0.5  # a rung that beats the rung below (upscaled) by less is dropped
    probe_preset: str = ""  # empty: the rung's own preset; another one is corrected by a measured offset
    probe_rounds: int = 3
    bracket_crf: int = 6  # probe points further apart than this around the answer call for another round
    window_seconds: float = 0.0  # one probe window (from a keyframe); 0: one GOP of the top rung
    analysis_seconds: float = 0.4  # analysed from the start of each candidate window
    near_crf: int = 2  # with two probes or more, one this close to the answer settles it
    analysis_windows: int = 12  # most windows analysed (spread evenly); fewer on a short source
    sample_share: float = 0.08  # probe windows cover about this share of the source (2..6 windows)
    cap_factor: float = 2.5  # the rung's cap: this times its predicted average bitrate (never above the profile's)
    cap_share: float = 0.8  # no CRF is chosen whose predicted average bitrate exceeds this share of the profile's cap
    rung_step: float = 1.15  # a rung costs at least this much more than the one below it

    def target(self, rung: str) -> float | None:
        return dict(self.targets).get(rung)
