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

from services.process_svc.plan.model import (
    AdaptivePlan,
    AudioPlan,
    AudioRenditionPlan,
    OutputPlan,
    RenditionPlan,
    SourceInfo,
)
from services.process_svc.plan.specs import AdaptiveOutput, AudioOutput, Profile, VideoOutput
from services.process_svc.plan.stills import plan_poster, plan_storyboard, plan_thumbnails


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
    channels = min(source.audio_channels or spec.max_channels, spec.max_channels)
    track = context.audio
    shares = track is not None and (track.encoder, track.bitrate, track.sample_rate, track.channels) == (
        spec.encoder, spec.bitrate, spec.sample_rate, channels)
    return AudioRenditionPlan(
        name=spec.name, codec=spec.codec, encoder=spec.encoder, bitrate=spec.bitrate, sample_rate=spec.sample_rate,
        channels=channels, container=spec.container, shares_track=shares)


# The video codecs the CMAF packager names for players (adaptive/codecs.py) and the tests play back:
# one presentation may mix them (the `modern` profile: AV1 and H.264 rungs).
ADAPTIVE_CODECS = ("h264", "hevc", "av1", "vp9")
# A segment must hold whole GOPs: segment_seconds a whole multiple of keyint_seconds, to within what
# FFmpeg reads durations in (microseconds). Keyframes come by time, so the frame rate does not matter.
GOP_SLACK = 1e-6


def plan_adaptive(spec: AdaptiveOutput, context: PlanContext) -> AdaptivePlan:
    """The rungs the presentation packages (as the ladder made them) and the audio track, checked to cut
    into segments that start on the same keyframes in every rung."""
    wanted = spec.renditions or tuple(o.name for o in context.profile.outputs if o.kind == "video")
    chosen = {id(rung) for name in wanted if (rung := context.rung(name)) is not None}
    rungs = tuple(rung for rung in context.renditions if id(rung) in chosen)
    if not rungs:
        raise OutputSkipped(f"none of the renditions {', '.join(wanted)} fits this source: "
                            f"adaptive output {spec.name!r} was not made")
    for rung in rungs:
        if rung.codec not in ADAPTIVE_CODECS:
            raise OutputSkipped(f"adaptive output {spec.name!r} packages {', '.join(ADAPTIVE_CODECS)} renditions "
                                f"only; {rung.name} is {rung.codec}")
        if rung.scene_cut:
            raise OutputSkipped(f"rendition {rung.name} puts keyframes at scene cuts, so its segments would not "
                                f"line up with the other rungs': set scene_cut: false for adaptive output "
                                f"{spec.name!r}")
        gops = spec.segment_seconds / rung.keyint_seconds
        if round(gops) < 1 or abs(gops - round(gops)) > GOP_SLACK:
            raise OutputSkipped(f"segments of {spec.segment_seconds:g} s cannot all start on a keyframe when "
                                f"keyframes come every {rung.keyint_seconds:g} s (rendition "
                                f"{rung.name}): make segment_seconds a multiple of keyint_seconds for adaptive "
                                f"output {spec.name!r}")
    return AdaptivePlan(name=spec.name, rungs=rungs, audio=context.audio, segment_seconds=spec.segment_seconds)


# type -> planner: add a new output type's planner here.
PLANNERS: dict[str, Planner] = {
    "video": plan_video,
    "audio": plan_audio,
    "adaptive": plan_adaptive,
    "poster": plan_poster,
    "thumbnails": plan_thumbnails,
    "storyboard": plan_storyboard,
}
