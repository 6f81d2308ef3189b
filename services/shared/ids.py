"""Identifiers: a short type prefix and 20 random hex digits, sortable enough and safe in URLs and keys."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"
