"""The events of one job attempt, numbered 1, 2, 3... in the order published.

Consumers apply an event only when its (attempt, sequence) is newer than the
last they applied, so numbering and publishing happen under one lock: a
progress event can never overtake the completion that follows it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from services.process_svc.execute import ProducedOutput, ProducedRendition, TranscodeProgress
from services.process_svc.execute.quality import RenditionQuality
from services.shared.bus import Bus
from services.shared.bus.contract import job_event_key
from vtc.v1 import common_pb2, events_pb2

_PHASES = {"analysis": common_pb2.JOB_PHASE_ANALYSIS, "probes": common_pb2.JOB_PHASE_PROBES,
           "encode": common_pb2.JOB_PHASE_ENCODE}


class JobEventPublisher:
    def __init__(self, bus: Bus, request: events_pb2.JobRequested, attempt: int) -> None:
        self._bus = bus
        self._request = request
        self._attempt = attempt
        self._sequence = 0
        self._lock = asyncio.Lock()
        self._last_publish = time.monotonic()
        self._last_progress = common_pb2.Progress()

    @property
    def attempt(self) -> int:
        return self._attempt

    async def started(self, worker: str) -> None:
        await self._publish("started", common_pb2.JOB_STATUS_RUNNING, started=events_pb2.JobStarted(worker=worker))

    async def progress(self, progress: TranscodeProgress) -> None:
        self._last_progress = common_pb2.Progress(
            percent=progress.percent, frames=progress.frames, total_frames=progress.total_frames,
            fps=progress.fps, speed=progress.speed, eta_seconds=progress.eta_seconds,
            phase=_PHASES.get(progress.phase, common_pb2.JOB_PHASE_UNSPECIFIED))
        await self._publish("progress", common_pb2.JOB_STATUS_RUNNING, progress=self._last_progress)

    async def heartbeat(self) -> None:
        """The last progress again: metadata takes a job without events for a while as lost."""
        await self._publish("progress", common_pb2.JOB_STATUS_RUNNING, progress=self._last_progress)

    @property
    def idle_seconds(self) -> float:
        return time.monotonic() - self._last_publish

    async def completed(self, outputs: Sequence[common_pb2.Output], warnings: Sequence[str] = (),
                        compression: common_pb2.Compression | None = None) -> None:
        """`renditions` carries the completed outputs' renditions too, for readers of the older field."""
        renditions = [o.rendition for o in outputs
                      if o.status == common_pb2.OUTPUT_STATUS_COMPLETED and o.HasField("rendition")]
        await self._publish("completed", common_pb2.JOB_STATUS_COMPLETED, completed=events_pb2.JobCompleted(
            renditions=renditions, warnings=warnings, outputs=outputs, compression=compression))

    async def failed(self, reason: str) -> None:
        await self._publish("failed", common_pb2.JOB_STATUS_FAILED, failed=events_pb2.JobFailed(reason=reason))

    async def cancelled(self, worker: str) -> None:
        """Once the encoder stopped and the outputs are removed."""
        await self._publish("cancelled", common_pb2.JOB_STATUS_CANCELLED,
                            cancelled=events_pb2.JobCancelled(worker=worker))

    async def _publish(self, kind: str, status: common_pb2.JobStatus, **payload: object) -> None:
        async with self._lock:
            self._sequence += 1
            occurred_at = Timestamp()
            occurred_at.GetCurrentTime()
            event = events_pb2.JobEvent(
                event_id=uuid.uuid4().hex, job_id=self._request.job_id, video_id=self._request.video_id,
                tenant_id=self._request.tenant_id, attempt=self._attempt, sequence=self._sequence,
                occurred_at=occurred_at, status=status, **payload)
            self._last_publish = time.monotonic()
            await self._bus.publish(job_event_key(kind), event, message_id=event.event_id)


def output_message(produced: ProducedOutput, storage_keys: Sequence[str]) -> common_pb2.Output:
    """What the job made of one output: its stored files (`storage_keys`, in the order of its files) and
    rendition, or why it failed."""
    if produced.failed:
        return common_pb2.Output(name=produced.name, type=produced.kind, status=common_pb2.OUTPUT_STATUS_FAILED,
                                 error=produced.error)
    files = [common_pb2.OutputFile(path=file.key, storage_key=key, content_type=file.content_type,
                                   size_bytes=file.size_bytes)
             for file, key in zip(produced.files, storage_keys, strict=True)]
    rendition = rendition_message(produced.rendition, storage_keys[0]) if produced.rendition is not None else None
    return common_pb2.Output(name=produced.name, type=produced.kind, status=common_pb2.OUTPUT_STATUS_COMPLETED,
                             files=files, rendition=rendition)


def rendition_message(produced: ProducedRendition, storage_key: str) -> common_pb2.Rendition:
    return common_pb2.Rendition(
        name=produced.name, width=produced.width, height=produced.height, bitrate=produced.bitrate,
        size_bytes=produced.size_bytes, duration_seconds=produced.duration_seconds, storage_key=storage_key,
        container=produced.container, video_codec=produced.video_codec, audio_codec=produced.audio_codec,
        content_type=produced.content_type, quality=_quality_message(produced.quality))


def _quality_message(quality: RenditionQuality | None) -> common_pb2.RenditionQuality | None:
    if quality is None:
        return None
    return common_pb2.RenditionQuality(psnr_db=quality.psnr_db, ssim=quality.ssim, xpsnr_db=quality.xpsnr_db,
                                       frames_compared=quality.frames_compared)
