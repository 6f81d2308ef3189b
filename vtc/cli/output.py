"""What commands print: JSON for scripts (--json), tables and summaries for
people. Results go to stdout; progress bars and errors go to stderr.

Text from the server (titles, file names, errors) is never written to the
terminal raw: control characters in it (ESC, NUL, CR, C1 controls, bidi
overrides) could move the cursor, rewrite earlier lines or retitle the
window. `printable` shows them as visible escapes instead."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from vtc.v1 import common_pb2, process_pb2

_STATUS_PREFIX = "JOB_STATUS_"
_PIPE_WIDTH = 240
# C0 controls, DEL, C1 controls, line/paragraph separators and the bidi controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Of those, what json.dumps leaves raw (it escapes C0 itself).
_JSON_RAW_CONTROL = re.compile("[\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """text with each control character shown as an escape: "a\x1b[2J" -> "a\\x1b[2J"."""
    return _CONTROL.sub(lambda match: ascii(match.group())[1:-1], text)


def json_text(data: Mapping[str, Any] | list[Any]) -> str:
    """Indented JSON with every control character escaped (still the same data once parsed)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_RAW_CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class _PrintableConsole(Console):
    """A Console that passes every string it renders (table cells, sentences) through printable()."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)


def to_dict(message: Message) -> dict[str, Any]:
    """The message as ProtoJSON (the same shape the REST gateway returns), with
    the .proto field names and every field present, so scripts can rely on keys."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_bitrate(bits_per_second: int) -> str:
    if bits_per_second >= 1_000_000:
        return f"{bits_per_second / 1_000_000:.2f} Mb/s"
    return f"{bits_per_second / 1000:.0f} kb/s"


