"""Profiles are data: one YAML file per profile in this folder, listed in
index.yaml, each output with a `type`. Schema: docs/transcoding-profiles.md.

    catalog = ProfileCatalog.load()
    profile = catalog.get("default")        # UnknownProfile names the available ones
"""

from services.process_svc.profiles.catalog import (
    DEFAULT_PROFILE,
    PROFILES_DIR,
    ProfileCatalog,
    ProfileError,
    UnknownProfile,
    parse_bitrate,
    parse_profile,
)
from services.process_svc.profiles.document import MAX_PROFILE_DOCUMENT_BYTES, read_profile_document

__all__ = ["DEFAULT_PROFILE", "PROFILES_DIR", "ProfileCatalog", "ProfileError", "UnknownProfile",
           "parse_bitrate", "parse_profile", "MAX_PROFILE_DOCUMENT_BYTES", "read_profile_document"]
