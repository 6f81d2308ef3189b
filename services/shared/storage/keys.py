"""Where things live in object storage. Everything of a video sits under its
prefix, so deleting a video is one prefix delete."""

from __future__ import annotations

from pathlib import PurePosixPath


def video_prefix(tenant_id: str, video_id: str) -> str:
    return f"{tenant_id}/{video_id}/"


def source_key(tenant_id: str, video_id: str, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()[:10] or ".bin"
    return f"{video_prefix(tenant_id, video_id)}source{suffix}"


def rendition_key(tenant_id: str, video_id: str, rendition: str, extension: str = "mp4") -> str:
    return f"{video_prefix(tenant_id, video_id)}renditions/{rendition}.{extension}"


def presentation_prefix(tenant_id: str, video_id: str) -> str:
    """The folder of the video's HLS + DASH presentation; every reference inside it is
    relative and stays inside it, so one signed folder URL plays all of it."""
    return f"{video_prefix(tenant_id, video_id)}presentation/"
