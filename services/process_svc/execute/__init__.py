"""Execute: runs an EncodePlan with PyAV (blocking, CPU-bound; call from a thread).

    source = probe_source(path)                      # SourceInfo, or SourceUnreadable
    produced = execute(plan, path, out_dir, on_progress)   # [ProducedRendition]
"""

from services.process_svc.execute.probe import probe_source
from services.process_svc.execute.progress import ProgressMeter, TranscodeProgress
from services.process_svc.execute.transcode import ProgressCallback, execute
from services.process_svc.execute.verify import ProducedRendition, RenditionMismatch

__all__ = ["ProducedRendition", "ProgressCallback", "ProgressMeter", "RenditionMismatch", "TranscodeProgress",
           "execute", "probe_source"]
