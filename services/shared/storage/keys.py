"""Where things live in object storage. Everything of a video sits under its
prefix, so deleting a video is one prefix delete."""

from __future__ import annotations

from pathlib import PurePosixPath

# The folders of a video's outputs, under its prefix.
RENDITIONS = "renditions/"  # progressive video and audio renditions: renditions/720p.mp4, renditions/audio.m4a
PRESENTATION = "presentation/"  # the adaptive presentation: master.m3u8, manifest.mpd, one folder per track
IMAGES = "images/"  # poster, thumbnails, storyboard


def video_prefix(tenant_id: str, video_id: str) -> str:
    return f"{tenant_id}/{video_id}/"


def source_key(tenant_id: str, video_id: str, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()[:10] or ".bin"
    return f"{video_prefix(tenant_id, video_id)}source{suffix}"


def job_folder(tenant_id: str, video_id: str, job_id: str) -> str:
    """Where a later job of the video (a re-transcode, a retry) keeps its outputs, laid out as the
    video's own folders are: a later job never overwrites, nor on failure removes, an earlier one's."""
    return f"{video_prefix(tenant_id, video_id)}jobs/{job_id}/"


def outputs_prefix(tenant_id: str, video_id: str, job_id: str = "") -> str:
    """The folder a job's outputs go under: the video's own (the upload's job: no `job_id`) or the job's."""
    return job_folder(tenant_id, video_id, job_id) if job_id else video_prefix(tenant_id, video_id)


def rendition_key(tenant_id: str, video_id: str, rendition: str, extension: str = "mp4", *,
                  job_id: str = "") -> str:
    """A progressive rendition's key; with `job_id`, in that job's folder."""
    return f"{outputs_prefix(tenant_id, video_id, job_id)}{RENDITIONS}{rendition}.{extension}"


def output_key(tenant_id: str, video_id: str, relative: str, *, job_id: str = "") -> str:
    """The key of one file of an output, from its path relative to the job's outputs folder
    ("renditions/720p.mp4"); ValueError unless that path stays inside the folder."""
    path = PurePosixPath(relative)
    if not relative or path.is_absolute() or any(part in ("", ".", "..") for part in relative.split("/")):
        raise ValueError(f"an output file's path must stay inside the video's folder: {relative!r}")
    return f"{outputs_prefix(tenant_id, video_id, job_id)}{relative}"


def presentation_prefix(tenant_id: str, video_id: str, *, job_id: str = "") -> str:
    """The folder of the video's HLS + DASH presentation (with `job_id`, of that later job's); every
    reference inside it is relative and stays inside it, so one signed folder URL plays all of it."""
    return f"{outputs_prefix(tenant_id, video_id, job_id)}{PRESENTATION}"
