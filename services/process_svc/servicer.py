"""ProcessService over gRPC: what the workers can do."""

from __future__ import annotations

import grpc

from services.process_svc.plan import Profile
from services.process_svc.plan.specs import (
    AdaptiveOutput,
    AudioOutput,
    OutputSpec,
    PosterOutput,
    StoryboardOutput,
    ThumbnailsOutput,
    VideoOutput,
)
from services.process_svc.profiles import ProfileCatalog
from vtc.v1 import process_pb2, process_pb2_grpc


class ProcessServicer(process_pb2_grpc.ProcessServiceServicer):
    def __init__(self, catalog: ProfileCatalog) -> None:
        self._catalog = catalog

    async def ListProfiles(self, request: process_pb2.ListProfilesRequest,
                           context: grpc.aio.ServicerContext) -> process_pb2.ListProfilesResponse:
        return process_pb2.ListProfilesResponse(profiles=[profile_message(p) for p in self._catalog.all()])


def profile_message(profile: Profile) -> process_pb2.Profile:
    audio = profile.audio
    return process_pb2.Profile(
        name=profile.name,
        description=profile.description,
        renditions=[
            process_pb2.RenditionSpec(
                name=spec.name, height=spec.height, video_codec=spec.codec, crf=spec.crf,
                max_bitrate=spec.max_bitrate, buffer_size=spec.buffer_size,
                audio_codec=audio.codec if audio else "", audio_bitrate=audio.bitrate if audio else 0)
            for spec in profile.renditions
        ],
        outputs=[output_message(output, profile) for output in profile.outputs],
        per_title=profile.per_title_option is not None,
    )


def output_message(output: OutputSpec, profile: Profile) -> process_pb2.ProfileOutput:
    """What a job on the profile will have under this output's name: its kind, codec and files."""
    message = process_pb2.ProfileOutput(name=output.name, type=output.type)
    match output:
        case VideoOutput():
            message.codec, message.container = output.codec, output.container
            message.height, message.bitrate = output.height, output.max_bitrate
        case AudioOutput():
            message.codec, message.container, message.bitrate = output.codec, output.container, output.bitrate
        case AdaptiveOutput():
            message.formats.extend(("hls", "dash"))
            message.renditions.extend(output.renditions or (rung.name for rung in profile.renditions))
        case PosterOutput():
            message.width = output.width or 0
            message.formats.extend(("jpeg", "webp"))
        case ThumbnailsOutput():
            message.width = output.width
            message.formats.append("jpeg")
        case StoryboardOutput():
            message.width = output.tile_width
            message.formats.extend(("jpeg", "vtt"))
    return message
