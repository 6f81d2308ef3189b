"""First start: the identities a fresh installation needs, each with its API key
in a file only this user can read.

  <keys_dir>/operator.key  tenant "platform", scope operator: creates tenants
                           and manages any tenant's keys (no videos)
  <keys_dir>/admin.key     tenant "default", scopes admin videos:read videos:write:
                           the admin of a first customer tenant (what `vtc login` uses)
  <keys_dir>/service.key   tenant "system", scope service (what the services use
                           to call each other)
  <keys_dir>/url-signing.key  the secret signing playback and download URLs, made
                           here too so that services reading keys_dir read-only
                           (docker-compose mounts it so) find it

The operator and service identities exist only here: no API call makes one.

Idempotent: a file holding a live key is left alone. A missing file gets a new
key. A file whose key the DB does not know (the DB was reset or replaced) gets
a new key in its place. A revoked key is not replaced behind the operator's
back: delete the file and restart to get a new one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.auth_svc.api_keys import InvalidApiKey, RevokedApiKey
from services.auth_svc.directory import TenantDirectory
from services.shared.principal import PLATFORM_TENANT_ID, SYSTEM_TENANT_ID, Role
from services.shared.private_files import ensure_private_dir, read_private_file, write_private_file
from services.shared.storage.signed_urls import URL_SIGNING_KEY_FILE, load_or_create_secret

log = logging.getLogger("vtc.auth.bootstrap")

DEFAULT_TENANT_ID = "default"


@dataclass(frozen=True)
class BootstrapIdentity:
    file_name: str
    tenant_id: str
    key_name: str
    scopes: tuple[str, ...]


OPERATOR = BootstrapIdentity("operator.key", PLATFORM_TENANT_ID, "platform operator", (Role.OPERATOR,))
ADMIN = BootstrapIdentity("admin.key", DEFAULT_TENANT_ID, "bootstrap admin",
                          (Role.ADMIN, Role.VIDEOS_READ, Role.VIDEOS_WRITE))
SERVICE = BootstrapIdentity("service.key", SYSTEM_TENANT_ID, "service identity", (Role.SERVICE,))


async def bootstrap(directory: TenantDirectory, keys_dir: Path) -> None:
    await asyncio.to_thread(ensure_private_dir, keys_dir)
    for identity in (OPERATOR, ADMIN, SERVICE):
        await _ensure_identity(directory, keys_dir / identity.file_name, identity)
    await asyncio.to_thread(load_or_create_secret, keys_dir / URL_SIGNING_KEY_FILE)


async def _ensure_identity(directory: TenantDirectory, path: Path, identity: BootstrapIdentity) -> None:
    now = datetime.now(UTC)
    await directory.ensure_tenant(identity.tenant_id, identity.tenant_id, now)
    existing = await asyncio.to_thread(read_private_file, path)
    if existing:
        try:
            await directory.authenticate(existing)
            log.info("%s key in %s", identity.key_name, path.resolve())
            return
        except RevokedApiKey:
            log.warning("the %s key in %s was revoked; delete the file and restart to get a new one",
                        identity.key_name, path.resolve())
            return
        except InvalidApiKey:
            log.warning("the %s key in %s is not known to this auth DB; writing a new one",
                        identity.key_name, path.resolve())
    key, minted = await directory.create_api_key(identity.tenant_id, identity.key_name, identity.scopes, now)
    written = await asyncio.to_thread(write_private_file, path, minted.text + "\n", replace=existing is not None)
    if not written:  # another replica wrote its key first: keep theirs, drop ours
        await directory.revoke_api_key(key.tenant_id, key.key_id, now)
        log.info("%s key in %s (written by another replica)", identity.key_name, path.resolve())
        return
    log.info("new %s key written to %s (mode 0600)", identity.key_name, path.resolve())
