"""Output type -> its executor: the one place an executor is registered.

A new output type is a spec model (plan/specs.py, OUTPUT_SPECS), a planner
(plan/outputs.py, PLANNERS) and an executor (an OutputExecutor subclass,
execute/outputs.py), registered here. The transcoder loads only profiles
whose every output type is here.
"""

from __future__ import annotations

from services.process_svc.execute.adaptive_output import AdaptiveExecutor
from services.process_svc.execute.audio_output import AudioRenditionExecutor
from services.process_svc.execute.outputs import OutputExecutor
from services.process_svc.execute.stills.executor import PosterExecutor, StoryboardExecutor, ThumbnailsExecutor
from services.process_svc.execute.video_output import VideoRenditionExecutor

EXECUTORS: dict[str, type[OutputExecutor]] = {
    "video": VideoRenditionExecutor,
    "audio": AudioRenditionExecutor,
    "adaptive": AdaptiveExecutor,
    "poster": PosterExecutor,
    "thumbnails": ThumbnailsExecutor,
    "storyboard": StoryboardExecutor,
}
