"""Which profile a new job runs: a shipped one by name, or a customer's own document.

Checked here, before the job exists, with the process service's own schema and
catalogue (the profile files ship with every service), so a typo is an
INVALID_ARGUMENT naming the field rather than a job that fails later."""

from __future__ import annotations

from dataclasses import dataclass

from services.process_svc.profiles import DEFAULT_PROFILE, ProfileCatalog, read_profile_document
from services.shared.validation import slug


@dataclass(frozen=True)
class JobProfile:
    name: str
    document: str = ""  # the customer's own profile, as sent; empty for a shipped one


class JobProfiles:
    def __init__(self, catalog: ProfileCatalog | None = None) -> None:
        self._catalog = catalog or ProfileCatalog.load()

    def resolve(self, name: str, document: str) -> JobProfile:
        """The profile a request names, or the one it sends; InvalidArgument when neither is usable."""
        if document:
            return JobProfile(name=read_profile_document(document).name, document=document)
        name = slug(name or DEFAULT_PROFILE, "profile")
        self._catalog.get(name)  # UnknownProfile (INVALID_ARGUMENT) lists the ones there are
        return JobProfile(name=name)
