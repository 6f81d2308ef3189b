"""Execute: runs an EncodePlan with PyAV (blocking, CPU-bound; call from a thread).

    source = probe_source(path)                              # SourceInfo, or SourceUnreadable
    produced = execute(plan, path, out_dir, on_progress)     # [ProducedOutput], one per output of the plan

One executor per output type (registry.py), all fed by the one pass over the
source (transcode.py); what an executor is: outputs.py.
"""

from services.process_svc.execute.outputs import (
    EncodedStreams,
    OutputExecutor,
    OutputFailed,
    OutputFile,
    PassContext,
    ProducedOutput,
)
from services.process_svc.execute.probe import probe_source
from services.process_svc.execute.progress import ProgressMeter, TranscodeProgress
from services.process_svc.execute.registry import EXECUTORS
from services.process_svc.execute.transcode import ProgressCallback, execute
from services.process_svc.execute.verify import ProducedRendition, RenditionMismatch

__all__ = ["EXECUTORS", "EncodedStreams", "OutputExecutor", "OutputFailed", "OutputFile", "PassContext",
           "ProducedOutput", "ProducedRendition", "ProgressCallback", "ProgressMeter", "RenditionMismatch",
           "TranscodeProgress", "execute", "probe_source"]
