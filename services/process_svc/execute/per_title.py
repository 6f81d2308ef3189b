"""Runs per-title deciding for one source: analysis, probe rounds, then the
pure planner (plan/per_title.py). Blocking and CPU-bound, like execute():
call it from a worker thread.

    decided = decide_per_title(profile, spec, info, source_path)
    execute(decided.plan, source_path, out_dir, ...)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.process_svc.execute.analysis import analyse_source
from services.process_svc.execute.probe_encode import ProbeSetting, probe_encode
from services.process_svc.plan import EncodePlan, Profile, SourceInfo, plan_encode
from services.process_svc.plan.per_title import (
    PerTitleSpec,
    PresetOffset,
    ProbePoint,
    RungDecision,
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

# (phase, fraction of the deciding done 0..1): "analysis", then "probes".
PhaseCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class PerTitleDecision:
    plan: EncodePlan
    decisions: tuple[RungDecision, ...]
    analysis: SourceAnalysis
    windows: tuple[WindowAnalysis, ...]  # what the probes encoded
    probes: dict[str, RungProbes]
    offsets: dict[str, PresetOffset] = field(default_factory=dict)  # per rung, when probing at another preset
    analysis_seconds: float = 0.0
    probe_seconds: float = 0.0
    probe_encodes: int = 0  # (rung, CRF, preset) settings encoded over the windows
    window_seconds: float = 0.0  # one probe window

    @property
    def seconds(self) -> float:
        return self.analysis_seconds + self.probe_seconds


def decide_per_title(profile: Profile, spec: PerTitleSpec, source: SourceInfo, source_path: Path, *,
                     cancel: threading.Event | None = None, on_phase: PhaseCallback | None = None,
                     clock: Callable[[], float] = time.monotonic) -> PerTitleDecision:
    started = clock()
    _tell(on_phase, "analysis", 0.0)
    fixed = plan_encode(profile, source)
    spec = with_window(spec, fixed)
    analysis = analyse_source(source_path, analysis_windows(source.duration_seconds, spec), cancel=cancel)
    analysed = clock()
    windows = probe_windows(analysis, source.duration_seconds, spec)
    spans = [(w.start_seconds, min(spec.window_seconds, source.duration_seconds - w.start_seconds)) for w in windows]
    probes = {r.name: RungProbes(r.name, ()) for r in fixed.renditions if spec.target(r.name) is not None}
    presets = {r.name: r.preset for r in fixed.renditions}
    caps = {r.name: r.max_bitrate for r in fixed.renditions}
    offsets: dict[str, PresetOffset] = {}
    encodes = 0
    for round_number in range(spec.probe_rounds):
        wanted = next_probe_crfs(spec, probes, caps)
        if not wanted or not spans:
            break
        _tell(on_phase, "probes", round_number / spec.probe_rounds)
        settings: dict[str, list[ProbeSetting]] = {}
        for name, crf in wanted.items():
            probe_preset = spec.probe_preset or presets[name]
            settings[name] = [ProbeSetting(crf, probe_preset)]
            if probe_preset != presets[name] and name not in offsets:
                settings[name].append(ProbeSetting(crf, presets[name]))  # the offset, measured once
        measured = probe_encode(fixed, source_path, spans, settings, cancel=cancel)
        encodes += sum(len(s) for s in settings.values())
        for name, points in measured.items():
            probe_preset = spec.probe_preset or presets[name]
            crf = wanted[name]
            final_point = points.get(ProbeSetting(crf, presets[name]))
            probe_point = points[ProbeSetting(crf, probe_preset)]
            if probe_preset != presets[name] and final_point is not None:
                offsets[name] = preset_offset(final_point, probe_point)
            point = final_point if final_point is not None else _corrected(probe_point, offsets.get(name))
            probes[name] = RungProbes(name, (*probes[name].points, point))
    plan, decisions = plan_per_title(profile, source, spec, probes)
    _tell(on_phase, "probes", 1.0)
    return PerTitleDecision(plan=plan, decisions=decisions, analysis=analysis, windows=windows, probes=probes,
                            offsets=offsets, analysis_seconds=analysed - started, probe_seconds=clock() - analysed,
                            probe_encodes=encodes, window_seconds=spec.window_seconds)


def _corrected(point: ProbePoint, offset: PresetOffset | None) -> ProbePoint:
    return offset.apply(point) if offset is not None else point


def _tell(on_phase: PhaseCallback | None, phase: str, fraction: float) -> None:
    if on_phase is not None:
        on_phase(phase, fraction)
