"""Plan: profile + source facts -> encode plan. Pure (dataclasses and
arithmetic, no PyAV), so whole plans are unit-tested without media.

    plan = plan_encode(catalog.get("default"), source_info)
"""

from services.process_svc.plan.ladder import plan_encode
from services.process_svc.plan.model import (
    AudioPlan,
    AudioSpec,
    EncodePlan,
    Profile,
    RenditionPlan,
    RenditionSpec,
    SourceInfo,
    VideoFilter,
)

__all__ = [
    "AudioPlan",
    "AudioSpec",
    "EncodePlan",
    "Profile",
    "RenditionPlan",
    "RenditionSpec",
    "SourceInfo",
    "VideoFilter",
    "plan_encode",
]
