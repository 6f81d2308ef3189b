"""A profile a customer sends with an upload or a re-transcode: the same schema as
the profile files, in YAML or JSON (JSON is YAML), checked before any job exists.

Untrusted text, so: a size cap, no YAML anchors or aliases (a few bytes of them
can stand for a tree too large to walk), only plain YAML types (safe_load), and
every error names the field it is about.
"""

from __future__ import annotations

from typing import Any

import yaml
import yaml.composer

from services.process_svc.plan.specs import Profile
from services.process_svc.profiles.catalog import ProfileError, parse_profile
from services.shared.errors import InvalidArgument

MAX_PROFILE_DOCUMENT_BYTES = 64 * 1024
# Each rung is an encoder running on the shared workers: a customer's ladder may have this many.
MAX_CUSTOM_RENDITIONS = 8


class _DocumentLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (*name) are not accepted",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def read_profile_document(text: str, field: str = "profile_document") -> Profile:
    """The Profile the document describes; InvalidArgument saying what is wrong and where."""
    size = len(text.encode("utf-8"))
    if size > MAX_PROFILE_DOCUMENT_BYTES:
        raise InvalidArgument(f"{field} is {size} bytes; a profile may have at most {MAX_PROFILE_DOCUMENT_BYTES}")
    if not text.strip():
        raise InvalidArgument(f"{field} is empty")
    try:
        document = yaml.load(text, Loader=_DocumentLoader)  # noqa: S506 - a SafeLoader without aliases
    except yaml.YAMLError as error:
        raise InvalidArgument(f"{field} is not valid YAML or JSON: {_one_line(error)}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"{field} must be a mapping (name, outputs, ...), not {type(document).__name__}")
    try:
        profile = parse_profile(document, source=field)
    except ProfileError as error:
        raise InvalidArgument(str(error)) from None
    if len(profile.renditions) > MAX_CUSTOM_RENDITIONS:
        raise InvalidArgument(f"{field}: {len(profile.renditions)} video outputs; a profile sent with a request may "
                              f"have at most {MAX_CUSTOM_RENDITIONS}")
    return profile


def _one_line(error: yaml.YAMLError) -> str:
    return " ".join(str(error).split())
