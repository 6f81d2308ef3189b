"""Identifiers: a short type prefix and 20 random hex digits, sortable enough and safe in URLs and keys.

Every id a request or an event carries is checked against this format before
it is used, since ids end up in storage keys and file names: `../../x` must
never reach a path.
"""

from __future__ import annotations

import re
import secrets

from services.shared.errors import InvalidArgument

_HEX_DIGITS = 20
_ID = re.compile(rf"(?P<prefix>[a-z]{{3}})_[0-9a-f]{{{_HEX_DIGITS}}}")
# ten_<hex> from new_id, or a fixed id of a bootstrap tenant ("default", "system"): a path-safe slug either way.
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SHOWN_CHARS = 40  # of a refused value, in the error message


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(_HEX_DIGITS // 2)}"


def is_id(value: str, prefix: str) -> bool:
    match = _ID.fullmatch(value)
    return match is not None and match.group("prefix") == prefix


def require_id(value: str, prefix: str, field: str) -> str:
    """`value` when it is an id made by new_id(prefix); InvalidArgument naming `field` otherwise."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    if not is_id(value, prefix):
        raise InvalidArgument(f"{field} {shown(value)} is not a valid id: "
                              f"expected {prefix}_ followed by {_HEX_DIGITS} hex digits")
    return value


def is_tenant_id(value: str) -> bool:
    return _TENANT_ID.fullmatch(value) is not None


def require_tenant_id(value: str, field: str = "tenant_id") -> str:
    if not value:
        raise InvalidArgument(f"{field} is required")
    if not is_tenant_id(value):
        raise InvalidArgument(f"{field} {shown(value)} is not a valid tenant id: "
                              "expected lower-case letters, digits, '_' or '-' (at most 64)")
    return value


def shown(value: str) -> str:
    """A refused value as an error message may quote it: short, and with control characters escaped."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…")  # repr escapes controls
