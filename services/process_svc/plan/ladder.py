"""Profile + source -> encode plan. Pure: no media library, no I/O."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

from services.process_svc.failures import clock
from services.process_svc.plan.encoders import audio_encoder
from services.process_svc.plan.model import AudioPlan, EncodePlan, OutputPlan, RenditionPlan, SourceInfo, VideoFilter
from services.process_svc.plan.outputs import PLANNERS, OutputSkipped, PlanContext
from services.process_svc.plan.specs import AudioSpec, Profile, VideoOutput
from services.shared.errors import InvalidArgument
from services.shared.media_limits import MIN_PICTURE_SIDE

# A rate for the GOP length when the container states none; timestamps still pass through untouched.
FALLBACK_FPS = Fraction(30)
# Keyframes are forced every keyint_seconds of media time (execute/rendition_writer.py), whatever the frame
# rate, constant or variable. The encoder's own GOP limit (`keyint` frames) stays out of their way: the
# frames keyint_seconds holds at twice the source's average rate, and at least at 60 fps (a phone's
# variable-rate clip averaging 20 fps in low light still has stretches at its nominal 30).
GOP_CAP_FACTOR = 2
GOP_CAP_MIN_FPS = 60


def plan_encode(profile: Profile, source: SourceInfo, *, cascade: bool = True) -> EncodePlan:
    """The renditions, filters and encoder settings for `source` under `profile`, and one plan per
    output of the profile (plan/outputs.py), in the profile's order.

    Rungs above the source's short side are dropped (we never upscale); a
    source smaller than every rung gets one rung at its own size. Sizes keep
    the source's display aspect and are even, as 4:2:0 chroma requires.
    With `cascade`, a rung is scaled from the smallest rung above it that is
    at least CASCADE_MIN_RATIO times its size (1080 -> 720, 720 -> 480,
    720 -> 360): the scalers then read far fewer pixels, for a quality
    difference the ladder benchmark measures per rung.
    """
    # A podcast's MP3 (sound_only) has no picture to check: its audio outputs are made, the others skipped.
    if not source.sound_only and (source.width <= 0 or source.height <= 0):
        raise InvalidArgument(f"the source has no usable picture size ({source.width}x{source.height})")
    if not source.sound_only and min(source.width, source.height) < MIN_PICTURE_SIDE:
        raise InvalidArgument(f"the picture is {source.width}x{source.height} pixels; the smallest we transcode is "
                              f"{MIN_PICTURE_SIDE}x{MIN_PICTURE_SIDE}")
    if not profile.renditions and not profile.of_type("audio"):
        raise InvalidArgument(f"profile {profile.name!r} has no video or audio outputs")
    fps = source.fps if source.fps > 0 else FALLBACK_FPS
    display_width, display_height = source.display_size
    colour = _colour_conversion(source)
    rungs = [] if source.sound_only else _rungs(profile, source)
    renditions = tuple(_rendition(spec, display_width, display_height, fps, colour) for _, spec in rungs)
    if cascade:
        renditions = _cascade(renditions)
    context = PlanContext(profile=profile, source=source, fps=fps, renditions=renditions,
                          rung_of_output={output: plan for (output, _), plan in zip(rungs, renditions, strict=True)},
                          audio=_audio(profile.audio, source))
    outputs, skipped = _plan_outputs(context)
    total_frames = source.video_frames or round(source.duration_seconds * float(fps))
    return EncodePlan(
        profile=profile.name,
        source=source,
        renditions=renditions,
        audio=context.audio,
        upright=_deinterlace(source) + _upright(source.quarter_turns),
        total_frames=max(total_frames, 0),
        warnings=source_warnings(source) + skipped,
        outputs=outputs,
    )


def _plan_outputs(context: PlanContext) -> tuple[tuple[OutputPlan, ...], tuple[str, ...]]:
    """Each output's plan, and why any output was left out."""
    outputs: list[OutputPlan] = []
    skipped: list[str] = []
    pictureless: list[str] = []
    for spec in context.profile.outputs:
        planner = PLANNERS.get(spec.type)
        if planner is None:
            raise InvalidArgument(f"profile {context.profile.name!r}: output type {spec.type!r} has no planner")
        if context.source.sound_only and spec.type != "audio":
            pictureless.append(spec.name)
            continue
        try:
            planned = planner(spec, context)
        except OutputSkipped as skip:
            skipped.append(skip.reason)
            continue
        if planned is not None:
            outputs.append(planned)
    if pictureless:
        skipped.insert(0, f"the source is sound alone, with no picture: {', '.join(pictureless)} not made (the "
                          "'audio' profile makes audio-only renditions of it)")
    return tuple(outputs), tuple(skipped)