def human_duration(seconds: float) -> str:
    """0:02, 12:34, 1:02:03: clock style, as players show it."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_time(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return datetime.fromtimestamp(stamp.seconds).strftime("%Y-%m-%d %H:%M")


def status_name(status: int) -> str:
    """JOB_STATUS_COMPLETED -> completed."""
    return common_pb2.JobStatus.Name(status).removeprefix(_STATUS_PREFIX).lower()


def video_status_name(status: int) -> str:
    """VIDEO_STATUS_READY -> ready; "-" when the server did not say."""
    if not status:
        return "-"
    return common_pb2.VideoStatus.Name(status).removeprefix("VIDEO_STATUS_").lower()


def videos_table(videos: Iterable[common_pb2.Video]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("VIDEO", no_wrap=True)
    table.add_column("TITLE", overflow="fold")
    table.add_column("STATUS", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for video in videos:
        status = video_status_name(video.status)
        table.add_row(video.video_id, video.title, status, human_duration(video.probe.duration_seconds),
                      human_time(video.created_at))
    return table


def renditions_table(renditions: Iterable[common_pb2.Rendition]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))  # eight columns in 80 characters
    table.add_column("RENDITION", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("BITRATE", justify="right", no_wrap=True)
    table.add_column("RESOLUTION", justify="right", no_wrap=True)
    table.add_column("CODECS", no_wrap=True)
    # Against the source scaled to the rendition's size, PSNR and XPSNR in dB; "-" where not measured.
    table.add_column("PSNR", justify="right", no_wrap=True)
    table.add_column("SSIM", justify="right", no_wrap=True)
    table.add_column("XPSNR", justify="right", no_wrap=True)
    for rendition in renditions:
        codecs = " + ".join(c for c in (rendition.video_codec, rendition.audio_codec) if c)
        table.add_row(rendition.name, human_bytes(rendition.size_bytes), human_bitrate(rendition.bitrate),
                      f"{rendition.width}x{rendition.height}", codecs or "-", *_quality_cells(rendition))
    return table


def outputs_table(outputs: Iterable[common_pb2.Output]) -> Table:
    """Every output of a job: what it is, whether it was made, its files (or why it failed)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    table.add_column("OUTPUT", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("SIZE", justify="right", no_wrap=True)
    table.add_column("FILES", overflow="fold")  # the main file, how many more; or the reason it failed
    for output in outputs:
        status = common_pb2.OutputStatus.Name(output.status).removeprefix("OUTPUT_STATUS_").lower()
        if output.status == common_pb2.OUTPUT_STATUS_FAILED:
            table.add_row(output.name, output.type, status, "-", output.error)
            continue
        more = len(output.files) - 1
        files = (output.files[0].path + (f" (+{more} more)" if more > 0 else "")) if output.files else "-"
        table.add_row(output.name, output.type, status, human_bytes(sum(f.size_bytes for f in output.files)), files)
    return table


def profiles_table(profiles: Iterable[process_pb2.Profile]) -> Table:
    """Each profile (a name for --profile) with its outputs, one line each."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    table.add_column("PROFILE", no_wrap=True)
    table.add_column("OUTPUT", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("WHAT", overflow="fold")
    for profile in profiles:
        name = profile.name + (" (CRF per source)" if profile.per_title else "")
        for index, output in enumerate(profile.outputs):
            table.add_row(name if index == 0 else "", output.name, output.type, _output_cell(output),
                          end_section=index == len(profile.outputs) - 1)
    return table


def _output_cell(output: process_pb2.ProfileOutput) -> str:
    if output.type == "video":
        return f"{output.codec} {output.container}, {output.height}p, cap {human_bitrate(output.bitrate)}"
    if output.type == "audio":
        return f"{output.codec} {output.container}, {human_bitrate(output.bitrate)}"
    formats = " + ".join(output.formats)
    if output.type == "adaptive":
        return f"{formats} of {', '.join(output.renditions)}"
    width = f", {output.width} px wide" if output.width else ""
    return f"{formats}{width}"


def _quality_cells(rendition: common_pb2.Rendition) -> tuple[str, str, str]:
    if not rendition.HasField("quality"):
        return "-", "-", "-"
    quality = rendition.quality
    return f"{quality.psnr_db:.2f}", f"{quality.ssim:.4f}", f"{quality.xpsnr_db:.2f}"


def probe_summary(probe: common_pb2.MediaProbe) -> str:
    if not probe.width and probe.has_audio:  # a file of sound alone
        return f"{human_duration(probe.duration_seconds)}, no picture, audio {probe.audio_codec}"
    parts = [human_duration(probe.duration_seconds), f"{probe.width}x{probe.height}"]
    if probe.fps:
        parts.append(f"{probe.fps:g} fps")
    parts.append(probe.video_codec or "?")
    parts.append(f"audio {probe.audio_codec}" if probe.has_audio else "no audio")
    return ", ".join(parts)


def phase_name(phase: int) -> str:
    """JOB_PHASE_PROBES -> probes; "" when the server did not say."""
    return common_pb2.JobPhase.Name(phase).removeprefix("JOB_PHASE_").lower() if phase else ""


def job_summary(job: common_pb2.Job) -> str:
    summary = f"{job.job_id}  {status_name(job.status)}"
    if job.status == common_pb2.JOB_STATUS_RUNNING:
        phase = phase_name(job.progress.phase)
        summary += f"  {phase + ' ' if phase else ''}{job.progress.percent:.0f}%"
    if job.profile:
        summary += f"  profile {job.profile}{' (your own)' if job.custom_profile else ''}"
    if job.retry_of:
        summary += f"  retry of {job.retry_of}"
    return summary


def compression_lines(compression: common_pb2.Compression) -> list[tuple[str, str]]:
    """A per-title job's analysis and the cost of deciding, as (label, text) rows."""
    cost = compression.cost
    starts = ", ".join(f"{s:g}" for s in compression.probe_window_starts)
    return [
        ("per-title", f"targets in {compression.metric.upper()} dB; source SI {compression.spatial_information:.1f}, "
                      f"TI {compression.temporal_information:.1f}, {compression.scene_changes} scene change(s) in "
                      f"{compression.windows_analysed} analysed windows; probes at {starts} s "
                      f"({compression.probe_window_seconds:g} s each)"),
        ("deciding", f"analysis {cost.analysis_seconds:.1f} s + {cost.probe_encodes} probe encodes "
                     f"{cost.probe_seconds:.1f} s = {cost.share:.0%} of the job (encode {cost.encode_seconds:.1f} s)"),
    ]


def decisions_table(compression: common_pb2.Compression, renditions: Iterable[common_pb2.Rendition]) -> Table:
    """Per rung: target, CRF and cap chosen, predicted quality and bitrate, and what was measured."""
    measured = {r.name: r for r in renditions}
    metric = compression.metric.upper()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("RUNG", "TARGET", "CRF", "CAP", f"PREDICTED {metric}", f"MEASURED {metric}", "PREDICTED",
                   "MEASURED"):
        table.add_column(column, justify="left" if column == "RUNG" else "right", no_wrap=True)
    notes = []
    for rung in compression.rungs:
        made = measured.get(rung.name)
        got = "-"
        if made is not None and made.HasField("quality"):
            got = f"{made.quality.xpsnr_db if compression.metric == 'xpsnr' else made.quality.psnr_db:.2f}"
        table.add_row(rung.name, f"{rung.target_db:g}" if rung.target_db else "-",
                      "dropped" if rung.dropped else str(rung.crf), human_bitrate(rung.max_bitrate),
                      f"{rung.predicted_db:.2f}", got, human_bitrate(rung.predicted_bitrate),
                      human_bitrate(made.bitrate) if made is not None else "-")
        if rung.reason:
            notes.append(f"{rung.name}: {rung.reason}")
    if notes:
        table.caption = "\n".join(notes)
    return table


def video_summary(video: common_pb2.Video) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("video", video.video_id)
    facts.add_row("status", video_status_name(video.status))
    facts.add_row("title", video.title)
    facts.add_row("file", f"{video.filename} ({human_bytes(video.size_bytes)})")
    facts.add_row("sha256", video.sha256)
    facts.add_row("created", human_time(video.created_at))
    facts.add_row("source", probe_summary(video.probe))
    if video.HasField("job"):
        facts.add_row("job", job_summary(video.job))
        if video.job.error:
            facts.add_row("error", video.job.error)
        for warning in video.job.warnings:
            facts.add_row("warning", warning)
        tables = [renditions_table(video.job.renditions)] if video.job.renditions else []
        if video.job.HasField("compression"):
            for label, text in compression_lines(video.job.compression):
                facts.add_row(label, text)
            tables.append(decisions_table(video.job.compression, video.job.renditions))
        if any(output.type != "video" for output in video.job.outputs) or any(
                output.status == common_pb2.OUTPUT_STATUS_FAILED for output in video.job.outputs):
            tables.append(outputs_table(video.job.outputs))  # only video renditions: the table above says it all
        if tables:
            return Group(facts, *tables)
    return facts


def playback_lines(video: common_pb2.Video) -> list[str]:
    """The signed playback URLs, one per line and never wrapped (they are copied into a player)."""
    if not (video.hls_url or video.dash_url):
        return []
    lines = [f"{name:<9} {url}" for name, url in (("hls_url", video.hls_url), ("dash_url", video.dash_url)) if url]
    return [*lines, f"(these URLs play in any HLS/DASH player until {human_time(video.playback_expires_at)}; "
                    "`vtc status` again for new ones)"]


class Output:
    """Where a command's result goes: JSON, or rich text for people."""

    def __init__(self, json_mode: bool, stdout: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stdout = stdout or sys.stdout
        self.console = _PrintableConsole(file=self._stdout, highlight=False, markup=False)  # titles are user text
        if not self.console.is_terminal:
            # Into a pipe or file nothing needs wrapping at 80 columns: keep each row on one line for grep.
            self.console.width = _PIPE_WIDTH

    @property
    def progress(self) -> bool:
        """Bars only for a person watching a terminal: not with --json, not into a log file."""
        return not self.json_mode and Console(stderr=True).is_terminal

    def json(self, data: Mapping[str, Any] | list[Any]) -> None:
        # Plain write, not rich: rich would wrap long lines and break the JSON.
        self._stdout.write(json_text(data) + "\n")
        self._stdout.flush()

    def show(self, renderable: RenderableType) -> None:
        self.console.print(renderable)

    def say(self, text: str) -> None:
        """A sentence: the terminal may wrap it, rich must not cut it into lines."""
        self.console.print(text, soft_wrap=True)
