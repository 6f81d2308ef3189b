"""Checks of the free text and names that clients send, in one place, so every
service refuses the same things with the same words (ids: see ids.py).

Free text (titles, file names, tenant and key names) is stored and shown back
to people in tables, terminals and JSON, so it is bounded and printable: at
most a set number of characters, and no control characters (C0 and C1
controls such as NUL or ESC, line and paragraph separators, and the bidi
controls that make text read differently from what it is). Names that become
parts of paths or keys (profiles, renditions) are slugs.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from google.protobuf.message import Message

from services.shared.errors import InvalidArgument
from services.shared.ids import shown

MAX_TITLE_CHARS = 256
MAX_FILENAME_CHARS = 255  # what most file systems allow for one name
MAX_SLUG_CHARS = 64

_SLUG = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_SLUG_CHARS - 1}}}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Format characters that reorder or isolate text (a "gpj.exe" that displays as "exe.jpg").
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character(text: str) -> tuple[int, str] | None:
    """The position and character of the first control character in text, or None."""
    for position, char in enumerate(text):
        if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return position, char
    return None


def free_text(value: str, field: str, *, max_chars: int, required: bool = False) -> str:
    """`value` without surrounding whitespace, once it is known to be printable and short enough."""
    found = control_character(value)
    if found is not None:
        position, char = found
        raise InvalidArgument(f"{field} contains a control character (U+{ord(char):04X} at position {position}); "
                              "use printable text only")
    text = value.strip()
    if required and not text:
        raise InvalidArgument(f"{field} is required")
    if len(text) > max_chars:
        raise InvalidArgument(f"{field} is {len(text)} characters long; at most {max_chars} are allowed")
    return text


def file_name(value: str, field: str = "filename") -> str:
    """The base name of a client's file name (its folders are not ours to keep), checked as free text."""
    checked = free_text(value, field, max_chars=4 * MAX_FILENAME_CHARS)  # folders may come along; cut below
    name = PurePosixPath(checked.replace("\\", "/")).name.strip()
    if not name or name in (".", ".."):
        raise InvalidArgument(f"{field} is required: the source's file name, e.g. clip.mov")
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidArgument(f"{field} is {len(name)} characters long; at most {MAX_FILENAME_CHARS} are allowed")
    return name


def slug(value: str, field: str) -> str:
    """A name that may become part of a key or path: lower-case letters, digits, '-' and '_'."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    if not _SLUG.fullmatch(value):
        raise InvalidArgument(f"{field} {shown(value)} is not a valid name: expected lower-case letters, "
                              f"digits, '-' or '_' (at most {MAX_SLUG_CHARS})")
    return value


def sha256_hex(value: str, field: str) -> str:
    """A SHA-256 as 64 lower-case hex digits (upper case accepted), or "" when none was sent."""
    digest = value.strip().lower()
    if digest and not _SHA256_HEX.fullmatch(digest):
        raise InvalidArgument(f"{field} must be the file's SHA-256 as 64 hex digits, or empty")
    return digest


def bounded_list(values: list[str] | tuple[str, ...], field: str, *, max_items: int, max_chars: int) -> list[str]:
    """A short list of short printable strings (e.g. scopes)."""
    if len(values) > max_items:
        raise InvalidArgument(f"{field} has {len(values)} entries; at most {max_items} are allowed")
    return [free_text(value, field, max_chars=max_chars) for value in values]


def bounded_message(message: Message, field: str, *, max_bytes: int) -> Message:
    size = message.ByteSize()
    if size > max_bytes:
        raise InvalidArgument(f"{field} is {size} bytes encoded; at most {max_bytes} are allowed")
    return message
