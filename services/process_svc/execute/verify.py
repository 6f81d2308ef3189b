"""What was actually produced, read back from the files: the facts a
completed event reports, and a check that they match the plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from services.process_svc.execute.quality import RenditionQuality
from services.process_svc.plan import AudioRenditionPlan, RenditionPlan
from services.shared.media_source import codec_name

CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
AUDIO_CONTENT_TYPES = {"m4a": "audio/mp4", "mp4": "audio/mp4", "webm": "audio/webm", "ogg": "audio/ogg"}


class RenditionMismatch(RuntimeError):
    """An output differs from its plan: a bug in the executor, not a problem of the source."""


@dataclass(frozen=True)
class ProducedRendition:
    name: str
    path: Path
    width: int
    height: int
    duration_seconds: float
    size_bytes: int
    bitrate: int  # bits per second over the whole file
    container: str
    video_codec: str
    audio_codec: str  # empty when there is no audio
    # width, height 0 and video_codec empty: an audio-only rendition
    content_type: str
    quality: RenditionQuality | None = None  # None when not measured


def inspect_rendition(plan: RenditionPlan, path: Path, *, expect_audio: bool,
                      quality: RenditionQuality | None = None) -> ProducedRendition:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        width, height = video.codec_context.width, video.codec_context.height
        duration = round(container.duration / av.time_base, 3) if container.duration else 0.0
        video_codec = codec_name(video)
        audio_codec = codec_name(audio) if audio else ""
        codec_tag = video.codec_context.codec_tag
    if (width, height) != (plan.width, plan.height):
        raise RenditionMismatch(f"rendition {plan.name} came out {width}x{height}, planned {plan.width}x{plan.height}")
    if video_codec != plan.codec:
        raise RenditionMismatch(f"rendition {plan.name} has {video_codec} video, planned {plan.codec}")
    if plan.codec_tag and codec_tag != plan.codec_tag:
        raise RenditionMismatch(f"rendition {plan.name} is tagged {codec_tag!r}, planned {plan.codec_tag!r}")
    if bool(audio_codec) != expect_audio:
        raise RenditionMismatch(f"rendition {plan.name} {'lacks' if expect_audio else 'has'} an audio track")
    if duration <= 0:
        raise RenditionMismatch(f"rendition {plan.name} has no duration")
    size = path.stat().st_size
    return ProducedRendition(
        name=plan.name, path=path, width=width, height=height, duration_seconds=duration,
        size_bytes=size, bitrate=round(size * 8 / duration), container=plan.container,
        video_codec=video_codec, audio_codec=audio_codec,
        content_type=CONTENT_TYPES.get(plan.container, "application/octet-stream"), quality=quality,
    )


def inspect_audio_rendition(plan: AudioRenditionPlan, path: Path) -> ProducedRendition:
    with av.open(str(path)) as container:
        if container.streams.video or not container.streams.audio:
            raise RenditionMismatch(f"audio output {plan.name} should hold one audio stream and no video")
        audio = container.streams.audio[0]
        codec, channels = codec_name(audio), audio.codec_context.channels
        duration = round(container.duration / av.time_base, 3) if container.duration else 0.0
    if codec != plan.codec:
        raise RenditionMismatch(f"audio output {plan.name} has {codec} audio, planned {plan.codec}")
    if channels != plan.channels:
        raise RenditionMismatch(f"audio output {plan.name} has {channels} channels, planned {plan.channels}")
    if duration <= 0:
        raise RenditionMismatch(f"audio output {plan.name} has no duration")
    size = path.stat().st_size
    return ProducedRendition(
        name=plan.name, path=path, width=0, height=0, duration_seconds=duration, size_bytes=size,
        bitrate=round(size * 8 / duration), container=plan.container, video_codec="", audio_codec=codec,
        content_type=AUDIO_CONTENT_TYPES.get(plan.container, "application/octet-stream"))
