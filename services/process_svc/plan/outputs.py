"""One planner per output type: a profile's output spec + what the ladder
made of the source -> that output's plan. Pure, like the ladder.

PLANNERS is the one place a type's planner is registered (its spec model is in
specs.py, its executor in execute/registry.py). A planner returns None when
the source calls for nothing (a rung above the source's size) and raises
OutputSkipped when the customer should hear why an output was not made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from services.process_svc.plan.model import AudioPlan, AudioRenditionPlan, OutputPlan, RenditionPlan, SourceInfo
from services.process_svc.plan.specs import AudioOutput, Profile, VideoOutput


class OutputSkipped(Exception):
    """This source cannot have this output; the reason becomes a warning of the job."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PlanContext:
    """What every planner may build on: the source and the ladder already planned for it."""

    profile: Profile
    source: SourceInfo
    fps: Fraction  # the source's frame rate (or the fallback when it states none)
    renditions: tuple[RenditionPlan, ...]  # the ladder, largest first
    rung_of_output: Mapping[str, RenditionPlan]  # video output name -> its rung (absent: above the source)
    audio: AudioPlan | None  # the track the renditions carry; None when silent or the profile has none

    def rung(self, name: str) -> RenditionPlan | None:
        return self.rung_of_output.get(name)


Planner = Callable[[Any, PlanContext], OutputPlan | None]


def plan_video(spec: VideoOutput, context: PlanContext) -> RenditionPlan | None:
    """The ladder already planned every rung together (sizes, cascade): the output is its rung."""
    return context.rung(spec.name)


def plan_audio(spec: AudioOutput, context: PlanContext) -> AudioRenditionPlan:
    source = context.source
    if not source.has_audio:
        raise OutputSkipped(f"the source has no audio: audio output {spec.name!r} was not made")
    return AudioRenditionPlan(
        name=spec.name, codec=spec.codec, encoder=spec.encoder, bitrate=spec.bitrate, sample_rate=spec.sample_rate,
        channels=min(source.audio_channels or spec.max_channels, spec.max_channels), container=spec.container)


# type -> planner: add a new output type's planner here.
PLANNERS: dict[str, Planner] = {
    "video": plan_video,
    "audio": plan_audio,
}