def _rungs(profile: Profile, source: SourceInfo) -> list[tuple[str, VideoOutput]]:
    """The rungs this source gets, largest first, each with the name of the video output it makes."""
    if not profile.renditions:  # an audio-only profile: no ladder
        return []
    short_side = min(source.display_size)
    fitting = [spec for spec in profile.renditions if spec.height <= short_side]
    if fitting:
        return [(spec.name, spec) for spec in sorted(fitting, key=lambda spec: spec.height, reverse=True)]
    # Smaller than the smallest rung: one rung at the source's own size, with that rung's caps.
    smallest = min(profile.renditions, key=lambda spec: spec.height)
    own = _even_floor(short_side)
    return [(smallest.name, smallest.model_copy(update={"name": f"{own}p", "height": own}))]


def _rendition(spec: VideoOutput, display_width: float, display_height: float, fps: Fraction,
               colour: str) -> RenditionPlan:
    portrait = display_height > display_width
    short_side, long_side = sorted((display_width, display_height))
    scaled_long = _even_round(spec.height * long_side / short_side)
    width, height = (spec.height, scaled_long) if portrait else (scaled_long, spec.height)
    frames_per_gop = max(1, round(spec.keyint_seconds * fps))  # at the average rate
    # With scene cuts the encoder places keyframes itself (at cuts, and a GOP at most keyint_seconds long at the
    # average rate); without, they are forced by time and the encoder's limit stays out of their way.
    keyint = frames_per_gop if spec.scene_cut else max(
        1, math.ceil(round(spec.keyint_seconds * float(max(GOP_CAP_FACTOR * fps, GOP_CAP_MIN_FPS)), 6)))
    return RenditionPlan(
        name=spec.name,
        width=width,
        height=height,
        fps=fps,
        keyint=keyint,
        min_keyint=keyint if not spec.scene_cut else max(1, frames_per_gop // 10),
        keyint_seconds=spec.keyint_seconds,
        crf=spec.crf,
        max_bitrate=spec.max_bitrate,
        buffer_size=spec.buffer_size,
        preset=spec.preset,
        h264_profile=spec.h264_profile,
        pix_fmt=spec.pix_fmt,
        scene_cut=spec.scene_cut,
        filters=(
            VideoFilter("scale", f"w={width}:h={height}:flags={spec.scale_flags}:{colour}"),
            VideoFilter("setsar", "1"),  # square pixels: anamorphic sources come out at their display aspect
            VideoFilter("format", spec.pix_fmt),
        ),
        codec=spec.codec,
        encoder=spec.encoder,
        container=spec.container,
    )


def _audio(spec: AudioSpec | None, source: SourceInfo) -> AudioPlan | None:
    if spec is None or not source.has_audio:
        return None
    channels = min(source.audio_channels or spec.max_channels, spec.max_channels)
    return AudioPlan(bitrate=spec.bitrate, sample_rate=spec.sample_rate, channels=channels,
                     codec=spec.codec, encoder=spec.encoder, sample_format=audio_encoder(spec.encoder).sample_format)


# Transfer functions of HDR video, as FFmpeg names them.
_HDR_TRANSFERS = {"smpte2084": "HDR10/PQ", "arib-std-b67": "HLG"}


def source_warnings(source: SourceInfo) -> tuple[str, ...]:
    """What the renditions will differ in from the source, in words for the customer."""
    warnings = []
    if source.interlaced:
        warnings.append("the source is interlaced: the renditions were deinterlaced (bwdif), one frame per frame")
    if source.full_range:
        warnings.append("the source uses full-range levels (0-255): converted to the video range (16-235)")
    if source.color_transfer in _HDR_TRANSFERS:
        warnings.append(f"the source is {_HDR_TRANSFERS[source.color_transfer]} HDR: the renditions are 8-bit SDR "
                        "made without tone mapping, so highlights and colours look flatter than on an HDR screen")
    for start, end in source.timeline_gaps:
        warnings.append(f"the source's clock jumps from {clock(start)} to {clock(end)} with nothing recorded in "
                        f"between: the renditions leave out those {clock(end - start)}")
    if source.extra_audio_streams:
        warnings.append(f"the source has {source.extra_audio_streams + 1} audio tracks: the renditions carry the "
                        "first one only")
    for subtitles in source.subtitle_streams:
        warnings.append(f"subtitle stream {subtitles} was not carried over: renditions have no subtitles yet")
    return tuple(warnings)


# A rung is scaled from the smallest rung above it that is at least this much larger: a step
# from a picture barely larger than the target (480 -> 360) compounds the resampling error, while
# 720 -> 360 (2x) comes within 58 dB PSNR of scaling 1080 -> 360 straight (measured on the
# benchmark's source), at a quarter of the pixels read.
CASCADE_MIN_RATIO = 1.4
# The rung above is already limited-range BT.709: its scaler must not convert again.
_ALREADY_BT709 = "in_range=tv:out_range=tv:in_color_matrix=bt709:out_color_matrix=bt709"


def _cascade(renditions: tuple[RenditionPlan, ...]) -> tuple[RenditionPlan, ...]:
    """Each rung (largest first) scaled from the smallest rung above it that is large enough."""
    cascaded = list(renditions)
    for index, rung in enumerate(renditions):
        short = min(rung.width, rung.height)
        parents = [i for i in range(index)
                   if min(renditions[i].width, renditions[i].height) >= CASCADE_MIN_RATIO * short]
        if not parents:
            continue
        scale = rung.filters[0]
        size_and_flags = scale.args.split(":in_range=")[0]
        cascaded[index] = replace(rung, scaled_from=parents[-1],
                                  filters=(VideoFilter(scale.name, f"{size_and_flags}:{_ALREADY_BT709}"),
                                           *rung.filters[1:]))
    return tuple(cascaded)


def _deinterlace(source: SourceInfo) -> tuple[VideoFilter, ...]:
    """bwdif on every frame of an interlaced source, one frame per frame (the rate stays the source's)."""
    return (VideoFilter("bwdif", "mode=send_frame:parity=auto:deint=all"),) if source.interlaced else ()


def _colour_conversion(source: SourceInfo) -> str:
    """The scaler's colour options: from the source's levels and matrix to limited-range BT.709, which
    every rendition is tagged as. An untagged source is read the way players read it: BT.709 from
    720 lines up, BT.601 below."""
    matrix = source.color_matrix or ("bt709" if min(source.display_size) >= 720 else "bt601")
    in_range = "pc" if source.full_range else "tv"
    return f"in_range={in_range}:out_range=tv:in_color_matrix={matrix}:out_color_matrix=bt709"


def _upright(quarter_turns: int) -> tuple[VideoFilter, ...]:
    """Filters that turn the picture clockwise by `quarter_turns` (what ffmpeg's autorotate inserts)."""
    return {
        0: (),
        1: (VideoFilter("transpose", "clock"),),
        2: (VideoFilter("hflip"), VideoFilter("vflip")),
        3: (VideoFilter("transpose", "cclock"),),
    }[quarter_turns]


def _even_round(value: float) -> int:
    return max(2, 2 * math.floor(value / 2 + 0.5))


def _even_floor(value: float) -> int:
    return max(2, 2 * math.floor(value / 2))
