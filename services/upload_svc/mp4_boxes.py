"""The top-level box layout of MP4/MOV (ISO base media) files, read from box
headers alone. It tells a truncated upload apart from a file that was never a
video: FFmpeg says "invalid data" for both, and a file cut after its index
(moov first, "fast start") even opens and decodes its first frames."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# Box types that appear at the top level of real files; a header naming one of
# these is trusted, so trailing junk after a complete file is not taken for a cut.
TOP_LEVEL_TYPES = frozenset({
    "ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid", "meta", "moof", "mfra", "sidx",
    "styp", "pdin", "prft", "emsg", "ssix", "udta",
})
_FIRST_TYPES = frozenset({"ftyp", "moov", "mdat", "wide", "free", "skip", "pnot"})
_MAX_BOXES = 100_000


@dataclass(frozen=True)
class Mp4Layout:
    boxes: tuple[str, ...]  # top-level box types, in file order
    file_size: int
    cut_box: str = ""  # the box that runs past the end of the file, if any
    cut_box_end: int = 0  # where that box should have ended

    @property
    def has_index(self) -> bool:
        return "moov" in self.boxes

    @property
    def truncated(self) -> bool:
        return bool(self.cut_box)


def read_mp4_layout(path: Path) -> Mp4Layout | None:
    """The file's top-level boxes, or None when it does not start like an MP4/MOV file."""
    file_size = path.stat().st_size
    boxes: list[str] = []
    with path.open("rb") as handle:
        offset = 0
        while offset < file_size and len(boxes) < _MAX_BOXES:
            handle.seek(offset)
            head = handle.read(16)
            if len(head) < 8:
                break
            size, kind_bytes = struct.unpack(">I4s", head[:8])
            kind = kind_bytes.decode("latin-1")
            if not boxes and kind not in _FIRST_TYPES:
                return None
            if kind not in TOP_LEVEL_TYPES:
                break  # not a box header: trailing data after the last box
            header_size = 8
            if size == 1:  # 64-bit size follows the type
                if len(head) < 16:
                    return Mp4Layout(tuple([*boxes, kind]), file_size, cut_box=kind, cut_box_end=offset + 16)
                size = struct.unpack(">Q", head[8:16])[0]
                header_size = 16
            elif size == 0:  # the box runs to the end of the file
                size = file_size - offset
            if size < header_size:
                break
            boxes.append(kind)
            if offset + size > file_size:
                return Mp4Layout(tuple(boxes), file_size, cut_box=kind, cut_box_end=offset + size)
            offset += size
    return Mp4Layout(tuple(boxes), file_size)
