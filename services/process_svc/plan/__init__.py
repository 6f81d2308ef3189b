"""Plan: profile + source facts -> encode plan. Pure (dataclasses and
arithmetic, no PyAV), so whole plans are unit-tested without media.

    plan = plan_encode(catalog.get("default"), source_info)
"""

from services.process_svc.plan.ladder import plan_encode
from services.process_svc.plan.model import (
    AdaptivePlan,
    AudioPlan,
    AudioRenditionPlan,
    EncodePlan,
    OutputPlan,
    RenditionPlan,
    SourceInfo,
    VideoFilter,
)
from services.process_svc.plan.outputs import PLANNERS, OutputSkipped, PlanContext
from services.process_svc.plan.specs import OUTPUT_SPECS, AudioOutput, AudioSpec, Profile, VideoOutput

__all__ = [
    "OUTPUT_SPECS",
    "PLANNERS",
    "AdaptivePlan",
    "AudioOutput",
    "AudioPlan",
    "AudioRenditionPlan",
    "AudioSpec",
    "EncodePlan",
    "OutputPlan",
    "OutputSkipped",
    "PlanContext",
    "Profile",
    "RenditionPlan",
    "SourceInfo",
    "VideoFilter",
    "VideoOutput",
    "plan_encode",
]
