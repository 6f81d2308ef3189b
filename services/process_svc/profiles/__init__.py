"""Profiles are data: one YAML file per profile in this folder, listed in
index.yaml, each output with a `type`. Schema: plan/specs.py (pydantic models)
and docs/transcoding-profiles.md.

    catalog = ProfileCatalog.load()
    profile = catalog.get("default")        # UnknownProfile names the available ones
    profile = parse_profile_text(yaml_text, origin="upload profile")   # ProfileError names origin and field
"""

from services.process_svc.plan.specs import parse_bitrate
from services.process_svc.profiles.catalog import (
    DEFAULT_PROFILE,
    PROFILES_DIR,
    ProfileCatalog,
    ProfileError,
    UnknownProfile,
    parse_profile,
    parse_profile_text,
)
from services.process_svc.profiles.document import MAX_PROFILE_DOCUMENT_BYTES, read_profile_document

__all__ = ["DEFAULT_PROFILE", "PROFILES_DIR", "ProfileCatalog", "ProfileError", "UnknownProfile",
           "parse_bitrate", "parse_profile", "parse_profile_text", "MAX_PROFILE_DOCUMENT_BYTES",
           "read_profile_document"]
